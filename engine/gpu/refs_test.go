//go:build !darwin && cgo

package gpu_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/gpu"
	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// The engine's forward pass on the GPU backend (through the emulator)
// against llama.cpp's reference logits, with the CPU backend's tolerances
// (engine/refs_test.go).

// Which cases and prompts run: -short runs the "short" level, a plain
// `go test` adds "default" (every weight format, both LongRoPE factor
// sets, KV F16 and F32: about a minute), and PHI4MAC_EMU_FULL=1 runs
// every case on every prompt (several minutes).
const (
	short = iota
	normal
	full
)

type refCase struct {
	name, model, ref string
	kv               engine.KVType
	ctx              int
	tol              float64
	level            int      // short, normal or full
	prompts          []string // below the full level, only these prompts (all when empty)
	steps            int      // teacher-forced greedy steps to check (all when 0); no free generation then
}

func TestReferenceLogitsEmulated(t *testing.T) {
	few := []string{"short", "random16"}
	miniFew := []string{"chat", "random16"}
	cases := []refCase{
		{"micro-F16", "micro/phi3-random-micro-F16.gguf", "micro/f32-kvf32", engine.KVF32, 512, 1e-4, normal, nil, 0},
		{"micro-F16-kvf16", "micro/phi3-random-micro-F16.gguf", "micro/f16", engine.KVF16, 512, 3e-2, full, nil, 0},
		{"micro-BF16", "micro/phi3-random-micro-BF16.gguf", "micro/f32-kvf32", engine.KVF32, 512, 1e-4, normal, few, 0},
		{"micro-Q8_0", "micro/phi3-random-micro-Q8_0.gguf", "micro/q8_0-deq-f32", engine.KVF32, 512, 1e-4, normal, few, 0},
		{"micro-Q8_0-kvf16", "micro/phi3-random-micro-Q8_0.gguf", "micro/q8_0", engine.KVF16, 512, 0.2, full, nil, 0},
		{"micro-Q4_0", "micro/phi3-random-micro-Q4_0.gguf", "micro/q4_0-deq-f32", engine.KVF32, 512, 1e-4, short, []string{"short"}, 0},
		{"micro-Q4_0-kvf16", "micro/phi3-random-micro-Q4_0.gguf", "micro/q4_0", engine.KVF16, 512, 0.2, full, nil, 0},
		{"micro-Q4_K_M-kvf16", "micro/phi3-random-micro-Q4_K_M.gguf", "micro/q4_k_m", engine.KVF16, 512, 0.4, normal, few, 0},
		{"micromini-F16-ctx256", "micromini/phi4mini-random-micromini-F16.gguf", "micromini/f32-kvf32-ctx256", engine.KVF32, 256, 5e-4, normal, miniFew, 0},
		{"micromini-F16-ctx4096-kvf16", "micromini/phi4mini-random-micromini-F16.gguf", "micromini/f16-ctx4096", engine.KVF16, 4096, 5e-2, normal, miniFew, 0},
		{"micromini-Q8_0-ctx256-kvf16", "micromini/phi4mini-random-micromini-Q8_0.gguf", "micromini/q8_0-ctx256", engine.KVF16, 256, 0.7, short, []string{"chat"}, 0},
		// tiny: real Q4_K and Q6_K matrices (micro's "Q4_K_M" holds Q5_0)
		// and the full 100352-token vocabulary: one prompt, 2 decode steps.
		{"tiny-Q4_K_M", "tiny/phi3-random-tiny-Q4_K_M.gguf", "tiny/q4_k_m-deq-f32", engine.KVF32, 2048, 1e-4, normal, []string{"hello"}, 2},
	}
	level := normal
	if testing.Short() {
		level = short
	}
	if os.Getenv("PHI4MAC_EMU_FULL") == "1" {
		level = full
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.level > level {
				t.Skip("runs with PHI4MAC_EMU_FULL=1 (or without -short)")
			}
			if level == full && c.name != "tiny-Q4_K_M" {
				c.prompts = nil
			}
			checkRef(t, c)
		})
	}
}

func checkRef(t *testing.T, c refCase) {
	refs := testrefs.Dir(t)
	dir := filepath.Join(refs, "logits", c.ref)
	ref := testrefs.ReadResult(t, dir)
	b := gpu.New(device(t), gpu.Options{AttnSpan: 64})
	m, err := engine.Load(context.Background(), filepath.Join(refs, "models", c.model), engine.Options{Backend: b, NoTokenizer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	V := ref.NVocab
	ctx := context.Background()
	var worst float64
	for _, p := range ref.Prompts {
		if len(c.prompts) > 0 && !slices.Contains(c.prompts, p.Name) {
			continue
		}
		s, err := m.NewSession(engine.SessionOptions{Ctx: c.ctx, KV: c.kv})
		if err != nil {
			t.Fatal(err)
		}
		n := len(p.IDs)
		wantAll := testrefs.ReadF32(t, filepath.Join(dir, p.Name+".all.f32"))
		var last []float32
		for i0 := 0; i0 < n; i0 += 64 {
			i1 := min(i0+64, n)
			all, err := s.Forward(ctx, p.IDs[i0:i1], true)
			if err != nil {
				t.Fatal(err)
			}
			for i := i0; i < i1; i++ {
				row := all[(i-i0)*V : (i-i0+1)*V]
				if wantAll != nil {
					for j, w := range wantAll[i*V : (i+1)*V] {
						worst = max(worst, math.Abs(float64(row[j])-float64(w)))
					}
				}
				d, dl := p.Positions[i].Diff(row)
				worst = max(worst, d)
				if d > c.tol || dl > c.tol {
					t.Errorf("%s: position %d: top-16 max |Δ| %.3g, lse |Δ| %.3g > %.3g", p.Name, i, d, dl, c.tol)
				}
			}
			last = all[(i1-1-i0)*V:]
		}
		if want := testrefs.ReadF32(t, filepath.Join(dir, p.Name+".last.f32")); want != nil {
			for j := range want {
				worst = max(worst, math.Abs(float64(last[j])-float64(want[j])))
			}
		}
		if worst > c.tol {
			t.Errorf("%s: max |Δ| %.3g > %.3g", p.Name, worst, c.tol)
		}
		// Teacher-forced greedy steps through the decode path.
		logits := last
		for k, st := range p.GreedySteps {
			if c.steps > 0 && k >= c.steps {
				break
			}
			if k > 0 {
				if logits, err = s.Forward(ctx, []int{p.Greedy[k-1]}, false); err != nil {
					t.Fatal(err)
				}
			}
			d, dl := st.Diff(logits)
			worst = max(worst, d)
			if d > c.tol || dl > c.tol {
				t.Errorf("%s: greedy step %d: top-16 max |Δ| %.3g, lse |Δ| %.3g > %.3g", p.Name, k, d, dl, c.tol)
			}
		}
		s.Close()
		if c.steps > 0 {
			continue
		}
		// Free-running greedy generation (argmax on the device).
		s, err = m.NewSession(engine.SessionOptions{Ctx: c.ctx, KV: c.kv})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Generate(ctx, engine.Request{Prompt: p.IDs, MaxTokens: len(p.Greedy), StopIDs: []int{}}, nil)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		agree := 0
		for k, want := range p.Greedy {
			if k >= len(res.Tokens) || res.Tokens[k] != want {
				if k < len(res.Tokens) && p.GreedySteps[k].Margin > 2*c.tol {
					t.Errorf("%s: greedy token %d: %d, reference %d (margin %.3g)", p.Name, k, res.Tokens[k], want, p.GreedySteps[k].Margin)
				}
				break
			}
			agree++
		}
		t.Logf("%s: greedy %d/%d identical", p.Name, agree, len(p.Greedy))
	}
	t.Logf("%s vs %s: max |Δlogit| %.3g (tolerance %.3g)", c.model, c.ref, worst, c.tol)
}
