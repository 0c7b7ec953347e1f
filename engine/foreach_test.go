package engine_test

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/cpu"
	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// microIDs returns n token ids spread over micro's vocabulary.
func microIDs(n int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = (i*37 + 11) % 900
	}
	return ids
}

// forwardEachRows collects ForwardEach's rows (copied) and checks that i
// counts up from 0.
func forwardEachRows(t *testing.T, s *engine.Session, ids []int) []float32 {
	t.Helper()
	var out []float32
	next := 0
	err := s.ForwardEach(context.Background(), ids, func(i int, logits []float32) error {
		if i != next {
			t.Fatalf("ForwardEach called with i=%d, want %d", i, next)
		}
		next++
		out = append(out, logits...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if next != len(ids) {
		t.Fatalf("ForwardEach called fn %d times for %d ids", next, len(ids))
	}
	return out
}

// TestForwardEach checks that ForwardEach hands over exactly the rows
// Forward(all) returns, with and without a cached prefix and whatever the
// batch size.
func TestForwardEach(t *testing.T) {
	m := loadModel(t, filepath.Join(testrefs.Dir(t), "models/micro/phi3-random-micro-Q8_0.gguf"), 2)
	ids := microIDs(70)
	tests := []struct {
		name   string
		batch  int
		prefix int // tokens forwarded before, whose cache both reuse
		n      int // tokens compared
	}{
		{"one batch", 512, 0, 70},
		{"batches of 7", 7, 0, 70},
		{"batches of 1", 1, 0, 9},
		{"after a prefix", 16, 23, 47},
		{"one token", 4, 5, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			o := engine.SessionOptions{Ctx: 128, Batch: tt.batch, KV: engine.KVF32}
			a, b := newSession(t, m, o), newSession(t, m, o)
			pre, rest := ids[:tt.prefix], ids[tt.prefix:tt.prefix+tt.n]
			if tt.prefix > 0 {
				for _, s := range []*engine.Session{a, b} {
					if _, err := s.Forward(ctx, pre, false); err != nil {
						t.Fatal(err)
					}
				}
			}
			want, err := a.Forward(ctx, rest, true)
			if err != nil {
				t.Fatal(err)
			}
			got := forwardEachRows(t, b, rest)
			if !slices.Equal(got, want) {
				t.Errorf("ForwardEach rows differ from Forward(all): max |Δ| %.3g", maxDiff(got, want))
			}
			if !equalIDs(b.Tokens(), ids[:tt.prefix+tt.n]) {
				t.Errorf("tokens after ForwardEach: %v", b.Tokens())
			}
		})
	}
}

// TestForwardEachStops checks that an error from the callback, or a
// cancelled context, stops the pass, is returned, and leaves the session's
// tokens as they were so that it can carry on.
func TestForwardEachStops(t *testing.T) {
	m := loadModel(t, filepath.Join(testrefs.Dir(t), "models/micro/phi3-random-micro-Q8_0.gguf"), 2)
	ids := microIDs(40)
	errStop := errors.New("stop")
	tests := []struct {
		name   string
		stop   int  // fn fails, or cancels ctx, when called with this i
		cancel bool // cancel ctx rather than fail
		calls  int  // fn calls expected
		want   error
	}{
		{"callback error at the first position", 0, false, 1, errStop},
		{"callback error mid-batch", 5, false, 6, errStop},
		{"callback error in a later batch", 21, false, 22, errStop},
		// The batch is handed over, then prefill sees ctx before the next.
		{"cancelled in the first batch", 3, true, 8, context.Canceled},
		// Nothing is left to run: the pass completes.
		{"cancelled in the last batch", 26, true, 30, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSession(t, m, engine.SessionOptions{Ctx: 64, Batch: 8, KV: engine.KVF32})
			prefix := ids[:10] // then 30 ids in batches of 8, 8, 8, 6
			if _, err := s.Forward(context.Background(), prefix, false); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			calls := 0
			err := s.ForwardEach(ctx, ids[10:], func(i int, _ []float32) error {
				calls++
				if i == tt.stop {
					if !tt.cancel {
						return errStop
					}
					cancel()
				}
				return nil
			})
			if calls != tt.calls {
				t.Errorf("fn called %d times, want %d", calls, tt.calls)
			}
			if tt.want == nil {
				if err != nil || len(s.Tokens()) != len(ids) {
					t.Errorf("ForwardEach: %v, %d tokens held", err, len(s.Tokens()))
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("ForwardEach returned %v, want %v", err, tt.want)
			}
			if !equalIDs(s.Tokens(), prefix) {
				t.Errorf("after the failed pass the session holds %d tokens, want the %d of before", len(s.Tokens()), len(prefix))
			}
			// The session carries on as if the failed pass never ran.
			got, err := s.Forward(context.Background(), ids[10:], true)
			if err != nil {
				t.Fatal(err)
			}
			fresh := newSession(t, m, engine.SessionOptions{Ctx: 64, Batch: 8, KV: engine.KVF32})
			if _, err := fresh.Forward(context.Background(), prefix, false); err != nil {
				t.Fatal(err)
			}
			want, err := fresh.Forward(context.Background(), ids[10:], true)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("after the failed pass: max |Δ| %.3g from a fresh session", maxDiff(got, want))
			}
		})
	}
}

func TestForwardEachBadInput(t *testing.T) {
	m := loadModel(t, filepath.Join(testrefs.Dir(t), "models/micro/phi3-random-micro-Q8_0.gguf"), 2)
	s := newSession(t, m, engine.SessionOptions{Ctx: 16})
	nop := func(int, []float32) error { return nil }
	ctx := context.Background()
	tests := []struct {
		name string
		ids  []int
		fn   func(int, []float32) error
		is   error
	}{
		{"no tokens", nil, nop, nil},
		{"nil callback", []int{1}, nil, nil},
		{"id outside the vocabulary", []int{1, 1 << 20}, nop, nil},
		{"negative id", []int{-1}, nop, nil},
		{"past the context", microIDs(17), nop, engine.ErrContextFull},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.ForwardEach(ctx, tt.ids, tt.fn)
			if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Errorf("ForwardEach: %v", err)
			}
			if len(s.Tokens()) != 0 {
				t.Errorf("the session holds %d tokens after a refused pass", len(s.Tokens()))
			}
		})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.ForwardEach(ctx, []int{1}, nop); err == nil {
		t.Error("ForwardEach on a closed session succeeded")
	}
}

// TestForwardAllMemoryCheck checks that Forward(all) measures its result
// against the available memory before allocating it.
func TestForwardAllMemoryCheck(t *testing.T) {
	m := loadModel(t, filepath.Join(testrefs.Dir(t), "models/micro/phi3-random-micro-Q8_0.gguf"), 2)
	ids := microIDs(20)
	need := int64(len(ids)) * int64(m.Config().Vocab) * 4
	tests := []struct {
		name  string
		avail int64
		known bool
		ok    bool
	}{
		{"plenty", 1 << 40, true, true},
		{"exactly enough", need, true, true},
		{"one byte short", need - 1, true, false},
		{"a kilobyte", 1 << 10, true, false},
		{"unknown", 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := newSession(t, m, engine.SessionOptions{Ctx: 64})
			engine.SetAvailableMemory(s, func() (int64, bool) { return tt.avail, tt.known })
			_, err := s.Forward(ctx, ids, true)
			if tt.ok {
				if err != nil {
					t.Fatalf("Forward(all) with %d bytes available for %d: %v", tt.avail, need, err)
				}
				return
			}
			if !errors.Is(err, engine.ErrNoMemory) {
				t.Fatalf("Forward(all) needing %d bytes with %d available: %v, want ErrNoMemory", need, tt.avail, err)
			}
			for _, want := range []string{"20 tokens", "ForwardEach", "fewer tokens"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if len(s.Tokens()) != 0 {
				t.Errorf("refused Forward left %d tokens", len(s.Tokens()))
			}
			// What needs no all-position matrix still works.
			if _, err := s.Forward(ctx, ids[:10], false); err != nil {
				t.Errorf("Forward(last): %v", err)
			}
			if err := s.ForwardEach(ctx, ids[10:], func(int, []float32) error { return nil }); err != nil {
				t.Errorf("ForwardEach: %v", err)
			}
		})
	}
}

// failingRead is a CPU backend whose Read fails while fail is set, as a
// GPU backend's does when recorded work failed.
type failingRead struct {
	engine.Backend
	fail bool
}

var errRead = errors.New("read failed")

func (f *failingRead) Read(b engine.Buffer, dst []float32) error {
	if f.fail {
		return errRead
	}
	return f.Backend.Read(b, dst)
}

// TestForwardReadError checks that a Forward whose logits cannot be read
// back leaves the session's tokens as they were (its doc's promise for
// every error): the work whose result could not be read may not have
// filled the cache, which must then not count as a reusable prefix.
func TestForwardReadError(t *testing.T) {
	path := filepath.Join(testrefs.Dir(t), "models/micro/phi3-random-micro-Q8_0.gguf")
	be := &failingRead{Backend: cpu.New(cpu.Options{Threads: 2, Exact: true})}
	m, err := engine.Load(context.Background(), path, engine.Options{Backend: be, NoTokenizer: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	ids := microIDs(12)
	for _, all := range []bool{false, true} {
		s := newSession(t, m, engine.SessionOptions{Ctx: 32, KV: engine.KVF32})
		if _, err := s.Forward(context.Background(), ids[:5], false); err != nil {
			t.Fatal(err)
		}
		be.fail = true
		_, err := s.Forward(context.Background(), ids[5:], all)
		be.fail = false
		if !errors.Is(err, errRead) {
			t.Fatalf("Forward(all=%v) with a failing Read: %v", all, err)
		}
		if !equalIDs(s.Tokens(), ids[:5]) {
			t.Errorf("Forward(all=%v) failed reading its logits but the session holds %d tokens, want the 5 of before", all, len(s.Tokens()))
		}
	}
}

// TestForwardAllMatchesDecode checks every position's logits from one
// batch of more tokens than a forward pass computes logits for at once
// (150 > 64) against the last-position logits of feeding the same tokens
// one at a time.
func TestForwardAllMatchesDecode(t *testing.T) {
	m := loadModel(t, filepath.Join(testrefs.Dir(t), "models/micro/phi3-random-micro-F32.gguf"), 2)
	ids := microIDs(150)
	s, err := m.NewSession(engine.SessionOptions{Ctx: 256, Batch: 200, KV: engine.KVF32})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	all, err := s.Forward(context.Background(), ids, true)
	if err != nil {
		t.Fatal(err)
	}
	one, err := m.NewSession(engine.SessionOptions{Ctx: 256, Batch: 1, KV: engine.KVF32})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	V := m.Config().Vocab
	for i, id := range ids {
		got, err := one.Forward(context.Background(), []int{id}, false)
		if err != nil {
			t.Fatal(err)
		}
		for j, v := range got {
			if e := all[i*V+j]; math.Abs(float64(v-e)) > 1e-4*(1+math.Abs(float64(e))) {
				t.Fatalf("position %d logit %d: batch %g, one at a time %g", i, j, e, v)
			}
		}
	}
}
