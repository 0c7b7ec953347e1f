package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// PerplexityMethod selects how Model.Perplexity splits a text into chunks
// and which tokens of a chunk it scores.
type PerplexityMethod int

const (
	// PerplexityLlamaCpp is llama.cpp's llama-perplexity method (the
	// default), so that the numbers compare with llama.cpp's. The text is
	// cut into len(ids)/Ctx chunks of exactly Ctx tokens; the tokens after
	// the last full chunk are not scored. Each chunk is evaluated from an
	// empty cache with its first token replaced by BOS when the model's
	// tokenizer adds BOS to prompts (the text itself should then start with
	// BOS, as llama.cpp tokenizes it). Only the second half of each chunk
	// is scored: with first = Ctx/2 (rounded down), the tokens at chunk
	// positions first+1 … Ctx-1, each predicted from at least first+1
	// tokens of context; Ctx-1-first tokens per chunk.
	PerplexityLlamaCpp PerplexityMethod = iota
	// PerplexityAll scores every token of each chunk after the first, each
	// chunk of up to Ctx tokens evaluated from an empty cache, the last
	// partial chunk included, no BOS inserted (phi4mac's method before it
	// followed llama.cpp). Early tokens of a chunk have little context, so
	// its perplexity is higher than llama.cpp's for the same text.
	PerplexityAll
)

// String returns "llama.cpp" or "all".
func (p PerplexityMethod) String() string {
	switch p {
	case PerplexityLlamaCpp:
		return "llama.cpp"
	case PerplexityAll:
		return "all"
	}
	return fmt.Sprintf("PerplexityMethod(%d)", int(p))
}

// PerplexityOptions configures Model.Perplexity.
type PerplexityOptions struct {
	// Ctx is the chunk length in tokens (required: at least 3 for
	// PerplexityLlamaCpp, 2 for PerplexityAll).
	Ctx int
	// KV is the KV cache element type.
	KV KVType
	// Batch is the number of tokens per forward pass (0: the session's
	// default).
	Batch int
	// Method is the chunking and scoring method (default
	// PerplexityLlamaCpp).
	Method PerplexityMethod
	// Progress, if set, is called after each chunk with the number of
	// chunks done, the total, and the perplexity so far.
	Progress func(done, total int, perplexity float64)
}

// PerplexityResult is what Model.Perplexity measured.
type PerplexityResult struct {
	Method string `json:"method"` // PerplexityMethod.String
	Ctx    int    `json:"ctx"`    // chunk length
	// First is the chunk position of the first logits scored: tokens
	// First+1 … Ctx-1 of each chunk are scored (0 for PerplexityAll).
	First int  `json:"first"`
	BOS   bool `json:"bos"` // each chunk's first token was replaced by BOS
	// Tokens is the number of tokens scored, Chunks the number of chunks
	// evaluated and Unscored the tokens after the last full chunk that
	// PerplexityLlamaCpp drops.
	Tokens     int     `json:"tokens"`
	Chunks     int     `json:"chunks"`
	Unscored   int     `json:"unscored_tokens"`
	NLL        float64 `json:"nll"`        // mean negative log-likelihood (nats)
	Perplexity float64 `json:"perplexity"` // exp(NLL)
	// PerplexityErr is the standard error of Perplexity, computed as
	// llama.cpp's "PPL = x +/- y" (0 with fewer than 2 tokens scored).
	PerplexityErr float64 `json:"perplexity_err"`
}

// Perplexity scores the token sequence ids (the tokenized text, with BOS
// first if the model wants one) by the method of o.Method; see
// PerplexityLlamaCpp for the default. It holds one vocab-sized row of
// logits at a time, however long the text. A text too short for one chunk
// is an error (llama.cpp asks for at least 2×Ctx tokens; phi4mac scores
// from Ctx on). Cancelling ctx stops it between forward passes.
func (m *Model) Perplexity(ctx context.Context, ids []int, o PerplexityOptions) (PerplexityResult, error) {
	r := PerplexityResult{Method: o.Method.String(), Ctx: o.Ctx}
	var chunks [][]int
	switch o.Method {
	case PerplexityLlamaCpp:
		if o.Ctx < 3 {
			return r, fmt.Errorf("perplexity: a %d-token context scores no token by llama.cpp's method (second half of each chunk); use at least 3", o.Ctx)
		}
		if len(ids) < o.Ctx {
			return r, fmt.Errorf("perplexity: the text has %d tokens but one chunk needs %d; use a longer text or a smaller context", len(ids), o.Ctx)
		}
		for c0 := 0; c0+o.Ctx <= len(ids); c0 += o.Ctx {
			chunks = append(chunks, ids[c0:c0+o.Ctx])
		}
		r.Unscored = len(ids) % o.Ctx
		r.First = o.Ctx / 2
		if m.tok != nil && m.tok.WantsBOS() {
			r.BOS = true
		}
	case PerplexityAll:
		if o.Ctx < 2 {
			return r, fmt.Errorf("perplexity: context must be at least 2 tokens, got %d", o.Ctx)
		}
		if len(ids) < 2 {
			return r, errors.New("perplexity: need at least 2 tokens of text")
		}
		for c0 := 0; c0+1 < len(ids); c0 += o.Ctx {
			chunks = append(chunks, ids[c0:min(c0+o.Ctx, len(ids))])
		}
	default:
		return r, fmt.Errorf("perplexity: unknown method %d", int(o.Method))
	}
	if err := m.checkIDs(ids); err != nil {
		return r, fmt.Errorf("perplexity: %w", err)
	}
	var bos int
	if r.BOS {
		bos, _ = m.tok.BOS()
	}

	s, err := m.NewSession(SessionOptions{Ctx: o.Ctx, KV: o.KV, Batch: o.Batch})
	if err != nil {
		return r, fmt.Errorf("perplexity: %w", err)
	}
	defer s.Close()
	buf := make([]int, o.Ctx)
	var nll, nll2 float64
	for _, c := range chunks {
		chunk := buf[:copy(buf, c)]
		if r.BOS {
			chunk[0] = bos
		}
		s.Reset()
		if r.First > 0 {
			// The unscored first half only fills the cache.
			if _, err := s.Forward(ctx, chunk[:r.First], false); err != nil {
				return r, fmt.Errorf("perplexity: chunk %d: %w", r.Chunks+1, err)
			}
		}
		scored := chunk[r.First:]
		err := s.ForwardEach(ctx, scored[:len(scored)-1], func(i int, logits []float32) error {
			v := logSumExp(logits) - float64(logits[scored[i+1]])
			nll += v
			nll2 += v * v
			return nil
		})
		if err != nil {
			return r, fmt.Errorf("perplexity: chunk %d: %w", r.Chunks+1, err)
		}
		r.Tokens += len(scored) - 1
		r.Chunks++
		if o.Progress != nil {
			o.Progress(r.Chunks, len(chunks), math.Exp(nll/float64(r.Tokens)))
		}
	}
	n := float64(r.Tokens)
	r.NLL = nll / n
	r.Perplexity = math.Exp(r.NLL)
	if variance := nll2/n - r.NLL*r.NLL; r.Tokens > 1 && variance > 0 {
		r.PerplexityErr = math.Sqrt(variance/(n-1)) * r.Perplexity
	}
	return r, nil
}

// logSumExp returns log Σ exp(v) in float64.
func logSumExp(v []float32) float64 {
	mx := float64(v[argmax(v)])
	var s float64
	for _, x := range v {
		s += math.Exp(float64(x) - mx)
	}
	return mx + math.Log(s)
}
