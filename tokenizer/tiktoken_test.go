package tokenizer

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"os"
	"testing"

	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// TestTiktokenRandom compares random stress strings with the ids official
// tiktoken gives (testdata/tiktoken/README.md): the scanners' backtracking
// and Unicode 16 classes against the real regex engine.
func TestTiktokenRandom(t *testing.T) {
	f, err := os.Open("testdata/tiktoken/random.jsonl.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	cl := mustLoad(t, testrefs.Path(t, "models", "tiny", "hf", "tokenizer.json"))
	o2 := mustLoad(t, testrefs.Path(t, "tokenizer", "phi4mini"))
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var c struct {
			Text   string `json:"text"`
			CL100K []int  `json:"cl100k"`
			O200K  []int  `json:"o200k"`
		}
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		checkIDs(t, "cl100k "+c.Text, cl.Encode(c.Text, EncodeOptions{}), c.CL100K)
		checkIDs(t, "o200k "+c.Text, o2.Encode(c.Text, EncodeOptions{}), c.O200K)
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 2100 {
		t.Fatalf("%d cases, want 2100", n)
	}
}
