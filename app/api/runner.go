package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/phi4mac/phi4mac/app/llm"
)

// errQueueFull is returned when MaxQueue requests are already waiting.
var errQueueFull = errors.New("too many requests waiting for the model")

// runner owns the loaded model. It runs one generation at a time, hands the
// model to waiting requests strictly in arrival order (FIFO), loads the
// model on demand and unloads it after an idle period.
type runner struct {
	loader   llm.Loader
	idle     time.Duration
	maxQueue int
	log      *slog.Logger

	mu        sync.Mutex
	busy      bool
	waiters   []*waiter
	model     llm.Model
	loadedAt  time.Time
	expiresAt time.Time
	keepAlive time.Duration // current model's idle period (idle, or a request's keep_alive)
	timer     *time.Timer
	closed    bool
}

type waiter struct {
	ready   chan struct{}
	granted bool
}

// newRunner: idle <= 0 keeps the model loaded.
func newRunner(l llm.Loader, idle time.Duration, maxQueue int, log *slog.Logger) *runner {
	if idle <= 0 {
		idle = -1
	}
	return &runner{loader: l, idle: idle, maxQueue: maxQueue, log: log, keepAlive: idle}
}

// acquire waits for the model slot in FIFO order, or until ctx is done.
func (r *runner) acquire(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return errors.New("server is shutting down")
	}
	if !r.busy && len(r.waiters) == 0 {
		r.busy = true
		r.stopTimerLocked()
		r.mu.Unlock()
		return nil
	}
	if len(r.waiters) >= r.maxQueue {
		r.mu.Unlock()
		return errQueueFull
	}
	w := &waiter{ready: make(chan struct{})}
	r.waiters = append(r.waiters, w)
	r.mu.Unlock()

	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		r.mu.Lock()
		if w.granted {
			// The slot arrived as we gave up: pass it on.
			r.mu.Unlock()
			r.release()
			return ctx.Err()
		}
		for i, x := range r.waiters {
			if x == w {
				r.waiters = append(r.waiters[:i], r.waiters[i+1:]...)
				break
			}
		}
		r.mu.Unlock()
		return ctx.Err()
	}
}

// release hands the slot to the next waiter, or starts the idle timer.
func (r *runner) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.waiters) > 0 {
		w := r.waiters[0]
		r.waiters = r.waiters[1:]
		w.granted = true
		r.stopTimerLocked()
		close(w.ready)
		return
	}
	r.busy = false
	if r.closed {
		r.unloadLocked("shutdown")
		return
	}
	if r.model != nil && r.keepAlive >= 0 {
		if r.keepAlive == 0 {
			r.unloadLocked("keep_alive 0")
			return
		}
		r.expiresAt = time.Now().Add(r.keepAlive)
		r.timer = time.AfterFunc(r.keepAlive, r.idleUnload)
	}
}

func (r *runner) stopTimerLocked() {
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
}

func (r *runner) idleUnload() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.busy || r.model == nil || time.Now().Before(r.expiresAt) {
		return
	}
	r.unloadLocked("idle")
}

func (r *runner) unloadLocked(why string) {
	if r.model == nil {
		return
	}
	name := r.model.Info().Name
	if err := r.model.Close(); err != nil {
		r.log.Warn("unload model", "model", name, "err", err)
	}
	r.log.Info("model unloaded", "model", name, "reason", why)
	r.model = nil
	r.stopTimerLocked()
}

// use runs fn with the named model loaded, holding the slot. keepAlive,
// when non-nil, sets how long the model stays loaded afterwards (negative:
// forever, 0: unload at once).
func (r *runner) use(ctx context.Context, name string, keepAlive *time.Duration, fn func(m llm.Model, loadTime time.Duration) error) error {
	if err := r.acquire(ctx); err != nil {
		return err
	}
	defer r.release()
	// Between acquire and release this goroutine owns r.model.
	var loadTime time.Duration
	r.mu.Lock()
	m := r.model
	r.keepAlive = r.idle // as in Ollama, a request's keep_alive lasts until the next request
	if keepAlive != nil {
		r.keepAlive = *keepAlive
	}
	r.mu.Unlock()
	if m != nil && m.Info().Name != name {
		r.mu.Lock()
		r.unloadLocked("switching to " + name)
		r.mu.Unlock()
		m = nil
	}
	if m == nil {
		start := time.Now()
		var err error
		m, err = r.loader.Load(ctx, name)
		if err != nil {
			return fmt.Errorf("load model %q: %w", name, err)
		}
		loadTime = time.Since(start)
		r.log.Info("model loaded", "model", name, "took", loadTime)
		r.mu.Lock()
		r.model, r.loadedAt = m, time.Now()
		r.mu.Unlock()
	}
	if fn == nil {
		return nil
	}
	return fn(m, loadTime)
}

// unload unloads the named model if it is resident, waiting its turn so
// that no generation is cut short; it never loads anything.
func (r *runner) unload(ctx context.Context, name string) error {
	if err := r.acquire(ctx); err != nil {
		return err
	}
	defer r.release()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keepAlive = r.idle
	if r.model != nil && r.model.Info().Name == name {
		r.unloadLocked("keep_alive 0")
	}
	return nil
}

// loaded describes the resident model, if any.
type loaded struct {
	info      llm.Info
	expiresAt time.Time // zero: never
}

func (r *runner) status() (lm *loaded, busy bool, queued int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.model != nil {
		lm = &loaded{info: r.model.Info()}
		if r.keepAlive > 0 {
			lm.expiresAt = r.expiresAt
			if r.busy {
				lm.expiresAt = time.Now().Add(r.keepAlive)
			}
		}
	}
	return lm, r.busy, len(r.waiters)
}

// close unloads the model and refuses new work.
func (r *runner) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.stopTimerLocked()
	if !r.busy {
		r.unloadLocked("shutdown")
	}
}
