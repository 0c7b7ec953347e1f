package cpu

import (
	"runtime"
	"sync/atomic"
	"time"
)

// spinFor is how long an idle worker, and a caller waiting for its
// helpers, poll before they block. A decode step is a hundred parallel
// loops of 0.1–1 ms separated by a few microseconds of serial work; waking
// a blocked goroutine's thread costs tens of microseconds on a VM, so each
// loop would start with one thread and end waiting on a wake-up. Polling
// for a short while after each loop catches the next one; blocking after
// that keeps an idle pool from burning the CPU (spin-forever pools
// collapse on machines whose cores are shared with other work, see
// DEPENDENCIES.md). Nothing polls while the pool has more threads than
// GOMAXPROCS (see pool.polls).
const spinFor = 100 * time.Microsecond

// pool runs data-parallel loops on a fixed set of worker goroutines.
type pool struct {
	threads int
	workers []*worker
	stopped chan struct{} // closed by close once every worker has exited
}

// worker is a helper goroutine's mailbox.
type worker struct {
	job      atomic.Pointer[job] // the next loop to help with
	sleeping atomic.Bool         // blocked on wake (a sender must signal)
	wake     chan struct{}       // capacity 1
	quit     atomic.Bool
}

// job is one parallel loop: workers claim chunks of [0, n) of size grain
// until none are left, so a worker slowed by a busy core does less of it.
type job struct {
	fn      func(worker, lo, hi int)
	n       int
	grain   int
	spin    bool // helpers may poll for the next job when done (pool.polls)
	next    atomic.Int64
	pending atomic.Int32  // helpers still running
	waiting atomic.Bool   // the caller is blocked on done
	done    chan struct{} // capacity 1: the last helper's signal
}

func newPool(threads int) *pool {
	if threads < 1 {
		threads = 1
	}
	p := &pool{threads: threads, stopped: make(chan struct{})}
	exited := make(chan struct{}, threads)
	for i := 1; i < threads; i++ {
		w := &worker{wake: make(chan struct{}, 1)}
		p.workers = append(p.workers, w)
		go func(id int) {
			defer func() { exited <- struct{}{} }()
			w.loop(id)
		}(i)
	}
	go func() {
		for range p.workers {
			<-exited
		}
		close(p.stopped)
	}()
	return p
}

// loop runs the jobs handed to w until the pool closes.
func (w *worker) loop(id int) {
	spin := false
	for {
		j := w.await(spin)
		if j == nil {
			return
		}
		j.run(id)
		// Having woken a blocked caller, block rather than poll (see
		// job.wait).
		woke := j.helperDone()
		spin = j.spin && !woke
	}
}

// await returns the next job, first polling for spinFor if spin is set,
// then blocking; nil once the pool is closed.
func (w *worker) await(spin bool) *job {
	start := time.Now()
	for i := 0; spin; i++ {
		if w.job.Load() != nil { // read-only polling keeps the line shared until a job arrives
			return w.job.Swap(nil)
		}
		if w.quit.Load() {
			return nil
		}
		if i%64 == 63 && time.Since(start) > spinFor {
			break
		}
	}
	for {
		w.sleeping.Store(true)
		// A sender that stored its job before seeing sleeping set sent no
		// wake-up: look again before blocking.
		if j := w.job.Swap(nil); j != nil {
			w.sleeping.Store(false)
			return j
		}
		if w.quit.Load() {
			return nil
		}
		<-w.wake
		w.sleeping.Store(false)
		if j := w.job.Swap(nil); j != nil {
			return j
		}
		if w.quit.Load() {
			return nil
		}
		// A stale wake-up from an earlier hand-off: block again.
	}
}

// give hands j to w and reports whether w had to be woken.
func (w *worker) give(j *job) bool {
	w.job.Store(j)
	if !w.sleeping.Load() {
		return false
	}
	select {
	case w.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
	return true
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

// helperDone records that one helper has finished j and reports whether
// it woke the blocked caller.
func (j *job) helperDone() bool {
	if j.pending.Add(-1) == 0 && j.waiting.Load() {
		select {
		case j.done <- struct{}{}:
		default:
		}
		return true
	}
	return false
}

// wait returns once every helper has finished j. With spin it polls for
// spinFor before it blocks. It must not poll after waking a blocked
// helper: Go readies a woken goroutine on the waker's own thread first, so
// a polling caller can keep it from running at all until it blocks.
func (j *job) wait(spin bool) {
	start := time.Now()
	for i := 0; spin && j.pending.Load() != 0; i++ {
		if i%64 == 63 && time.Since(start) > spinFor {
			break
		}
	}
	if j.pending.Load() == 0 {
		return
	}
	j.waiting.Store(true)
	if j.pending.Load() == 0 { // finished before it could see waiting
		return
	}
	<-j.done
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
	helpers := min(len(p.workers), chunks-1)
	if helpers <= 0 {
		for lo := 0; lo < n; lo += grain {
			fn(0, lo, min(lo+grain, n))
		}
		return
	}
	spin := p.polls()
	j := &job{fn: fn, n: n, grain: grain, spin: spin, done: make(chan struct{}, 1)}
	j.pending.Store(int32(helpers))
	for _, w := range p.workers[:helpers] {
		if w.give(j) {
			spin = false
		}
	}
	j.run(0)
	j.wait(spin)
}

// polls reports whether the pool's goroutines may poll rather than block
// at once: only while every thread can have a P (GOMAXPROCS, which Go
// 1.25+ sets from a container's CPU limit and may change at run time,
// while the default thread count is runtime.NumCPU). With fewer, a
// polling goroutine holds a P that the thread it waits for needs, and
// each loop costs up to spinFor: 150-200 µs per hand-off instead of 1 µs
// with 4 threads on GOMAXPROCS 1 or 2.
func (p *pool) polls() bool {
	return p.threads <= runtime.GOMAXPROCS(0)
}

// grainFor splits n items into about 4 chunks per thread (for balance when
// a core is busy with other work), each at least minGrain items.
func (p *pool) grainFor(n, minGrain int) int {
	g := (n + 4*p.threads - 1) / (4 * p.threads)
	return max(g, minGrain)
}

// close stops the workers and waits for them to exit.
func (p *pool) close() {
	for _, w := range p.workers {
		w.quit.Store(true)
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	<-p.stopped
	p.workers = nil
}
