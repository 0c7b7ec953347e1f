package engine_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/cpu"
	"github.com/phi4mac/phi4mac/engine/demo"
	"github.com/phi4mac/phi4mac/internal/testrefs"
	"github.com/phi4mac/phi4mac/tokenizer"
)

func demoModel(t *testing.T) *engine.Model {
	t.Helper()
	m, err := demo.Load(context.Background(), engine.Options{Backend: cpu.New(cpu.Options{Threads: 2})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func newSession(t *testing.T, m *engine.Model, o engine.SessionOptions) *engine.Session {
	t.Helper()
	s, err := m.NewSession(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var once = []int{1, 403, 407, 261, 378} // "Once upon a time" in stories260K ids

func equalIDs(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestPrefixReuse checks that a follow-up turn only prefills its new tokens
// and produces what a fresh session produces.
func TestPrefixReuse(t *testing.T) {
	m := demoModel(t)
	ctx := context.Background()
	s := newSession(t, m, engine.SessionOptions{})
	r1, err := s.Generate(ctx, engine.Request{Prompt: once, MaxTokens: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r1.CachedTokens != 0 {
		t.Errorf("first turn reused %d tokens", r1.CachedTokens)
	}
	if r1.PrefillTime <= 0 || r1.DecodeTime <= 0 || r1.PromptTokens != len(once) {
		t.Errorf("result: prefill %v, decode %v, %d prompt tokens", r1.PrefillTime, r1.DecodeTime, r1.PromptTokens)
	}
	// Second turn: the whole conversation so far plus new text.
	p2 := append(append(append([]int(nil), once...), r1.Tokens...), 317, 269)
	r2, err := s.Generate(ctx, engine.Request{Prompt: p2, MaxTokens: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// All but the last generated token (never fed back) are cached.
	if want := len(once) + len(r1.Tokens) - 1; r2.CachedTokens != want {
		t.Errorf("second turn reused %d tokens, want %d", r2.CachedTokens, want)
	}
	fresh := newSession(t, m, engine.SessionOptions{})
	r3, err := fresh.Generate(ctx, engine.Request{Prompt: p2, MaxTokens: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !equalIDs(r2.Tokens, r3.Tokens) {
		t.Errorf("with the cached prefix %v, fresh %v", r2.Tokens, r3.Tokens)
	}
	// A diverging prompt reuses only the common part.
	p3 := append(append([]int(nil), once[:3]...), 500, 501)
	r4, err := s.Generate(ctx, engine.Request{Prompt: p3, MaxTokens: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r4.CachedTokens != 3 {
		t.Errorf("diverging prompt reused %d tokens, want 3", r4.CachedTokens)
	}
	// The identical prompt again: everything but the last token is reused.
	r5, err := s.Generate(ctx, engine.Request{Prompt: p3, MaxTokens: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r5.CachedTokens != len(p3)-1 || !equalIDs(r5.Tokens, r4.Tokens) {
		t.Errorf("repeated prompt: reused %d, tokens %v; want %d, %v", r5.CachedTokens, r5.Tokens, len(p3)-1, r4.Tokens)
	}
}

// TestBatchedPrefill checks that prefill in small batches gives the logits
// of one big batch.
func TestBatchedPrefill(t *testing.T) {
	m := loadModel(t, filepath.Join(testrefs.Dir(t), "models/micro/phi3-random-micro-Q4_0.gguf"), 2)
	ids := make([]int, 100)
	for i := range ids {
		ids[i] = (i * 37) % 900
	}
	var got [2][]float32
	for i, batch := range []int{512, 7} {
		s := newSession(t, m, engine.SessionOptions{Batch: batch, KV: engine.KVF32})
		var err error
		if got[i], err = s.Forward(context.Background(), ids, true); err != nil {
			t.Fatal(err)
		}
	}
	if d := maxDiff(got[0], got[1]); d > 1e-5 {
		t.Errorf("batch 512 vs 7: max |Δ| %.3g", d)
	}
}

func TestContextFull(t *testing.T) {
	m := demoModel(t)
	ctx := context.Background()
	s := newSession(t, m, engine.SessionOptions{Ctx: 16})
	long := make([]int, 17)
	for i := range long {
		long[i] = 300 + i
	}
	_, err := s.Generate(ctx, engine.Request{Prompt: long}, nil)
	if !errors.Is(err, engine.ErrContextFull) {
		t.Fatalf("17-token prompt in a 16-token context: %v, want ErrContextFull", err)
	}
	res, err := s.Generate(ctx, engine.Request{Prompt: once, StopIDs: []int{}}, nil)
	if !errors.Is(err, engine.ErrContextFull) || res.Finish != engine.FinishContext {
		t.Fatalf("generation past the context: %v (finish %s), want ErrContextFull", err, res.Finish)
	}
	// 16 positions: 5 prompt tokens, 11 generated and fed back, and the
	// 12th sampled from the last position.
	if len(res.Tokens) != 16-len(once)+1 {
		t.Errorf("generated %d tokens in a 16-token context after a %d-token prompt", len(res.Tokens), len(once))
	}
	if _, err := s.Forward(ctx, long, false); !errors.Is(err, engine.ErrContextFull) {
		t.Errorf("Forward past the context: %v", err)
	}
}

func TestStops(t *testing.T) {
	m := demoModel(t)
	ctx := context.Background()
	s := newSession(t, m, engine.SessionOptions{})
	full, err := s.Generate(ctx, engine.Request{Prompt: once, MaxTokens: 30}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(full.Text, "Lily") {
		t.Fatalf("reference story changed: %q", full.Text)
	}
	// Stop string: the text stops right before it, also when streamed.
	var streamed strings.Builder
	res, err := s.Generate(ctx, engine.Request{Prompt: once, MaxTokens: 30, StopStrings: []string{"Lily"}}, func(tk engine.Token) error {
		streamed.WriteString(tk.Text)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := full.Text[:strings.Index(full.Text, "Lily")]
	if res.Finish != engine.FinishStop || res.Text != want || streamed.String() != want {
		t.Errorf("stop string: finish %s, text %q, streamed %q; want %q", res.Finish, res.Text, streamed.String(), want)
	}
	// Stop id: the third generated token.
	stop := full.Tokens[2]
	res, err = s.Generate(ctx, engine.Request{Prompt: once, MaxTokens: 30, StopIDs: []int{stop}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Finish != engine.FinishStop || res.StopID != stop || !equalIDs(res.Tokens, full.Tokens[:2]) {
		t.Errorf("stop id %d: finish %s, stop %d, tokens %v", stop, res.Finish, res.StopID, res.Tokens)
	}
	// Text held back as a possible stop string is shown when a stop id
	// ends generation instead.
	tail := full.Text[:strings.Index(full.Text, "Lily")+2] // "... named Li"
	var ids []int
	for k := range full.Tokens {
		piece := m.Tokenizer().Decode(full.Tokens[:k+1])
		if len(piece) >= len(tail) {
			ids = full.Tokens[:k+1]
			break
		}
	}
	res, err = s.Generate(ctx, engine.Request{Prompt: once, MaxTokens: 30, StopStrings: []string{"Lily!!"}, StopIDs: []int{full.Tokens[len(ids)]}}, nil)
	if err != nil || res.Finish != engine.FinishStop || res.Text != m.Tokenizer().Decode(ids) {
		t.Errorf("stop id after a held-back prefix: %v, finish %s, text %q, want %q", err, res.Finish, res.Text, m.Tokenizer().Decode(ids))
	}
	// A held-back prefix of a stop string that never completes is flushed.
	res, err = s.Generate(ctx, engine.Request{Prompt: once, MaxTokens: 30, StopStrings: []string{"Lily!!"}}, nil)
	if err != nil || res.Text != full.Text || res.Finish != engine.FinishLength {
		t.Errorf("unmatched stop string: %v, finish %s, text %q, want %q", err, res.Finish, res.Text, full.Text)
	}
}

func TestCancel(t *testing.T) {
	m := demoModel(t)
	s := newSession(t, m, engine.SessionOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	res, err := s.Generate(ctx, engine.Request{Prompt: once, MaxTokens: 50}, func(engine.Token) error {
		n++
		if n == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || len(res.Tokens) != 3 || res.Finish != engine.FinishCancelled {
		t.Errorf("cancelled after 3 tokens: %v, %d tokens, finish %s", err, len(res.Tokens), res.Finish)
	}
	// The callback's error ends generation too.
	boom := errors.New("client went away")
	_, err = s.Generate(context.Background(), engine.Request{Prompt: once, MaxTokens: 50}, func(engine.Token) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("callback error: %v", err)
	}
}

func TestSamplingSeed(t *testing.T) {
	m := demoModel(t)
	ctx := context.Background()
	s := newSession(t, m, engine.SessionOptions{})
	gen := func(sp engine.Sampling) []int {
		r, err := s.Generate(ctx, engine.Request{Prompt: once, MaxTokens: 40, Sampling: sp}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r.Tokens
	}
	hot := engine.Sampling{Temperature: 1.5, TopK: 40, TopP: 0.95, MinP: 0.01, Seed: 42}
	a, b := gen(hot), gen(hot)
	if !equalIDs(a, b) {
		t.Errorf("same seed, different tokens:\n%v\n%v", a, b)
	}
	hot.Seed = 43
	if c := gen(hot); equalIDs(a, c) {
		t.Errorf("seeds 42 and 43 gave the same 40 tokens at temperature 1.5")
	}
	greedy := gen(engine.Sampling{})
	if k1 := gen(engine.Sampling{Temperature: 1, TopK: 1, Seed: 1}); !equalIDs(k1, greedy) {
		t.Errorf("top-k 1 %v differs from greedy %v", k1, greedy)
	}
	// A strong repetition penalty changes the greedy story (which repeats
	// "play" and "she").
	if p := gen(engine.Sampling{RepeatPenalty: 5, RepeatLastN: -1}); equalIDs(p, greedy) {
		t.Errorf("repeat penalty had no effect")
	}
	if p := gen(engine.Sampling{PresencePenalty: 5}); equalIDs(p, greedy) {
		t.Errorf("presence penalty had no effect")
	}
}

func TestBadInput(t *testing.T) {
	m := demoModel(t)
	ctx := context.Background()
	s := newSession(t, m, engine.SessionOptions{})
	if _, err := s.Generate(ctx, engine.Request{}, nil); err == nil {
		t.Error("empty prompt accepted")
	}
	if _, err := s.Generate(ctx, engine.Request{Prompt: []int{1, 512}}, nil); err == nil || !strings.Contains(err.Error(), "512") {
		t.Errorf("token 512 in a 512-token vocabulary: %v", err)
	}
	if _, err := s.Forward(ctx, []int{-1}, false); err == nil {
		t.Error("token -1 accepted")
	}
	if _, err := engine.Load(ctx, "/nonexistent/model.gguf", engine.Options{Backend: cpu.New(cpu.Options{})}); err == nil {
		t.Error("missing file loaded")
	}
	if _, err := engine.Load(ctx, filepath.Join(testrefs.Dir(t), "models/micro/phi3-random-micro-F32.gguf"), engine.Options{}); err == nil {
		t.Error("nil backend accepted")
	}
	tok := m.Tokenizer()
	if got := tok.Decode(tok.Encode("Once upon a time", tokenizer.EncodeOptions{})); got != "Once upon a time" {
		t.Errorf("demo tokenizer round trip: %q", got)
	}
}

func TestHugeContextRejected(t *testing.T) {
	m := demoModel(t)
	if _, err := m.NewSession(engine.SessionOptions{Ctx: 1 << 40}); err == nil {
		t.Error("a 2^40-token context was accepted")
	}
}

// TestClosed checks that closing twice is harmless and that a closed
// session or model gives an error instead of a panic.
func TestClosed(t *testing.T) {
	m := demoModel(t)
	ctx := context.Background()
	s, err := m.NewSession(engine.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Generate(ctx, engine.Request{Prompt: once, MaxTokens: 2}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Generate(ctx, engine.Request{Prompt: once, MaxTokens: 2}, nil); err == nil {
		t.Error("Generate on a closed session succeeded")
	}
	if _, err := s.Forward(ctx, once, false); err == nil {
		t.Error("Forward on a closed session succeeded")
	}
	s2 := newSession(t, m, engine.SessionOptions{})
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Forward(ctx, once, false); err == nil {
		t.Error("Forward after Model.Close succeeded")
	}
	if _, err := s2.Generate(ctx, engine.Request{Prompt: once, MaxTokens: 2}, nil); err == nil {
		t.Error("Generate after Model.Close succeeded")
	}
}

// TestConcurrentSessions runs sessions of one model from several
// goroutines: forward passes are serialised, so each produces what it
// produces alone.
func TestConcurrentSessions(t *testing.T) {
	m := demoModel(t)
	ctx := context.Background()
	want, err := newSession(t, m, engine.SessionOptions{}).Generate(ctx, engine.Request{Prompt: once, MaxTokens: 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	errs := make(chan error, n)
	for range n {
		s := newSession(t, m, engine.SessionOptions{Batch: 2})
		go func() {
			for range 3 {
				r, err := s.Generate(ctx, engine.Request{Prompt: once, MaxTokens: 20}, nil)
				if err == nil && !equalIDs(r.Tokens, want.Tokens) {
					err = fmt.Errorf("concurrent session generated %v, alone %v", r.Tokens, want.Tokens)
				}
				if err != nil {
					errs <- err
					return
				}
				s.Reset()
			}
			errs <- s.Close()
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestPrefixReuseMatchesFresh checks prompts that end inside the cached
// sequence (a strict prefix: its last token is run again for logits) or
// diverge inside it, and a prefill cancelled before it ran: each continues
// exactly as a fresh session does.
func TestPrefixReuseMatchesFresh(t *testing.T) {
	m := demoModel(t)
	ctx := context.Background()
	s := newSession(t, m, engine.SessionOptions{Batch: 2})
	fresh := func(p []int) []int {
		r, err := newSession(t, m, engine.SessionOptions{}).Generate(ctx, engine.Request{Prompt: p, MaxTokens: 8}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r.Tokens
	}
	if _, err := s.Generate(ctx, engine.Request{Prompt: once, MaxTokens: 12}, nil); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, c := range []struct {
		name   string
		prompt []int
		cached int
		ctx    context.Context
	}{
		{"strict prefix", once[:3], 2, ctx},
		{"one token", once[:1], 0, ctx},
		{"diverges", []int{1, 403, 450, 261}, 2, ctx},
		{"cancelled", append(append([]int(nil), once...), 300, 301, 302), 0, cancelled},
		{"after cancel", append(append([]int(nil), once...), 300, 301, 302), -1, ctx},
	} {
		r, err := s.Generate(c.ctx, engine.Request{Prompt: c.prompt, MaxTokens: 8}, nil)
		if c.ctx == cancelled {
			if !errors.Is(err, context.Canceled) || len(r.Tokens) != 0 {
				t.Errorf("%s: %v, %d tokens", c.name, err, len(r.Tokens))
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if c.cached >= 0 && r.CachedTokens != c.cached {
			t.Errorf("%s: reused %d tokens, want %d", c.name, r.CachedTokens, c.cached)
		}
		if want := fresh(c.prompt); !equalIDs(r.Tokens, want) {
			t.Errorf("%s: %v, fresh session %v", c.name, r.Tokens, want)
		}
	}
}

// TestContextBoundary checks prompts of exactly the context length and one
// more.
func TestContextBoundary(t *testing.T) {
	m := demoModel(t)
	ctx := context.Background()
	s := newSession(t, m, engine.SessionOptions{Ctx: 8})
	p := []int{1, 403, 407, 261, 378, 300, 301, 302}
	if _, err := s.Generate(ctx, engine.Request{Prompt: append(p, 303)}, nil); !errors.Is(err, engine.ErrContextFull) {
		t.Errorf("9 tokens in 8: %v, want ErrContextFull", err)
	}
	// A full context still yields the token its last position predicts.
	r, err := s.Generate(ctx, engine.Request{Prompt: p, StopIDs: []int{}}, nil)
	if !errors.Is(err, engine.ErrContextFull) || r.Finish != engine.FinishContext || len(r.Tokens) != 1 {
		t.Errorf("8 tokens in 8: %v, finish %s, %d tokens; want ErrContextFull, context, 1", err, r.Finish, len(r.Tokens))
	}
	r, err = s.Generate(ctx, engine.Request{Prompt: p, MaxTokens: 1, StopIDs: []int{}}, nil)
	if err != nil || r.Finish != engine.FinishLength || len(r.Tokens) != 1 {
		t.Errorf("8 tokens in 8, max 1: %v, finish %s, %d tokens", err, r.Finish, len(r.Tokens))
	}
	s.Reset()
	if _, err := s.Forward(ctx, p, false); err != nil {
		t.Errorf("Forward of exactly the context: %v", err)
	}
	if _, err := s.Forward(ctx, p[:1], false); !errors.Is(err, engine.ErrContextFull) {
		t.Errorf("Forward past a full context: %v", err)
	}
}

// TestBenchModelClosed closes the model while Bench decodes: Bench stops
// with an error instead of running on a closed backend.
func TestBenchModelClosed(t *testing.T) {
	m := demoModel(t)
	done := make(chan error, 1)
	go func() {
		_, err := m.Bench(context.Background(), engine.BenchOptions{Prompt: 8, Gen: 1 << 16})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("Bench on a closed model succeeded")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Bench kept running after Model.Close")
	}
}
