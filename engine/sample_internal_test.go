package engine

import (
	"math"
	"testing"
)

// TestSampleNonFinite checks that NaN and infinite logits (a broken model
// or kernel) never make the sampler panic or pick a NaN token.
func TestSampleNonFinite(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	cases := []struct {
		name   string
		logits []float32
		want   []int // acceptable picks
	}{
		{"NaN first", []float32{nan, 1, 3, 2}, []int{2}},
		{"NaN middle", []float32{1, nan, 5, 2}, []int{2}},
		{"+Inf", []float32{1, inf, 2, inf}, []int{1, 3}},
		{"all -Inf but one", []float32{-inf, -inf, 0, -inf}, []int{2}},
	}
	for _, c := range cases {
		for _, sp := range []Sampling{
			{},
			{Temperature: 1, Seed: 1},
			{Temperature: 0.7, TopK: 2, TopP: 0.9, MinP: 0.05, Seed: 2},
		} {
			got := newSampler(sp).sample(append([]float32(nil), c.logits...))
			ok := false
			for _, w := range c.want {
				ok = ok || got == w
			}
			if !ok {
				t.Errorf("%s %+v: picked %d, want one of %v", c.name, sp, got, c.want)
			}
		}
	}
}

// TestSampleEdges checks the documented edge values of each filter.
func TestSampleEdges(t *testing.T) {
	logits := []float32{0, 3, 1, 2.9}
	for _, sp := range []Sampling{
		{Temperature: 1, TopK: 1000, Seed: 3},
		{Temperature: 1, TopP: 1, Seed: 3},
		{Temperature: 1, MinP: 0, Seed: 3},
		{Temperature: 1, TopK: -1, TopP: -1, MinP: -1, Seed: 3},
	} {
		seen := map[int]bool{}
		s := newSampler(sp)
		for range 2000 {
			seen[s.sample(logits)] = true
		}
		if len(seen) != 4 {
			t.Errorf("%+v: drew %v in 2000 tries, want all 4 tokens (filter off)", sp, seen)
		}
	}
	// Temperature 0 with a penalty: argmax of the penalised logits.
	s := newSampler(Sampling{RepeatPenalty: 2})
	l := []float32{0, 3, 1, 2.9}
	s.penalise(l, []int{1})
	if got := s.sample(l); got != 3 {
		t.Errorf("greedy after penalising token 1: %d, want 3", got)
	}
	// MinP 1 keeps the top token only.
	s = newSampler(Sampling{Temperature: 1, MinP: 1, Seed: 4})
	for range 100 {
		if got := s.sample(logits); got != 1 {
			t.Fatalf("min-p 1 drew %d, want 1", got)
		}
	}
}

func TestSamplingCheck(t *testing.T) {
	for _, sp := range []Sampling{
		{Temperature: math.NaN()},
		{Temperature: math.Inf(1)},
		{Temperature: 1, TopP: math.NaN()},
		{Temperature: 1, MinP: math.NaN()},
		{RepeatPenalty: math.Inf(-1)},
		{PresencePenalty: math.NaN()},
		{FrequencyPenalty: math.NaN()},
	} {
		if err := sp.check(); err == nil {
			t.Errorf("%+v accepted", sp)
		}
	}
	for _, sp := range []Sampling{{}, {Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1.1, Seed: 7}, {Temperature: -1, TopP: -1}} {
		if err := sp.check(); err != nil {
			t.Errorf("%+v: %v", sp, err)
		}
	}
}
