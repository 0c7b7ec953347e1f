package cpu

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// withWatchdog runs f on another goroutine (so f reports with t.Error,
// not t.Fatal) and fails the test, with every goroutine's stack, if it
// has not returned within limit: a lost wake-up in the pool shows as a
// hang, and a hanging test must not hang CI.
func withWatchdog(t *testing.T, limit time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(limit):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("no progress after %v (lost wake-up or deadlock?); goroutines:\n%s", limit, buf)
	}
}

// pause waits about d, half the time by sleeping (the pool's helpers
// block) and half by spinning (they are caught while polling or just as
// their polling ends).
func pause(rng *rand.Rand, d time.Duration) {
	if d <= 0 {
		return
	}
	if rng.IntN(2) == 0 {
		time.Sleep(d)
		return
	}
	for start := time.Now(); time.Since(start) < d; {
	}
}

// TestPoolStress runs many short loops on several pools at once, each
// driven by its own caller, with random pauses around spinFor between
// and inside loops, so hand-offs meet helpers that are polling, just
// giving up polling, blocking, or still finishing the previous loop.
// Every loop must visit each index once, use each worker id on one
// goroutine at a time (worker ids index per-thread scratch space), and
// make no call after parallel returned.
func TestPoolStress(t *testing.T) {
	loops := 3000
	if testing.Short() {
		loops = 500
	}
	withWatchdog(t, time.Minute, func() {
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for pi, threads := range []int{1, 2, 3, 5} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(pi), 99))
				p := newPool(threads)
				defer p.close()
				busy := make([]atomic.Int32, threads)
				for l := 0; l < loops; l++ {
					n := rng.IntN(40)
					grain := rng.IntN(8)
					var inner time.Duration // work per call: none, or up to twice spinFor
					if rng.IntN(4) == 0 {
						inner = time.Duration(rng.IntN(int(2 * spinFor)))
					}
					seen := make([]atomic.Int32, n)
					var returned, bad atomic.Bool
					var why atomic.Value
					fail := func(format string, args ...any) {
						if bad.CompareAndSwap(false, true) {
							why.Store(fmt.Sprintf(format, args...))
						}
					}
					var mu sync.Mutex // the callback's rng
					p.parallel(n, grain, func(worker, lo, hi int) {
						if returned.Load() {
							fail("a call after parallel returned")
						}
						if worker < 0 || worker >= threads {
							fail("worker id %d of %d threads", worker, threads)
							return
						}
						if busy[worker].Add(1) != 1 {
							fail("worker id %d on two goroutines at once", worker)
						}
						for i := lo; i < hi; i++ {
							seen[i].Add(1)
						}
						if inner > 0 {
							mu.Lock()
							d := time.Duration(rng.IntN(int(inner) + 1))
							mu.Unlock()
							for start := time.Now(); time.Since(start) < d; {
							}
						}
						busy[worker].Add(-1)
					})
					returned.Store(true)
					if bad.Load() {
						errs <- fmt.Errorf("threads=%d loop %d n=%d grain=%d: %s", threads, l, n, grain, why.Load())
						return
					}
					for i := range seen {
						if c := seen[i].Load(); c != 1 {
							errs <- fmt.Errorf("threads=%d loop %d n=%d grain=%d: index %d visited %d times", threads, l, n, grain, i, c)
							return
						}
					}
					// Back to back, a little under, around or well past spinFor.
					switch rng.IntN(4) {
					case 1:
						pause(rng, time.Duration(rng.IntN(int(spinFor))))
					case 2:
						pause(rng, spinFor/2+time.Duration(rng.IntN(int(spinFor))))
					case 3:
						pause(rng, 2*spinFor+time.Duration(rng.IntN(int(spinFor))))
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

// TestPoolCloseAfterStress checks that pools closed right after a loop,
// with their helpers in every state, leave no goroutines behind, and that
// a closed pool still runs loops (on the caller alone).
func TestPoolCloseAfterStress(t *testing.T) {
	before := runtime.NumGoroutine()
	withWatchdog(t, time.Minute, func() {
		rng := rand.New(rand.NewPCG(7, 8))
		for i := 0; i < 200; i++ {
			p := newPool(1 + rng.IntN(4))
			for j := rng.IntN(5); j > 0; j-- {
				p.parallel(1+rng.IntN(20), 1, func(_, _, _ int) {})
				pause(rng, time.Duration(rng.IntN(int(3*spinFor))))
			}
			p.close()
			var calls atomic.Int32
			p.parallel(10, 1, func(w, lo, hi int) {
				if w != 0 {
					t.Errorf("worker %d after close", w)
				}
				calls.Add(int32(hi - lo))
			})
			if calls.Load() != 10 {
				t.Errorf("a closed pool ran %d of 10 indices", calls.Load())
				return
			}
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after closing, %d before", n, before)
	}
}

// TestPoolPollsOnlyWithEnoughProcs checks that the pool polls only while
// each of its threads can have a P, and that loops are still right when
// it does not: with more threads than GOMAXPROCS a polling goroutine
// holds a P the thread it waits for needs, and every hand-off took up to
// spinFor (about 200 µs with 4 threads on GOMAXPROCS 1, against 1 µs).
func TestPoolPollsOnlyWithEnoughProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	for _, tc := range []struct {
		procs, threads int
		polls          bool
	}{{2, 1, true}, {2, 2, true}, {2, 3, false}, {1, 4, false}, {1, 1, true}} {
		runtime.GOMAXPROCS(tc.procs)
		p := newPool(tc.threads)
		if got := p.polls(); got != tc.polls {
			t.Errorf("GOMAXPROCS %d, %d threads: polls = %v, want %v", tc.procs, tc.threads, got, tc.polls)
		}
		withWatchdog(t, 30*time.Second, func() {
			for l := 0; l < 300; l++ {
				n := 1 + l%23
				seen := make([]atomic.Int32, n)
				p.parallel(n, 1+l%3, func(_, lo, hi int) {
					for i := lo; i < hi; i++ {
						seen[i].Add(1)
					}
				})
				for i := range seen {
					if c := seen[i].Load(); c != 1 {
						t.Errorf("GOMAXPROCS %d, %d threads, loop %d: index %d visited %d times", tc.procs, tc.threads, l, i, c)
						return
					}
				}
			}
		})
		p.close()
	}
}
