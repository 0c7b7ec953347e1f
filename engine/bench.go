package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// BenchOptions configures Model.Bench.
type BenchOptions struct {
	Prompt int    // prompt tokens to prefill (random ids); 0: 512
	Gen    int    // tokens to decode one at a time; 0: 128
	KV     KVType // KV cache type
	Seed   uint64 // for the random prompt
	// ProbeBytes, when positive and the backend is a BandwidthProber, is
	// the size of the memory bandwidth probe run after the benchmark, for
	// the roofline (BenchResult.MemoryGBs).
	ProbeBytes int
}

// BenchResult is what Model.Bench measured.
type BenchResult struct {
	Backend       string  `json:"backend"`
	Prompt        int     `json:"prompt_tokens"`
	Gen           int     `json:"gen_tokens"`
	PrefillSecs   float64 `json:"prefill_s"`
	DecodeSecs    float64 `json:"decode_s"`
	PrefillTokS   float64 `json:"prefill_tok_s"`
	DecodeTokS    float64 `json:"decode_tok_s"`
	BytesPerToken int64   `json:"weight_bytes_per_token"` // weight bytes one decode step reads
	DecodeGBs     float64 `json:"decode_effective_gb_s"`  // BytesPerToken × decode tok/s
	// CPU time the process used in each phase (0 where unknown). On a
	// machine shared with other work, wall-clock speed understates what
	// the kernels do: CPU seconds / threads is the time the run would
	// take with its cores to itself (an estimate that ignores contention
	// for memory bandwidth).
	PrefillCPUSecs float64 `json:"prefill_cpu_s"`
	DecodeCPUSecs  float64 `json:"decode_cpu_s"`
	// The roofline, when the bandwidth was probed (0 otherwise): the
	// backend's measured read bandwidth, the decode speed it allows if
	// every step only streamed its weights (MemoryGBs / BytesPerToken),
	// and the fraction of it the decode reached.
	MemoryGBs        float64 `json:"memory_gb_s,omitempty"`
	RooflineTokS     float64 `json:"roofline_tok_s,omitempty"`
	DecodeOfRoofline float64 `json:"decode_of_roofline,omitempty"`
}

// Bench measures prefill (one batched pass over Prompt random tokens) and
// decode (Gen tokens, each one forward pass through the KV cache, greedy)
// speed, after one untimed one-token pass that touches every weight matrix
// (of the token embedding table, only that token's row).
func (m *Model) Bench(ctx context.Context, o BenchOptions) (BenchResult, error) {
	if o.Prompt <= 0 {
		o.Prompt = 512
	}
	if o.Gen <= 0 {
		o.Gen = 128
	}
	s, err := m.NewSession(SessionOptions{Ctx: o.Prompt + o.Gen, KV: o.KV, Batch: o.Prompt})
	if err != nil {
		return BenchResult{}, err
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(o.Seed, 1))
	ids := make([]int, o.Prompt)
	for i := range ids {
		ids[i] = rng.IntN(m.cfg.Vocab)
	}
	r := BenchResult{Backend: m.backend.Name(), Prompt: o.Prompt, Gen: o.Gen, BytesPerToken: m.info.DecodeBytes}
	// Warm up as llama-bench does: one pass through every weight matrix
	// maps the file's pages and fills the caches, so that neither page
	// faults nor first-use costs are timed as compute. (The embedding
	// table is read a row per token, so the prompt's rows still fault in
	// while timed: a few MB.)
	if _, err := s.Forward(ctx, ids[:1], false); err != nil {
		return r, fmt.Errorf("bench warm-up: %w", err)
	}
	s.Reset()
	t0, c0 := time.Now(), processCPUTime()
	if _, err := s.Forward(ctx, ids, false); err != nil {
		return r, fmt.Errorf("bench prefill: %w", err)
	}
	r.PrefillSecs = time.Since(t0).Seconds()
	c1 := processCPUTime()
	r.PrefillCPUSecs = (c1 - c0).Seconds()
	next := ids[len(ids)-1]
	t1 := time.Now()
	for i := 0; i < o.Gen; i++ {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		// Argmax on the backend, as greedy generation does.
		m.mu.Lock()
		if err := s.usable(); err != nil {
			m.mu.Unlock()
			return r, fmt.Errorf("bench decode: %w", err)
		}
		buf, err := m.forward(s.s, s.cache, s.rope, []int{next}, len(s.tokens), nil)
		if err != nil {
			m.mu.Unlock()
			return r, fmt.Errorf("bench decode: %w", err)
		}
		am, err := m.backend.Argmax(buf)
		m.mu.Unlock()
		if err != nil {
			return r, fmt.Errorf("bench decode: %w", err)
		}
		s.tokens = append(s.tokens, next)
		next = am[0]
	}
	r.DecodeSecs = time.Since(t1).Seconds()
	r.DecodeCPUSecs = (processCPUTime() - c1).Seconds()
	r.PrefillTokS = float64(o.Prompt) / r.PrefillSecs
	r.DecodeTokS = float64(o.Gen) / r.DecodeSecs
	r.DecodeGBs = float64(r.BytesPerToken) * r.DecodeTokS / 1e9
	if p, ok := m.backend.(BandwidthProber); ok && o.ProbeBytes > 0 && r.BytesPerToken > 0 {
		m.mu.Lock()
		gbs, err := p.MeasureBandwidth(ctx, o.ProbeBytes)
		m.mu.Unlock()
		if err != nil {
			return r, fmt.Errorf("bench bandwidth probe: %w", err)
		}
		r.MemoryGBs = gbs
		r.RooflineTokS = gbs * 1e9 / float64(r.BytesPerToken)
		r.DecodeOfRoofline = r.DecodeTokS / r.RooflineTokS
	}
	return r, nil
}
