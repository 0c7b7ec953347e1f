package testrefs

import (
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// Result is one llama.cpp reference run: logits/<model>/<config>/result.json.gz
// (format in the refs README §2.2).
type Result struct {
	NVocab  int      `json:"n_vocab"`
	KVType  string   `json:"kv_type"`
	Prompts []Prompt `json:"prompts"`
}

// Prompt is one prompt of a Result: its ids, the logits summary at every
// prompt position, and the greedy continuation.
type Prompt struct {
	Name        string `json:"name"`
	IDs         []int  `json:"ids"`
	Positions   []Step `json:"positions"`
	GreedySteps []Step `json:"greedy_steps"`
	Greedy      []int  `json:"greedy"`
}

// Step summarises the logits of one position: the log-sum-exp over the
// vocabulary, the 16 largest logits as [id, logit] pairs, and for greedy
// steps the chosen token and its margin over the runner-up.
type Step struct {
	Token  int          `json:"token"`
	Margin float64      `json:"margin"`
	LSE    float64      `json:"lse"`
	Top    [][2]float64 `json:"top"`
}

// ReadResult reads dir/result.json.gz, failing the test if it is missing
// or malformed.
func ReadResult(t testing.TB, dir string) *Result {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "result.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	var r Result
	if err := json.NewDecoder(zr).Decode(&r); err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	return &r
}

// ReadF32 reads a raw little-endian float32 file (the references'
// NAME.last.f32 and NAME.all.f32), or returns nil if it does not exist:
// not every configuration has every file.
func ReadF32(t testing.TB, path string) []float32 {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(data)%4 != 0 {
		t.Fatalf("%s: %d bytes is not a whole number of float32 values", path, len(data))
	}
	out := make([]float32, len(data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return out
}

// Diff compares logits (one position, the whole vocabulary) with the
// reference step: it returns the largest |logits[id] − ref| over the
// step's top entries and |lse(logits) − step.LSE|.
func (st Step) Diff(logits []float32) (top, lse float64) {
	for _, e := range st.Top {
		top = max(top, math.Abs(float64(logits[int(e[0])])-e[1]))
	}
	return top, math.Abs(LogSumExp(logits) - st.LSE)
}

// LogSumExp returns log Σ exp(v[i]), computed stably in float64.
func LogSumExp(v []float32) float64 {
	mx := math.Inf(-1)
	for _, x := range v {
		mx = max(mx, float64(x))
	}
	var s float64
	for _, x := range v {
		s += math.Exp(float64(x) - mx)
	}
	return mx + math.Log(s)
}
