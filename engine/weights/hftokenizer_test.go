package weights

import (
	"reflect"
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
