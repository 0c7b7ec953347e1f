package tokenizer

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"os"
	"strconv"
	"testing"

	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// TestHFAddedTokens compares text full of added tokens and white space of
// many kinds with the ids HF tokenizers gives (testdata/hf/README.md): the
// lstrip/rstrip rules, for phi-4's and phi-4-mini's flags, from
// tokenizer.json and from GGUF (where the flags come from the chat template).
func TestHFAddedTokens(t *testing.T) {
	f, err := os.Open("testdata/hf/added.jsonl.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	models := [][]string{
		{testrefs.Path(t, "models", "tiny", "hf", "tokenizer.json"), testrefs.Path(t, "models", "tiny", "phi3-random-tiny-Q4_K_M.gguf")},
		{testrefs.Path(t, "models", "micromini", "hf", "tokenizer.json"), testrefs.Path(t, "models", "micromini", "phi4mini-random-micromini-F32.gguf")},
	}
	sc := bufio.NewScanner(zr)
	n := 0
	for sc.Scan() {
		var c struct {
			Text string  `json:"text"`
			IDs  [][]int `json:"ids"`
		}
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		if len(c.IDs) != len(models) {
			t.Fatalf("%q: %d id lists", c.Text, len(c.IDs))
		}
		for i, paths := range models {
			for _, p := range paths {
				checkIDs(t, p+" "+strconv.Quote(c.Text), mustLoad(t, p).Encode(c.Text, EncodeOptions{AllowSpecial: true}), c.IDs[i])
			}
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 1000 {
		t.Fatalf("%d cases, want 1000", n)
	}
}
