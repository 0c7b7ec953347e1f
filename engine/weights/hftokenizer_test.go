package weights

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// TestHFTokenizerKVsMatchConverter converts each reference HF folder's
// tokenizer and compares with the tokenizer metadata llama.cpp's converter
// wrote into the matching GGUF.
func TestHFTokenizerKVsMatchConverter(t *testing.T) {
	for _, tc := range []struct{ hf, gguf, pre string }{
		{"models/micro/hf", "models/micro/phi3-random-micro-F32.gguf", "dbrx"},
		{"models/micromini/hf", "models/micromini/phi4mini-random-micromini-F32.gguf", "gpt-4o"},
		{"models/tiny/hf", "models/tiny/phi3-random-tiny-Q4_K_M.gguf", "dbrx"},
	} {
		g, err := OpenGGUF(testrefs.Path(t, tc.gguf))
		if err != nil {
			t.Fatal(err)
		}
		want := TokenizerKVs(g)
		g.Close()
		got, err := HFTokenizerKVs(testrefs.Path(t, tc.hf), 0, tc.pre)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d keys, want %d", tc.hf, len(got), len(want))
		}
		for i := range min(len(got), len(want)) {
			if got[i].Key != want[i].Key || !reflect.DeepEqual(got[i].Value, want[i].Value) {
				gs, ws := got[i].Value.V, want[i].Value.V
				if a, ok := gs.([]string); ok {
					b, _ := ws.([]string)
					for j := range min(len(a), len(b)) {
						if a[j] != b[j] {
							t.Errorf("%s: %s[%d] = %q, want %q", tc.hf, got[i].Key, j, a[j], b[j])
							break
						}
					}
				}
				if a, ok := gs.([]int32); ok {
					b, _ := ws.([]int32)
					for j := range min(len(a), len(b)) {
						if a[j] != b[j] {
							t.Errorf("%s: %s[%d] = %d, want %d", tc.hf, got[i].Key, j, a[j], b[j])
							break
						}
					}
				}
				t.Errorf("%s: entry %d: %s (%s, len %d), want %s (%s, len %d)", tc.hf, i, got[i].Key, got[i].Value.Type, got[i].Value.Len(), want[i].Key, want[i].Value.Type, want[i].Value.Len())
			}
		}
	}
}

// TestHFTokenizerKVsPhi4Mini converts phi-4-mini's real tokenizer files
// (vocab.json, merges.txt, added_tokens.json, tokenizer_config.json; no
// tokenizer.json) and checks the facts the refs README lists.
func TestHFTokenizerKVsPhi4Mini(t *testing.T) {
	kvs, err := HFTokenizerKVs(testrefs.Path(t, "tokenizer/phi4mini"), 0, "gpt-4o")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]Value{}
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	tokens, _ := m["tokenizer.ggml.tokens"].V.([]string)
	types, _ := m["tokenizer.ggml.token_type"].V.([]int32)
	if len(tokens) != 200064 || len(types) != 200064 {
		t.Fatalf("%d tokens, %d types; want 200064", len(tokens), len(types))
	}
	for _, tc := range []struct {
		id   int
		text string
		typ  int32
	}{
		{0, "!", TokenNormal}, {199999, "<|endoftext|>", TokenControl}, {200020, "<|end|>", TokenControl},
		{200019, "<|assistant|>", TokenControl}, {200029, "[PAD200029]", TokenUnused}, {200063, "[PAD200063]", TokenUnused},
	} {
		if tokens[tc.id] != tc.text || types[tc.id] != tc.typ {
			t.Errorf("token %d = %q type %d, want %q type %d", tc.id, tokens[tc.id], types[tc.id], tc.text, tc.typ)
		}
	}
	for key, want := range map[string]uint32{"tokenizer.ggml.bos_token_id": 199999, "tokenizer.ggml.eos_token_id": 199999, "tokenizer.ggml.padding_token_id": 199999} {
		if got, _ := m[key].V.(uint32); got != want {
			t.Errorf("%s = %d, want %d", key, got, want)
		}
	}
	if merges := m["tokenizer.ggml.merges"].Len(); merges < 199000 {
		t.Errorf("%d merges", merges)
	}
	if tmpl, _ := m["tokenizer.chat_template"].V.(string); tmpl == "" {
		t.Error("no chat template")
	}
}

// TestHFTokenizerKVsHugeVocab checks that an absurd vocabulary size from
// config.json, the caller or a token id is an error, not a multi-gigabyte
// allocation.
func TestHFTokenizerKVsHugeVocab(t *testing.T) {
	src := testrefs.Path(t, "models/micro/hf")
	dir := t.TempDir()
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "added_tokens.json", "special_tokens_map.json"} {
		if err := os.WriteFile(filepath.Join(dir, f), mustRead(t, filepath.Join(src, f)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"vocab_size": 2000000000}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := HFTokenizerKVs(dir, 0, "dbrx"); err == nil || !strings.Contains(err.Error(), "vocab_size") {
		t.Fatalf("vocab_size 2e9: err = %v", err)
	}
	if _, err := HFTokenizerKVs(src, 1<<30, "dbrx"); err == nil || !strings.Contains(err.Error(), "vocabulary of") {
		t.Fatalf("vocabSize 2^30: err = %v", err)
	}
}
