package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// Sampling selects how the next token is chosen from the logits. The zero
// value is greedy decoding.
//
// The steps run in Hugging Face transformers' order: penalties on the raw
// logits, then temperature, then top-k, top-p and min-p on the
// temperature-scaled probabilities, then a draw. (llama.cpp's default
// chain applies the temperature last, so its top-p and min-p see the
// unscaled distribution; at temperature 1 the two agree.) NaN logits are
// never drawn; infinite ones make the choice greedy.
type Sampling struct {
	// Temperature divides the logits before sampling; ≤ 0 means greedy
	// (always the most likely token).
	Temperature float64
	// TopK keeps only the K most likely tokens (0: all).
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probability
	// adds up to at least P (0 or ≥ 1: all).
	TopP float64
	// MinP drops tokens less likely than MinP times the most likely one
	// (0: none).
	MinP float64
	// RepeatPenalty divides positive logits (multiplies negative ones) of
	// tokens seen in the last RepeatLastN tokens (≤ 0 or 1: off), as
	// llama.cpp does.
	RepeatPenalty float64
	// RepeatLastN is the window for the penalties (0: 64; -1: the whole
	// context).
	RepeatLastN int
	// PresencePenalty is subtracted once from the logit of every token
	// seen in the window; FrequencyPenalty is subtracted once per
	// occurrence (OpenAI semantics).
	PresencePenalty  float64
	FrequencyPenalty float64
	// Seed makes sampling reproducible; 0 picks a random seed.
	Seed uint64
}

// check rejects parameters that are not finite numbers (a NaN temperature
// would leave no candidate token).
func (s *Sampling) check() error {
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"temperature", s.Temperature}, {"top_p", s.TopP}, {"min_p", s.MinP},
		{"repeat penalty", s.RepeatPenalty}, {"presence penalty", s.PresencePenalty},
		{"frequency penalty", s.FrequencyPenalty},
	} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("sampling: %s is %g, want a finite number", f.name, f.v)
		}
	}
	return nil
}

// greedy reports whether sampling reduces to argmax of the raw logits.
func (s *Sampling) greedy() bool {
	return s.Temperature <= 0 && !s.penalised()
}

func (s *Sampling) penalised() bool {
	return (s.RepeatPenalty > 0 && s.RepeatPenalty != 1) || s.PresencePenalty != 0 || s.FrequencyPenalty != 0
}

// sampler draws tokens according to a Sampling.
type sampler struct {
	cfg  Sampling
	rng  *rand.Rand
	idx  []int
	prob []float64
}

func newSampler(cfg Sampling) *sampler {
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &sampler{cfg: cfg, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// penalise applies the repetition penalties to logits given the recent
// tokens (history, oldest first).
func (s *sampler) penalise(logits []float32, history []int) {
	if !s.cfg.penalised() {
		return
	}
	n := s.cfg.RepeatLastN
	if n == 0 {
		n = 64
	}
	if n > 0 && len(history) > n {
		history = history[len(history)-n:]
	}
	counts := make(map[int]int)
	for _, id := range history {
		if id >= 0 && id < len(logits) {
			counts[id]++
		}
	}
	rp := float32(s.cfg.RepeatPenalty)
	for id, c := range counts {
		l := logits[id]
		if rp > 0 && rp != 1 {
			if l > 0 {
				l /= rp
			} else {
				l *= rp
			}
		}
		l -= float32(s.cfg.FrequencyPenalty*float64(c) + s.cfg.PresencePenalty)
		logits[id] = l
	}
}

// sample picks a token from (penalised) logits.
func (s *sampler) sample(logits []float32) int {
	if s.cfg.Temperature <= 0 {
		return argmax(logits)
	}
	// Candidates sorted by logit, descending (ties: lower id first).
	// Tokens more than e^30 times less likely than the best one cannot be
	// drawn in practice; dropping them first keeps the sort short.
	best := argmax(logits)
	mx := float64(logits[best])
	if math.IsInf(mx, 0) || math.IsNaN(mx) {
		// Infinite or no finite logits: softmax is undefined; take the
		// (first) largest.
		return best
	}
	floor := float32(mx - 30*s.cfg.Temperature)
	s.idx = s.idx[:0]
	for i, l := range logits {
		if l >= floor {
			s.idx = append(s.idx, i)
		}
	}
	idx := s.idx
	k := s.cfg.TopK
	if k <= 0 || k > len(idx) {
		k = len(idx)
	}
	sort.SliceStable(idx, func(a, b int) bool { return logits[idx[a]] > logits[idx[b]] })
	idx = idx[:k]
	// Softmax with temperature.
	s.prob = s.prob[:0]
	var sum float64
	for _, id := range idx {
		p := math.Exp((float64(logits[id]) - mx) / s.cfg.Temperature)
		s.prob = append(s.prob, p)
		sum += p
	}
	prob := s.prob
	for i := range prob {
		prob[i] /= sum
	}
	// Top-p: the smallest prefix with mass ≥ p.
	if p := s.cfg.TopP; p > 0 && p < 1 {
		var cum float64
		for i, q := range prob {
			cum += q
			if cum >= p {
				idx, prob = idx[:i+1], prob[:i+1]
				break
			}
		}
	}
	// Min-p: relative to the most likely token.
	if mp := s.cfg.MinP; mp > 0 {
		lim := mp * prob[0]
		n := 1
		for n < len(prob) && prob[n] >= lim {
			n++
		}
		idx, prob = idx[:n], prob[:n]
	}
	var total float64
	for _, q := range prob {
		total += q
	}
	r := s.rng.Float64() * total
	for i, q := range prob {
		r -= q
		if r < 0 {
			return idx[i]
		}
	}
	return idx[len(idx)-1]
}

// argmax returns the index of the largest value (the first among ties),
// ignoring NaNs; 0 if every value is NaN.
func argmax(v []float32) int {
	best := -1
	for i, x := range v {
		if x == x && (best < 0 || x > v[best]) {
			best = i
		}
	}
	return max(best, 0)
}
