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

// TestTiktoken compares stress strings with the ids official tiktoken gives
// (testdata/tiktoken/README.md): random strings, for the scanners'
// backtracking and Unicode 16 classes against the real regex engine, and
// long runs of one unit, for the heap and rank-by-rank merging of long
// pieces.
func TestTiktoken(t *testing.T) {
	cl := mustLoad(t, testrefs.Path(t, "models", "tiny", "hf", "tokenizer.json"))
	o2 := mustLoad(t, testrefs.Path(t, "tokenizer", "phi4mini"))
	for _, tt := range []struct {
		file  string
		cases int
	}{
		{"random.jsonl.gz", 2100},
		{"runs.jsonl.gz", 750},
	} {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open("testdata/tiktoken/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			zr, err := gzip.NewReader(f)
			if err != nil {
				t.Fatal(err)
			}
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
				name := strconv.Quote(c.Text[:min(len(c.Text), 40)])
				checkIDs(t, "cl100k "+name, cl.Encode(c.Text, EncodeOptions{}), c.CL100K)
				checkIDs(t, "o200k "+name, o2.Encode(c.Text, EncodeOptions{}), c.O200K)
				n++
			}
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
			if n != tt.cases {
				t.Fatalf("%d cases, want %d", n, tt.cases)
			}
		})
	}
}
