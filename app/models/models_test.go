package models

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/app/llm"
	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// fakeStores lays out phi4mac's store, an Ollama store and an LM Studio
// folder in a temp dir, using the micro reference GGUF and HF folder.
func fakeStores(t testing.TB) (*Catalog, string) {
	t.Helper()
	root := t.TempDir()
	gguf, err := os.ReadFile(testrefs.Path(t, "models", "micro", "phi3-random-micro-Q8_0.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(path string, data []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	store := filepath.Join(root, "store")
	write(filepath.Join(store, "someone", "phi-GGUF", "phi-Q8_0.gguf"), gguf)
	write(filepath.Join(store, "someone", "phi-GGUF", "big-00002-of-00002.gguf"), gguf) // extra shard: not listed
	write(filepath.Join(store, "someone", "phi-GGUF", "mmproj-phi.gguf"), gguf)         // projector: not listed
	write(filepath.Join(store, "someone", "broken.gguf"), []byte("not a gguf"))         // unreadable: skipped
	hf := testrefs.Path(t, "models", "micro", "hf")
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json"} {
		b, err := os.ReadFile(filepath.Join(hf, f))
		if err != nil {
			t.Fatal(err)
		}
		write(filepath.Join(store, "microsoft", "phi-micro", f), b)
	}

	ollama := filepath.Join(root, "ollama")
	digest := strings.Repeat("ab", 32)
	write(filepath.Join(ollama, "blobs", "sha256-"+digest), gguf)
	manifest := `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
	 "config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:` + strings.Repeat("cd", 32) + `","size":10},
	 "layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:` + digest + `","size":` + itoa(len(gguf)) + `},
	           {"mediaType":"application/vnd.ollama.image.template","digest":"sha256:` + strings.Repeat("ef", 32) + `","size":5}]}`
	write(filepath.Join(ollama, "manifests", "registry.ollama.ai", "library", "phi4", "latest"), []byte(manifest))
	write(filepath.Join(ollama, "manifests", "hf.co", "bartowski", "phi-4-GGUF", "Q8_0"), []byte(manifest))
	write(filepath.Join(ollama, "manifests", "registry.ollama.ai", "library", "gone", "latest"),
		[]byte(strings.Replace(manifest, digest, strings.Repeat("00", 32), 1))) // blob missing: skipped
	write(filepath.Join(ollama, "manifests", "registry.ollama.ai", "library", "junk", "latest"), []byte("{"))

	// A model of an architecture the engine does not run.
	write(filepath.Join(store, "qwen", "qwen-x", "config.json"), []byte(`{"model_type":"qwen2"}`))
	write(filepath.Join(store, "qwen", "qwen-x", "model.safetensors"), []byte("x"))

	lms := filepath.Join(root, "lmstudio")
	write(filepath.Join(lms, "lmstudio-community", "phi-4-GGUF", "phi-4-Q8_0.gguf"), gguf)

	return &Catalog{Dir: store, OllamaDir: ollama, LMStudioDirs: []string{lms, filepath.Join(root, "missing")}, Families: []string{"phi3", "llama"}}, root
}

func itoa(n int) string { return strconv.Itoa(n) }

func names(list []llm.Info) []string {
	var out []string
	for _, m := range list {
		out = append(out, m.Name)
	}
	return out
}

func TestListFindsAllStores(t *testing.T) {
	c, root := fakeStores(t)
	list, err := c.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"microsoft/phi-micro", "someone/phi-GGUF/phi-Q8_0", "ollama:hf.co/bartowski/phi-4-GGUF:Q8_0", "ollama:phi4:latest",
		"lmstudio:lmstudio-community/phi-4-GGUF/phi-4-Q8_0"}
	if got := names(list); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("names = %q\nwant    %q", got, want)
	}
	byName := map[string]llm.Info{}
	for _, m := range list {
		byName[m.Name] = m
	}
	ol := byName["ollama:phi4:latest"]
	if ol.Path != filepath.Join(root, "ollama", "blobs", "sha256-"+strings.Repeat("ab", 32)) || ol.Source != SourceOllama ||
		ol.Format != "gguf" || ol.Family != "phi3" || ol.Quantization != "Q8_0" || ol.Digest != strings.Repeat("ab", 32) {
		t.Errorf("ollama model = %+v", ol)
	}
	hf := byName["microsoft/phi-micro"]
	if hf.Format != "safetensors" || hf.Family != "phi3" || hf.Size == 0 || hf.Source != SourceStore || hf.ContextLength == 0 {
		t.Errorf("hf model = %+v", hf)
	}
	if lm := byName["lmstudio:lmstudio-community/phi-4-GGUF/phi-4-Q8_0"]; lm.Source != SourceLMStudio || !strings.HasPrefix(lm.Path, filepath.Join(root, "lmstudio")) {
		t.Errorf("lm studio model = %+v", lm)
	}
}

func TestFamiliesFilter(t *testing.T) {
	c, _ := fakeStores(t)
	c.Families = nil
	list, _ := c.List(context.Background())
	if len(list) != 6 || !slices.Contains(names(list), "qwen/qwen-x") {
		t.Errorf("unfiltered: %q", names(list))
	}
}

func TestDefaultFirstAndFind(t *testing.T) {
	c, _ := fakeStores(t)
	c.Default = "ollama:phi4:latest"
	list, _ := c.List(context.Background())
	if list[0].Name != "ollama:phi4:latest" || len(list) != 5 {
		t.Errorf("default not first: %q", names(list))
	}
	micro := testrefs.Path(t, "models", "micro", "phi3-random-micro-F32.gguf")
	c.Default = micro // a path outside every store
	list, _ = c.List(context.Background())
	if list[0].Path != micro || list[0].Source != SourcePath || len(list) != 6 {
		t.Errorf("default path not first: %+v", list[0])
	}
	for name, want := range map[string]string{"": micro, "ollama:phi4": "ollama:phi4:latest", "microsoft/phi-micro": "microsoft/phi-micro"} {
		m, err := c.Find(context.Background(), name)
		if err != nil || (m.Name != want && m.Path != want) {
			t.Errorf("Find(%q) = %+v, %v", name, m, err)
		}
	}
	if _, err := c.Find(context.Background(), "nothing"); !errors.Is(err, llm.ErrUnknownModel) {
		t.Errorf("Find unknown: %v", err)
	}
}

func TestRemoveOnlyOwnModels(t *testing.T) {
	c, root := fakeStores(t)
	ctx := context.Background()
	if _, err := c.Remove(ctx, "ollama:phi4:latest"); err == nil || !strings.Contains(err.Error(), "ollama rm phi4:latest") {
		t.Errorf("removing an Ollama model: %v", err)
	}
	if _, err := c.Remove(ctx, "lmstudio:lmstudio-community/phi-4-GGUF/phi-4-Q8_0"); err == nil {
		t.Error("removed an LM Studio model")
	}
	if _, err := os.Stat(filepath.Join(root, "ollama", "blobs", "sha256-"+strings.Repeat("ab", 32))); err != nil {
		t.Errorf("Ollama blob touched: %v", err)
	}
	m, err := c.Remove(ctx, "microsoft/phi-micro")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still there", m.Path)
	}
	if _, err := os.Stat(filepath.Join(root, "store", "microsoft")); !errors.Is(err, os.ErrNotExist) {
		t.Error("empty parent folder left behind")
	}
	if _, err := c.Remove(ctx, "someone/phi-GGUF/phi-Q8_0"); err != nil {
		t.Fatal(err)
	}
	list, _ := c.List(ctx)
	if len(list) != 3 {
		t.Errorf("after removals: %q", names(list))
	}
}

func TestEmptyCatalog(t *testing.T) {
	c := &Catalog{Dir: filepath.Join(t.TempDir(), "none")}
	list, err := c.List(context.Background())
	if err != nil || len(list) != 0 {
		t.Errorf("%v %v", list, err)
	}
	if _, err := c.Find(context.Background(), ""); !errors.Is(err, llm.ErrUnknownModel) {
		t.Errorf("Find default in empty catalog: %v", err)
	}
}

func FuzzModelBlobDigest(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:` + strings.Repeat("ab", 32) + `","size":1}]}`))
	f.Add([]byte(`{"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:../../etc"}]}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, ok := modelBlobDigest(b)
		if ok && (len(d) != 64 || strings.Trim(d, "0123456789abcdef") != "") {
			t.Fatalf("digest %q accepted: a blob path must not be steerable", d)
		}
	})
}

// BenchmarkList measures listing three stores (what every API request does);
// GGUF headers come from the cache after the first call.
func BenchmarkList(b *testing.B) {
	c, _ := fakeStores(b)
	ctx := context.Background()
	if _, err := c.List(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.List(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// An empty name (e.g. an unset shell variable: `phi4mac rm "$MODEL"`) must
// not resolve to the default model and delete it.
func TestRemoveEmptyNameDeletesNothing(t *testing.T) {
	c, _ := fakeStores(t)
	ctx := context.Background()
	before, _ := c.List(ctx)
	for _, name := range []string{"", "  "} {
		if _, err := c.Remove(ctx, name); err == nil {
			t.Errorf("Remove(%q) succeeded", name)
		}
	}
	after, _ := c.List(ctx)
	if !slices.Equal(names(before), names(after)) {
		t.Errorf("models before %q, after %q", names(before), names(after))
	}
}

// Removing a split GGUF removes every part (and unfinished downloads of
// them), not only the first part that the list shows.
func TestRemoveSplitGGUF(t *testing.T) {
	c, root := fakeStores(t)
	ctx := context.Background()
	gguf, err := os.ReadFile(testrefs.Path(t, "models", "micro", "phi3-random-micro-Q8_0.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "store", "someone", "split-GGUF")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	parts := []string{"phi-Q4_0-00001-of-00003.gguf", "phi-Q4_0-00002-of-00003.gguf", "phi-Q4_0-00003-of-00003.gguf.partial"}
	for _, p := range parts {
		if err := os.WriteFile(filepath.Join(dir, p), gguf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	other := filepath.Join(dir, "phi-Q8_0-00002-of-00002.gguf") // another model's part: kept
	if err := os.WriteFile(other, gguf, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Remove(ctx, "someone/split-GGUF/phi-Q4_0-00001-of-00003"); err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		if _, err := os.Stat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind", p)
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another model's part was deleted: %v", err)
	}
}
