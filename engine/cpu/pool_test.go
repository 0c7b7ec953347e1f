package cpu

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestPoolParallel checks that every index of a loop is visited exactly
// once, by valid worker ids, for many shapes, back to back (helpers still
// polling) and after pauses past spinFor (helpers blocked).
func TestPoolParallel(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 8} {
		p := newPool(threads)
		for round := 0; round < 3; round++ {
			for _, n := range []int{0, 1, 2, 7, 64, 1000} {
				for _, grain := range []int{0, 1, 3, 64, 2000} {
					seen := make([]atomic.Int32, n)
					var bad atomic.Bool
					p.parallel(n, grain, func(worker, lo, hi int) {
						if worker < 0 || worker >= threads || lo < 0 || hi > n || lo >= hi || (grain > 0 && hi-lo > grain) {
							bad.Store(true)
						}
						for i := lo; i < hi; i++ {
							seen[i].Add(1)
						}
					})
					if bad.Load() {
						t.Fatalf("threads=%d n=%d grain=%d: a bad range or worker id", threads, n, grain)
					}
					for i := range seen {
						if c := seen[i].Load(); c != 1 {
							t.Fatalf("threads=%d n=%d grain=%d: index %d visited %d times", threads, n, grain, i, c)
						}
					}
				}
			}
			time.Sleep(300 * time.Microsecond) // let the helpers block before the next round
		}
		p.close()
		p.close() // harmless
	}
}

// TestPoolCloseStopsWorkers checks that closing a pool ends its goroutines,
// whether they are polling or blocked.
func TestPoolCloseStopsWorkers(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, pause := range []time.Duration{0, 300 * time.Microsecond} {
		p := newPool(4)
		p.parallel(100, 1, func(_, _, _ int) {})
		time.Sleep(pause)
		p.close()
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after closing, %d before", n, before)
	}
}

// BenchmarkPoolHandOff measures one parallel loop of trivial work on 2
// threads, back to back (the hand-off cost a decode step pays about a
// hundred times), and with a pause past spinFor between loops (helpers
// woken from blocking).
func BenchmarkPoolHandOff(b *testing.B) {
	p := newPool(2)
	defer p.close()
	var sink [2]int
	fn := func(w, _, _ int) { sink[w]++ }
	b.Run("back-to-back", func(b *testing.B) {
		for b.Loop() {
			p.parallel(2, 1, fn)
		}
	})
	b.Run("after-pause", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			time.Sleep(200 * time.Microsecond)
			b.StartTimer()
			p.parallel(2, 1, fn)
		}
	})
}
