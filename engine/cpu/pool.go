package cpu

import (
	"sync"
	"sync/atomic"
)

// pool runs data-parallel loops on a fixed set of worker goroutines. Work is
// handed over through channels, so idle workers block instead of spinning:
// on a machine whose cores are shared with other processes, spin-waiting
// thread pools collapse (see DEPENDENCIES.md).
type pool struct {
	threads int
	work    []chan *job
	wg      sync.WaitGroup // running workers, for close
}

// job is one parallel loop: workers claim chunks of [0, n) of size grain
// until none are left, so a worker slowed by a busy core does less of it.
type job struct {
	fn    func(worker, lo, hi int)
	n     int
	grain int
	next  atomic.Int64
	done  sync.WaitGroup
}

func newPool(threads int) *pool {
	if threads < 1 {
		threads = 1
	}
	p := &pool{threads: threads}
	for i := 1; i < threads; i++ {
		ch := make(chan *job, 1)
		p.work = append(p.work, ch)
		p.wg.Add(1)
		go func(id int) {
			defer p.wg.Done()
			for j := range ch {
				j.run(id)
				j.done.Done()
			}
		}(i)
	}
	return p
}

func (j *job) run(worker int) {
	for {
		lo := int(j.next.Add(int64(j.grain))) - j.grain
		if lo >= j.n {
			return
		}
		j.fn(worker, lo, min(lo+j.grain, j.n))
	}
}

// parallel calls fn on disjoint ranges covering [0, n), each at most grain
// long, on all threads, and returns when every call has returned. worker
// (0 ≤ worker < threads) identifies the calling thread, for per-thread
// scratch space.
func (p *pool) parallel(n, grain int, fn func(worker, lo, hi int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	chunks := (n + grain - 1) / grain
	helpers := min(len(p.work), chunks-1)
	if helpers <= 0 {
		fn(0, 0, n)
		return
	}
	j := &job{fn: fn, n: n, grain: grain}
	j.done.Add(helpers)
	for i := 0; i < helpers; i++ {
		p.work[i] <- j
	}
	j.run(0)
	j.done.Wait()
}

// grainFor splits n items into about 4 chunks per thread (for balance when
// a core is busy with other work), each at least minGrain items.
func (p *pool) grainFor(n, minGrain int) int {
	g := (n + 4*p.threads - 1) / (4 * p.threads)
	return max(g, minGrain)
}

func (p *pool) close() {
	for _, ch := range p.work {
		close(ch)
	}
	p.wg.Wait()
	p.work = nil
}
