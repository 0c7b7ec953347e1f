package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// BenchOptions configures Model.Bench.
type BenchOptions struct {
	Prompt int    // prompt tokens to prefill (random ids); 0: 512
	Gen    int    // tokens to decode one at a time; 0: 128
	KV     KVType // KV cache type
	Seed   uint64 // for the random prompt
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
}

// Bench measures prefill (one batched pass over Prompt random tokens) and
// decode (Gen tokens, each one forward pass through the KV cache, greedy)
// speed.
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
		buf := m.forward(s.s, s.cache, s.rope, []int{next}, len(s.tokens), false)
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
	return r, nil
}

// PerplexityResult is what Model.Perplexity measured.
type PerplexityResult struct {
	Tokens     int     `json:"tokens"`     // tokens scored
	NLL        float64 `json:"nll"`        // mean negative log-likelihood (nats)
	Perplexity float64 `json:"perplexity"` // exp(NLL)
	Chunks     int     `json:"chunks"`
}

// Perplexity scores ids in consecutive chunks of ctxLen tokens, each
// evaluated from an empty cache: every token of a chunk but the first is
// predicted from the tokens before it in the chunk.
func (m *Model) Perplexity(ctx context.Context, ids []int, ctxLen int, kv KVType) (PerplexityResult, error) {
	var r PerplexityResult
	if ctxLen < 2 {
		return r, errors.New("perplexity: context must be at least 2 tokens")
	}
	if len(ids) < 2 {
		return r, errors.New("perplexity: need at least 2 tokens of text")
	}
	s, err := m.NewSession(SessionOptions{Ctx: ctxLen, KV: kv, Batch: min(ctxLen, 64)})
	if err != nil {
		return r, err
	}
	defer s.Close()
	V := m.cfg.Vocab
	var nll float64
	for c0 := 0; c0+1 < len(ids); c0 += ctxLen {
		chunk := ids[c0:min(c0+ctxLen, len(ids))]
		s.Reset()
		// Forward in pieces of 64 so the logits of a piece stay small.
		for p0 := 0; p0 < len(chunk)-1; p0 += 64 {
			p1 := min(p0+64, len(chunk)-1)
			logits, err := s.Forward(ctx, chunk[p0:p1], true)
			if err != nil {
				return r, fmt.Errorf("perplexity: %w", err)
			}
			for i := p0; i < p1; i++ {
				row := logits[(i-p0)*V : (i-p0+1)*V]
				nll += logSumExp(row) - float64(row[chunk[i+1]])
				r.Tokens++
			}
		}
		r.Chunks++
	}
	r.NLL = nll / float64(r.Tokens)
	r.Perplexity = math.Exp(r.NLL)
	return r, nil
}

func logSumExp(v []float32) float64 {
	mx := float64(v[argmax(v)])
	var s float64
	for _, x := range v {
		s += math.Exp(float64(x) - mx)
	}
	return mx + math.Log(s)
}
