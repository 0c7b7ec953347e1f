package synth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/engine/weights"
	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// Tiny's unshipped files (refs README §1.3).
const (
	tinySafetensorsSHA = "4ec29f470f7c62293aab13d6a95dbc3b37f559de28c49eb98479ab407ca565c8"
	tinyF32SHA         = "2dd9f2c05292d495f4eacf9f417a6df4761158d8955dccd0656f7a8d32b3a473"
	tinyF16SHA         = "6b306032f5b2dbfa3255ea4d720aaebc87edded0b16f84621e75d494047d38f0"
	tinyBF16SHA        = "d0eace6eaf26b693e4e0d4bdd413dfc9546ce13bf843c8fbbd18157ae05b25ec"
	tinyQ8SHA          = "2cadb61128090e7ceb167adebe22082bc1f7dc2e7574b8b24556e592af110e79"
	tinyQ4SHA          = "8c7a4de5c46ff048c6ec806ab2b11a5ece613357eefa2670cbb76675d0b41844"
)

func preset(t testing.TB, name string) Config {
	t.Helper()
	c, ok := Preset(name)
	if !ok {
		t.Fatalf("no preset %q", name)
	}
	return c
}

// refSHA returns the sha256 SHA256SUMS lists for the refs-relative path.
func refSHA(t *testing.T, rel string) string {
	t.Helper()
	f, err := os.Open(testrefs.Path(t, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 && strings.TrimPrefix(fields[1], "./") == rel {
			return fields[0]
		}
	}
	t.Fatalf("%s not in SHA256SUMS", rel)
	return ""
}

func sha(t *testing.T, write func(io.Writer) error) string {
	t.Helper()
	h := sha256.New()
	if err := write(h); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestPresetExponents(t *testing.T) {
	// The table in make_tiny_phi3.py's docstring: embed qkv o gate_up down lm_head.
	want := map[string][6]int{
		"micro": {2, 2, 4, 2, 5, 1},
		"tiny":  {2, 3, 5, 3, 6, 2},
		"small": {2, 4, 6, 4, 7, 4},
	}
	for name, w := range want {
		ts := preset(t, name).Tensors()
		got := [6]int{ts[0].Exp, ts[2].Exp, ts[3].Exp, ts[5].Exp, ts[6].Exp, ts[len(ts)-1].Exp}
		if got != w {
			t.Errorf("%s: exponents %v, want %v", name, got, w)
		}
	}
	if p := preset(t, "tiny").Params(); p != 54397184 {
		t.Errorf("tiny params %d", p)
	}
	if p := preset(t, "micro").Params(); p != 225600 {
		t.Errorf("micro params %d", p)
	}
	if p := preset(t, "micromini").Params(); p != 426624 {
		t.Errorf("micromini params %d", p)
	}
	for _, tc := range []struct {
		n    int
		want string
	}{{225600, "226K"}, {54397184, "54M"}, {426624, "427K"}, {1_100_000_000, "1.1B"}, {14_659_507_200, "15B"}} {
		if got := weights.SizeLabel(tc.n); got != tc.want {
			t.Errorf("SizeLabel(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

// TestReproduceSafetensors regenerates the shipped micro and micromini
// model.safetensors and compares sha256 with SHA256SUMS.
func TestReproduceSafetensors(t *testing.T) {
	for _, name := range []string{"micro", "micromini"} {
		want := refSHA(t, "models/"+name+"/hf/model.safetensors")
		if got := sha(t, func(w io.Writer) error { return preset(t, name).WriteSafetensors(w, nil) }); got != want {
			t.Errorf("%s model.safetensors sha256 %s, want %s", name, got, want)
		}
	}
}

// TestReproduceGGUF regenerates every shipped GGUF of micro and micromini —
// the converter's F32/F16/BF16 files and llama-quantize's Q8_0, Q4_0 and
// Q4_K_M files — with the tokenizer metadata converted from the HF folders.
func TestReproduceGGUF(t *testing.T) {
	for _, tc := range []struct {
		preset, pre, stem string
		schemes           []string
	}{
		{"micro", "dbrx", "phi3-random-micro", []string{"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K_M"}},
		{"micromini", "gpt-4o", "phi4mini-random-micromini", []string{"F32", "F16", "Q8_0"}},
	} {
		tok, err := weights.HFTokenizerKVs(testrefs.Path(t, "models", tc.preset, "hf"), 0, tc.pre)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range tc.schemes {
			scheme, err := weights.ParseScheme(name)
			if err != nil {
				t.Fatal(err)
			}
			rel := "models/" + tc.preset + "/" + tc.stem + "-" + name + ".gguf"
			var buf bytes.Buffer
			if err := preset(t, tc.preset).WriteGGUF(&buf, scheme, tok, nil); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(buf.Bytes())
			if got := hex.EncodeToString(sum[:]); got != refSHA(t, rel) {
				ref, _ := os.ReadFile(testrefs.Path(t, rel))
				t.Errorf("%s: sha256 differs; first differing byte %d (sizes %d, %d)", rel, firstDiff(buf.Bytes(), ref), buf.Len(), len(ref))
			}
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestWriteHF(t *testing.T) {
	dir := t.TempDir()
	c := preset(t, "micro")
	if err := c.WriteHF(dir, testrefs.Path(t, "models/micro/hf"), nil); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(got)
	if hex.EncodeToString(sum[:]) != refSHA(t, "models/micro/hf/model.safetensors") {
		t.Error("model.safetensors differs from the reference")
	}
	for _, f := range []string{"tokenizer.json", "merges.txt", "tokenizer_config.json"} {
		a, _ := os.ReadFile(filepath.Join(dir, f))
		b, _ := os.ReadFile(testrefs.Path(t, "models/micro/hf", f))
		if !bytes.Equal(a, b) {
			t.Errorf("%s not copied", f)
		}
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	for _, want := range []string{`"bos_token_id": 929`, `"eos_token_id": 937`, `"pad_token_id": 1021`, `"vocab_size": 1024`} {
		if !bytes.Contains(cfg, []byte(want)) {
			t.Errorf("config.json lacks %s", want)
		}
	}
	st, err := weights.OpenSafetensors(dir)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
}

func TestValidate(t *testing.T) {
	bad := preset(t, "micro")
	bad.Heads = 3
	f16, _ := weights.ParseScheme("f16")
	if err := bad.WriteGGUF(io.Discard, f16, nil, nil); err == nil {
		t.Error("hidden not divisible by heads: no error")
	}
	bad = preset(t, "micro")
	bad.Name = "phi3"
	if err := bad.Validate(); err == nil {
		t.Error("name containing phi3: no error")
	}
	if _, err := weights.ParseScheme("q6_k"); err == nil {
		t.Error("q6_k scheme accepted")
	}
	tok := []weights.KV{{Key: "tokenizer.ggml.tokens", Value: weights.StringsValue(make([]string, 5))}}
	if err := preset(t, "micro").WriteGGUF(io.Discard, f16, tok, nil); err == nil {
		t.Error("tokenizer size mismatch: no error")
	}
}

// TestReproduceTiny regenerates tiny's 109 MB model.safetensors and its
// F32/F16/BF16 GGUFs (221/112/112 MB, hashed while streaming) and the
// llama-quantize Q8_0/Q4_0 files, and checks the sha256 values published in
// the refs README; and the shipped Q4_K_M file.
func TestReproduceTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("regenerates 550 MB of tiny model files")
	}
	c := preset(t, "tiny")
	if got := sha(t, func(w io.Writer) error { return c.WriteSafetensors(w, nil) }); got != tinySafetensorsSHA {
		t.Errorf("tiny model.safetensors sha256 %s, want %s", got, tinySafetensorsSHA)
	}
	tok, err := weights.HFTokenizerKVs(testrefs.Path(t, "models/tiny/hf"), 0, "dbrx")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		scheme string
		want   string
	}{
		{"F32", tinyF32SHA}, {"F16", tinyF16SHA}, {"BF16", tinyBF16SHA},
		{"Q8_0", tinyQ8SHA}, {"Q4_0", tinyQ4SHA},
		{"Q4_K_M", refSHA(t, "models/tiny/phi3-random-tiny-Q4_K_M.gguf")},
	} {
		scheme, err := weights.ParseScheme(tc.scheme)
		if err != nil {
			t.Fatal(err)
		}
		if got := sha(t, func(w io.Writer) error { return c.WriteGGUF(w, scheme, tok, nil) }); got != tc.want {
			t.Errorf("tiny %s GGUF sha256 %s, want %s", tc.scheme, got, tc.want)
		}
	}
}
