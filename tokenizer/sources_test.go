package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/phi4mac/phi4mac/engine/weights"
	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// scratch is a temp dir for synthesized tokenizer files shared by tests.
var scratch string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tokenizer-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	scratch = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// source is one way of loading a vocabulary.
type source struct {
	name string
	path func(t testing.TB) string
}

var synthOnce sync.Map // name → *synthResult

type synthResult struct {
	once sync.Once
	path string
	err  error
}

// synth runs make once per name and returns the path it produced.
func synth(t testing.TB, name string, make func(dir string) (string, error)) string {
	t.Helper()
	v, _ := synthOnce.LoadOrStore(name, &synthResult{})
	r := v.(*synthResult)
	r.once.Do(func() {
		dir := filepath.Join(scratch, name)
		if r.err = os.MkdirAll(dir, 0o755); r.err == nil {
			r.path, r.err = make(dir)
		}
	})
	if r.err != nil {
		t.Fatalf("synthesize %s: %v", name, r.err)
	}
	return r.path
}

// hfConfigFiles are the config files copied beside a vocabulary.
var hfConfigFiles = []string{"tokenizer_config.json", "added_tokens.json", "special_tokens_map.json", "generation_config.json"}

func linkExisting(src, dst string, names ...string) error {
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(src, n)); err != nil {
			continue
		}
		if err := os.Symlink(filepath.Join(src, n), filepath.Join(dst, n)); err != nil {
			return err
		}
	}
	return nil
}

// cl100kSources loads the full phi-4 (cl100k) vocabulary from each source.
func cl100kSources() []source {
	hf := func(t testing.TB) string { return testrefs.Path(t, "models", "tiny", "hf") }
	return []source{
		{"tokenizer.json", func(t testing.TB) string { return filepath.Join(hf(t), "tokenizer.json") }},
		{"vocab.json+merges.txt", func(t testing.TB) string {
			return synth(t, "cl100k-vocab", func(dir string) (string, error) {
				return dir, linkExisting(hf(t), dir, append([]string{"vocab.json", "merges.txt"}, hfConfigFiles...)...)
			})
		}},
		{"gguf", func(t testing.TB) string {
			return testrefs.Path(t, "models", "tiny", "phi3-random-tiny-Q4_K_M.gguf")
		}},
		// microsoft/phi-4's own tokenizer_config.json (added tokens, flags,
		// chat template) beside the cl100k vocab.json and merges.txt.
		{"vocab.json+merges.txt+phi-4 config", func(t testing.TB) string {
			return synth(t, "cl100k-phi4-config", func(dir string) (string, error) {
				if err := linkExisting(hf(t), dir, "vocab.json", "merges.txt", "generation_config.json"); err != nil {
					return "", err
				}
				return dir, linkExisting(testrefs.Path(t, "tokenizer", "phi4"), dir, "tokenizer_config.json")
			})
		}},
	}
}

// o200kSources loads the full phi-4-mini (o200k) vocabulary from each
// source. Only vocab.json+merges.txt is shipped; tokenizer.json and GGUF are
// synthesized from it the way HF and llama.cpp's converter write them.
func o200kSources() []source {
	mini := func(t testing.TB) string { return testrefs.Path(t, "tokenizer", "phi4mini") }
	return []source{
		{"vocab.json+merges.txt", mini},
		{"tokenizer.json (synthesized)", func(t testing.TB) string {
			return synth(t, "o200k-json", func(dir string) (string, error) {
				if err := linkExisting(mini(t), dir, hfConfigFiles...); err != nil {
					return "", err
				}
				data, err := synthTokenizerJSON(mini(t), o200kRegex)
				if err != nil {
					return "", err
				}
				p := filepath.Join(dir, "tokenizer.json")
				return p, os.WriteFile(p, data, 0o644)
			})
		}},
		{"gguf (synthesized)", func(t testing.TB) string {
			return synth(t, "o200k-gguf", func(dir string) (string, error) {
				data, err := synthGGUF(mini(t), "gpt-4o")
				if err != nil {
					return "", err
				}
				p := filepath.Join(dir, "phi4mini-vocab.gguf")
				return p, os.WriteFile(p, data, 0o644)
			})
		}},
	}
}

// hfFolder is what the synthesizers read from an HF folder.
type hfFolder struct {
	vocab  map[string]int
	merges []string
	added  []hfAddedToken // sorted by id
	cfg    map[string]any
	size   int // config.json vocab_size, or the largest id + 1
}

func readHFFolder(dir string) (*hfFolder, error) {
	f := &hfFolder{}
	data, err := os.ReadFile(filepath.Join(dir, "vocab.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &f.vocab); err != nil {
		return nil, err
	}
	data, err = os.ReadFile(filepath.Join(dir, "merges.txt"))
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if !strings.HasPrefix(line, "#version") {
			f.merges = append(f.merges, line)
		}
	}
	data, err = os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		return nil, err
	}
	var cfg struct {
		Added map[string]hfAddedToken `json:"added_tokens_decoder"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &f.cfg); err != nil {
		return nil, err
	}
	for k, a := range cfg.Added {
		var id int
		fmt.Sscan(k, &id)
		a.ID = &id
		f.added = append(f.added, a)
		f.size = max(f.size, id+1)
	}
	sort.Slice(f.added, func(i, j int) bool { return *f.added[i].ID < *f.added[j].ID })
	for _, id := range f.vocab {
		f.size = max(f.size, id+1)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "config.json")); err == nil {
		var c struct {
			VocabSize int `json:"vocab_size"`
		}
		if json.Unmarshal(data, &c) == nil && c.VocabSize > f.size {
			f.size = c.VocabSize
		}
	}
	return f, nil
}

// synthTokenizerJSON writes the tokenizer.json HF tokenizers would save for
// an HF folder with the given Split regex.
func synthTokenizerJSON(dir, regex string) ([]byte, error) {
	f, err := readHFFolder(dir)
	if err != nil {
		return nil, err
	}
	added := make([]map[string]any, 0, len(f.added))
	for _, a := range f.added {
		added = append(added, map[string]any{"id": *a.ID, "content": a.Content, "single_word": false,
			"lstrip": a.LStrip, "rstrip": a.RStrip, "normalized": false, "special": a.Special})
	}
	doc := map[string]any{
		"version":      "1.0",
		"added_tokens": added,
		"normalizer":   nil,
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": regex}, "behavior": "Isolated", "invert": false},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false},
		}},
		"decoder": map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": "",
			"end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
			"vocab": f.vocab, "merges": f.merges},
	}
	return json.Marshal(doc)
}

// synthGGUF writes a tensor-less GGUF with the tokenizer metadata llama.cpp's
// convert_hf_to_gguf.py writes for a GPT-2 style HF folder: every id up to
// vocab_size, added special tokens as CONTROL, other added tokens as
// USER_DEFINED, ids with no token as "[PADn]" UNUSED.
func synthGGUF(dir, pre string) ([]byte, error) {
	f, err := readHFFolder(dir)
	if err != nil {
		return nil, err
	}
	tokens := make([]string, f.size)
	types := make([]int32, f.size)
	for tok, id := range f.vocab {
		tokens[id], types[id] = tok, ggufNormal
	}
	for _, a := range f.added {
		tokens[*a.ID], types[*a.ID] = a.Content, ggufUserDefined
		if a.Special {
			types[*a.ID] = ggufControl
		}
	}
	for id := range tokens {
		if types[id] == 0 {
			tokens[id], types[id] = fmt.Sprintf("[PAD%d]", id), ggufUnused
		}
	}
	idOf := func(key string) uint32 {
		name, _ := f.cfg[key].(string)
		for _, a := range f.added {
			if a.Content == name {
				return uint32(*a.ID)
			}
		}
		return uint32(f.vocab[name])
	}
	tmpl, _ := f.cfg["chat_template"].(string)
	meta := []weights.KV{
		{Key: "general.architecture", Value: weights.StringValue("phi3")},
		{Key: "tokenizer.ggml.model", Value: weights.StringValue("gpt2")},
		{Key: "tokenizer.ggml.pre", Value: weights.StringValue(pre)},
		{Key: "tokenizer.ggml.tokens", Value: weights.StringsValue(tokens)},
		{Key: "tokenizer.ggml.token_type", Value: weights.Int32sValue(types)},
		{Key: "tokenizer.ggml.merges", Value: weights.StringsValue(f.merges)},
		{Key: "tokenizer.ggml.bos_token_id", Value: weights.Uint32Value(idOf("bos_token"))},
		{Key: "tokenizer.ggml.eos_token_id", Value: weights.Uint32Value(idOf("eos_token"))},
		{Key: "tokenizer.ggml.add_bos_token", Value: weights.BoolValue(false)},
		{Key: "tokenizer.chat_template", Value: weights.StringValue(tmpl)},
	}
	var buf bytes.Buffer
	if err := weights.WriteGGUF(&buf, meta, nil); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// TestSynthGGUFMatchesConverter checks the GGUF synthesizer against a file
// llama.cpp's converter wrote: synthesized from tiny/hf, the tokenizer
// metadata must equal that of the shipped tiny GGUF.
func TestSynthGGUFMatchesConverter(t *testing.T) {
	data, err := synthGGUF(testrefs.Path(t, "models", "tiny", "hf"), "dbrx")
	if err != nil {
		t.Fatal(err)
	}
	ours, err := weights.OpenGGUFBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	real, err := weights.OpenGGUF(testrefs.Path(t, "models", "tiny", "phi3-random-tiny-Q4_K_M.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer real.Close()
	for _, key := range []string{"tokenizer.ggml.tokens", "tokenizer.ggml.merges"} {
		a, _ := ours.Strings(key)
		b, _ := real.Strings(key)
		if strings.Join(a, "\n") != strings.Join(b, "\n") || len(a) == 0 {
			t.Errorf("%s differs from the converter's (%d vs %d entries)", key, len(a), len(b))
		}
	}
	a, _ := ours.Ints("tokenizer.ggml.token_type")
	b, _ := real.Ints("tokenizer.ggml.token_type")
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Error("token_type differs from the converter's")
	}
	for _, key := range []string{"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"} {
		x, _ := ours.Uint(key)
		y, _ := real.Uint(key)
		if x != y {
			t.Errorf("%s = %d, converter %d", key, x, y)
		}
	}
}
