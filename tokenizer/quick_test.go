package tokenizer

import (
	"testing"

	"github.com/phi4mac/phi4mac/internal/testrefs"
)

func TestQuickCL100K(t *testing.T) {
	tok := mustLoad(t, testrefs.Path(t, "models", "tiny", "hf", "tokenizer.json"))
	bad := 0
	for _, c := range publicCases(t) {
		got := tok.Encode(c.Text, EncodeOptions{})
		if !slicesEqual(got, c.CL100K) {
			bad++
			if bad < 20 {
				t.Errorf("%s %q: got %v want %v", c.ID, c.Text, got, c.CL100K)
			}
		}
	}
	t.Logf("%d bad", bad)
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
