package engine_test

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/cpu"
	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// loadStories loads stories260K from the references, with its tokenizer
// (which adds BOS) unless noTokenizer.
func loadStories(t *testing.T, noTokenizer bool) *engine.Model {
	t.Helper()
	path := filepath.Join(testrefs.Dir(t), "models/stories260K/stories260K.gguf")
	m, err := engine.Load(context.Background(), path, engine.Options{
		Backend: cpu.New(cpu.Options{Threads: 2, Exact: true}), NoTokenizer: noTokenizer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// storyIDs returns BOS "Once upon a time" and the n tokens stories260K
// continues it with (greedy, stop tokens ignored).
func storyIDs(t *testing.T, m *engine.Model, n int) []int {
	t.Helper()
	s := newSession(t, m, engine.SessionOptions{Ctx: 128})
	res, err := s.Generate(context.Background(), engine.Request{Prompt: once, MaxTokens: n, StopIDs: []int{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return append(append([]int(nil), once...), res.Tokens...)
}

// expectedNLL scores ids by hand, independently of Model.Perplexity: it
// rebuilds the chunks, runs each through a fresh session with the same
// forward calls (so the logits are bit-identical) and takes the log-softmax
// of the target in float64. It returns the summed NLL, the sum of squares
// and the number of tokens scored.
func expectedNLL(t *testing.T, m *engine.Model, ids []int, o engine.PerplexityOptions, bos int) (nll, nll2 float64, n int) {
	t.Helper()
	ctx := context.Background()
	score := func(chunk []int, first int) {
		s := newSession(t, m, engine.SessionOptions{Ctx: o.Ctx, KV: o.KV, Batch: o.Batch})
		if first > 0 {
			if _, err := s.Forward(ctx, chunk[:first], false); err != nil {
				t.Fatal(err)
			}
		}
		logits, err := s.Forward(ctx, chunk[first:len(chunk)-1], true)
		if err != nil {
			t.Fatal(err)
		}
		V := m.Config().Vocab
		for p := first; p < len(chunk)-1; p++ {
			row := logits[(p-first)*V : (p-first+1)*V]
			v := testrefs.LogSumExp(row) - float64(row[chunk[p+1]])
			nll += v
			nll2 += v * v
			n++
		}
	}
	switch o.Method {
	case engine.PerplexityLlamaCpp:
		for c := 0; (c+1)*o.Ctx <= len(ids); c++ {
			chunk := append([]int(nil), ids[c*o.Ctx:(c+1)*o.Ctx]...)
			if bos >= 0 {
				chunk[0] = bos
			}
			score(chunk, o.Ctx/2)
		}
	case engine.PerplexityAll:
		for c0 := 0; c0+1 < len(ids); c0 += o.Ctx {
			score(ids[c0:min(c0+o.Ctx, len(ids))], 0)
		}
	}
	return nll, nll2, n
}

// TestPerplexity checks Model.Perplexity against the negative
// log-likelihood computed by hand for each method, chunk length and batch
// size, with and without BOS at chunk starts.
func TestPerplexity(t *testing.T) {
	withTok, noTok := loadStories(t, false), loadStories(t, true)
	bos, ok := withTok.Tokenizer().BOS()
	if !ok || !withTok.Tokenizer().WantsBOS() {
		t.Fatal("stories260K's tokenizer should add BOS")
	}
	story := storyIDs(t, withTok, 120) // 125 tokens, within the model's 128
	all := engine.PerplexityAll
	tests := []struct {
		name     string
		m        *engine.Model
		o        engine.PerplexityOptions
		chunks   int
		tokens   int
		unscored int
		bos      bool
	}{
		{"llama.cpp ctx 40", withTok, engine.PerplexityOptions{Ctx: 40}, 3, 3 * 19, 5, true},
		{"llama.cpp ctx 40 batch 5", withTok, engine.PerplexityOptions{Ctx: 40, Batch: 5}, 3, 3 * 19, 5, true},
		{"llama.cpp ctx 40 f32 cache", withTok, engine.PerplexityOptions{Ctx: 40, KV: engine.KVF32}, 3, 3 * 19, 5, true},
		{"llama.cpp odd ctx 33", withTok, engine.PerplexityOptions{Ctx: 33}, 3, 3 * 16, 26, true},
		{"llama.cpp ctx 3", withTok, engine.PerplexityOptions{Ctx: 3}, 41, 41, 2, true},
		{"llama.cpp ctx 4", withTok, engine.PerplexityOptions{Ctx: 4}, 31, 31, 1, true},
		{"llama.cpp whole text", withTok, engine.PerplexityOptions{Ctx: 125}, 1, 62, 0, true},
		{"llama.cpp no tokenizer, no BOS", noTok, engine.PerplexityOptions{Ctx: 50}, 2, 2 * 24, 25, false},
		{"all ctx 64", withTok, engine.PerplexityOptions{Ctx: 64, Method: all}, 2, 63 + 60, 0, false},
		{"all ctx 2", withTok, engine.PerplexityOptions{Ctx: 2, Method: all}, 62, 62, 0, false},
		{"all ctx 7 batch 3", withTok, engine.PerplexityOptions{Ctx: 7, Batch: 3, Method: all}, 18, 17*6 + 5, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := tt.m.Perplexity(context.Background(), story, tt.o)
			if err != nil {
				t.Fatal(err)
			}
			b := -1
			if tt.bos {
				b = bos
			}
			nll, nll2, n := expectedNLL(t, tt.m, story, tt.o, b)
			if r.Chunks != tt.chunks || r.Tokens != tt.tokens || n != tt.tokens || r.Unscored != tt.unscored || r.BOS != tt.bos {
				t.Errorf("%d chunks, %d tokens scored (by hand %d), %d unscored, BOS %v; want %d, %d, %d, %v",
					r.Chunks, r.Tokens, n, r.Unscored, r.BOS, tt.chunks, tt.tokens, tt.unscored, tt.bos)
			}
			want := nll / float64(n)
			if rel := math.Abs(r.NLL-want) / want; !(rel <= 1e-9) {
				t.Errorf("NLL %.12g, by hand %.12g (relative %.3g)", r.NLL, want, rel)
			}
			if rel := math.Abs(r.Perplexity-math.Exp(want)) / math.Exp(want); !(rel <= 1e-9) {
				t.Errorf("perplexity %.12g, by hand %.12g", r.Perplexity, math.Exp(want))
			}
			wantErr := math.Sqrt((nll2/float64(n)-want*want)/float64(n-1)) * math.Exp(want)
			if math.Abs(r.PerplexityErr-wantErr) > 1e-6*wantErr {
				t.Errorf("perplexity error %.9g, by hand %.9g", r.PerplexityErr, wantErr)
			}
			wantFirst := tt.o.Ctx / 2
			if tt.o.Method == all {
				wantFirst = 0
			}
			if r.Method != tt.o.Method.String() || r.Ctx != tt.o.Ctx || r.First != wantFirst {
				t.Errorf("method %q ctx %d first %d", r.Method, r.Ctx, r.First)
			}
		})
	}
	// The model finds its own story far more predictable than the same
	// tokens shuffled.
	ctx := context.Background()
	p, err := withTok.Perplexity(ctx, story, engine.PerplexityOptions{Ctx: 32})
	if err != nil {
		t.Fatal(err)
	}
	shuffled := append([]int(nil), story...)
	for i := 1; i < len(shuffled); i++ {
		j := 1 + (i*7919)%(len(shuffled)-1)
		shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
	}
	q, err := withTok.Perplexity(ctx, shuffled, engine.PerplexityOptions{Ctx: 32})
	if err != nil {
		t.Fatal(err)
	}
	if !(p.Perplexity < 3 && q.Perplexity > 3*p.Perplexity) {
		t.Errorf("perplexity of the greedy story %.3f, of shuffled tokens %.3f", p.Perplexity, q.Perplexity)
	}
}

// TestPerplexityRefused checks the inputs Perplexity refuses with an error.
func TestPerplexityRefused(t *testing.T) {
	m := demoModel(t)
	ids := make([]int, 40)
	for i := range ids {
		ids[i] = 300 + i
	}
	all := engine.PerplexityAll
	tests := []struct {
		name string
		ids  []int
		o    engine.PerplexityOptions
		want string
	}{
		{"ctx 0", ids, engine.PerplexityOptions{}, "scores no token"},
		{"ctx 1", ids, engine.PerplexityOptions{Ctx: 1}, "scores no token"},
		{"ctx 2 scores nothing by llama.cpp's method", ids, engine.PerplexityOptions{Ctx: 2}, "at least 3"},
		{"text shorter than one chunk", ids, engine.PerplexityOptions{Ctx: 41}, "has 40 tokens but one chunk needs 41"},
		{"no text", nil, engine.PerplexityOptions{Ctx: 8}, "has 0 tokens"},
		{"all: ctx 1", ids, engine.PerplexityOptions{Ctx: 1, Method: all}, "at least 2"},
		{"all: one token", ids[:1], engine.PerplexityOptions{Ctx: 8, Method: all}, "at least 2 tokens"},
		{"unknown method", ids, engine.PerplexityOptions{Ctx: 8, Method: 7}, "unknown method"},
		{"id outside the vocabulary", append([]int{1 << 20}, ids...), engine.PerplexityOptions{Ctx: 8}, "outside the vocabulary"},
		{"huge context", ids, engine.PerplexityOptions{Ctx: 1 << 40, Method: all}, "context length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Perplexity(context.Background(), tt.ids, tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Perplexity: %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

// TestPerplexityCancel checks that cancelling ctx stops Perplexity, before
// it starts and between chunks.
func TestPerplexityCancel(t *testing.T) {
	m := demoModel(t)
	ids := make([]int, 100)
	for i := range ids {
		ids[i] = 300 + i
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Perplexity(ctx, ids, engine.PerplexityOptions{Ctx: 16}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled before: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	var done []int
	_, err := m.Perplexity(ctx, ids, engine.PerplexityOptions{Ctx: 16, Progress: func(n, total int, ppl float64) {
		if total != 6 || !(ppl > 1) {
			t.Errorf("progress %d/%d, perplexity %g", n, total, ppl)
		}
		done = append(done, n)
		if n == 2 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) || len(done) != 2 {
		t.Errorf("cancelled after chunk 2: %v after chunks %v", err, done)
	}
}
