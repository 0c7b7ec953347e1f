package engine_test

import (
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/cpu"
	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// refFile is a llama.cpp reference (logits/<model>/<config>/result.json.gz).
type refFile struct {
	NVocab  int         `json:"n_vocab"`
	KVType  string      `json:"kv_type"`
	Prompts []refPrompt `json:"prompts"`
}

type refPrompt struct {
	Name        string    `json:"name"`
	IDs         []int     `json:"ids"`
	Positions   []refStep `json:"positions"`
	GreedySteps []refStep `json:"greedy_steps"`
	Greedy      []int     `json:"greedy"`
}

type refStep struct {
	Token  int          `json:"token"`
	Margin float64      `json:"margin"`
	LSE    float64      `json:"lse"`
	Top    [][2]float64 `json:"top"`
}

func readRef(t *testing.T, dir string) *refFile {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "result.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var r refFile
	if err := json.NewDecoder(zr).Decode(&r); err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	return &r
}

// readF32 reads a raw little-endian float32 file, or returns nil if absent.
func readF32(t *testing.T, path string) []float32 {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return out
}

// refCase is one model file checked against one reference folder.
type refCase struct {
	name   string
	model  string // relative to refs/models
	ref    string // relative to refs/logits
	kv     engine.KVType
	ctx    int
	tol    float64 // max |Δlogit|
	greedy bool    // free-running greedy continuation must match where margins allow
}

// maxDiff returns max |a[i]-b[i]|.
func maxDiff(a, b []float32) float64 {
	var m float64
	for i := range b {
		m = max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// topDiff returns the largest |ours[id] - ref| over the reference's top
// entries, and the difference in log-sum-exp.
func topDiff(ours []float32, st refStep) (float64, float64) {
	var m float64
	for _, e := range st.Top {
		m = max(m, math.Abs(float64(ours[int(e[0])])-e[1]))
	}
	return m, math.Abs(lse(ours) - st.LSE)
}

func lse(v []float32) float64 {
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

func argmax(v []float32) int {
	b := 0
	for i, x := range v {
		if x > v[b] {
			b = i
		}
	}
	return b
}

func loadModel(t *testing.T, path string, threads int) *engine.Model {
	t.Helper()
	m, err := engine.Load(context.Background(), path, engine.Options{Backend: cpu.New(cpu.Options{Threads: threads}), NoTokenizer: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// checkRef runs every prompt of a reference through the model: all prompt
// positions (full logits where .all.f32 exists, else the top-16 and
// log-sum-exp of each position, plus the full .last.f32), then the greedy
// steps teacher-forced one token at a time through the KV cache, then a
// free-running greedy Generate compared up to the first near-tie.
func checkRef(t *testing.T, c refCase) {
	refs := testrefs.Dir(t)
	dir := filepath.Join(refs, "logits", c.ref)
	ref := readRef(t, dir)
	m := loadModel(t, filepath.Join(refs, "models", c.model), 2)
	if m.Config().Vocab != ref.NVocab {
		t.Fatalf("vocab %d, reference %d", m.Config().Vocab, ref.NVocab)
	}
	V := ref.NVocab
	ctx := context.Background()
	var worst float64
	for _, p := range ref.Prompts {
		s, err := m.NewSession(engine.SessionOptions{Ctx: c.ctx, KV: c.kv})
		if err != nil {
			t.Fatal(err)
		}
		all, err := s.Forward(ctx, p.IDs, true)
		if err != nil {
			t.Fatal(err)
		}
		n := len(p.IDs)
		if want := readF32(t, filepath.Join(dir, p.Name+".all.f32")); want != nil {
			d := maxDiff(all, want)
			worst = max(worst, d)
			if d > c.tol {
				t.Errorf("%s: all positions: max |Δ| %.3g > %.3g", p.Name, d, c.tol)
			}
		}
		for i, st := range p.Positions {
			d, dl := topDiff(all[i*V:(i+1)*V], st)
			worst = max(worst, d)
			if d > c.tol || dl > c.tol {
				t.Errorf("%s: position %d: top-16 max |Δ| %.3g, lse |Δ| %.3g > %.3g", p.Name, i, d, dl, c.tol)
			}
		}
		last := all[(n-1)*V:]
		if want := readF32(t, filepath.Join(dir, p.Name+".last.f32")); want != nil {
			d := maxDiff(last, want)
			worst = max(worst, d)
			if d > c.tol {
				t.Errorf("%s: last position: max |Δ| %.3g > %.3g", p.Name, d, c.tol)
			}
		} else {
			t.Errorf("%s: %s.last.f32 missing", dir, p.Name)
		}
		// Teacher-forced greedy steps through the decode path.
		logits := last
		for k, st := range p.GreedySteps {
			if k > 0 {
				if logits, err = s.Forward(ctx, []int{p.Greedy[k-1]}, false); err != nil {
					t.Fatal(err)
				}
			}
			d, dl := topDiff(logits, st)
			worst = max(worst, d)
			if d > c.tol || dl > c.tol {
				t.Errorf("%s: greedy step %d: top-16 max |Δ| %.3g, lse |Δ| %.3g > %.3g", p.Name, k, d, dl, c.tol)
			}
			if got := argmax(logits); got != st.Token && st.Margin > 2*c.tol {
				t.Errorf("%s: greedy step %d: argmax %d, reference %d (margin %.3g)", p.Name, k, got, st.Token, st.Margin)
			}
		}
		s.Close()
		if c.greedy {
			checkGreedy(t, m, c, p)
		}
	}
	t.Logf("%s vs %s: max |Δlogit| %.3g (tolerance %.3g)", c.model, c.ref, worst, c.tol)
}

// checkGreedy generates freely with the engine's API and compares the
// tokens with the reference up to the first step whose reference margin is
// within the tolerance (a near-tie either side may legitimately take).
func checkGreedy(t *testing.T, m *engine.Model, c refCase, p refPrompt) {
	s, err := m.NewSession(engine.SessionOptions{Ctx: c.ctx, KV: c.kv})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Generate(context.Background(), engine.Request{Prompt: p.IDs, MaxTokens: len(p.Greedy), StopIDs: []int{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	agree := 0
	for k, want := range p.Greedy {
		if k >= len(res.Tokens) {
			t.Errorf("%s: generated %d tokens, want %d", p.Name, len(res.Tokens), len(p.Greedy))
			return
		}
		if res.Tokens[k] != want {
			if p.GreedySteps[k].Margin > 2*c.tol {
				t.Errorf("%s: greedy token %d: %d, reference %d (margin %.3g); got %v want %v", p.Name, k, res.Tokens[k], want, p.GreedySteps[k].Margin, res.Tokens, p.Greedy)
			}
			break
		}
		agree++
	}
	if agree < len(p.Greedy) {
		t.Logf("%s: greedy agrees for %d/%d tokens, then a near-tie", p.Name, agree, len(p.Greedy))
	}
}

func TestReferenceLogits(t *testing.T) {
	cases := []refCase{
		{name: "micro-F32", model: "micro/phi3-random-micro-F32.gguf", ref: "micro/f32-kvf32", kv: engine.KVF32, ctx: 512, tol: 1e-4, greedy: true},
		{name: "stories260K", model: "stories260K/stories260K.gguf", ref: "stories260K/f32-kvf32", kv: engine.KVF32, ctx: 128, tol: 1e-4, greedy: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkRef(t, c) })
	}
}
