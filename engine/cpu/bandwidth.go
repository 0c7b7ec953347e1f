package cpu

import (
	"context"
	"fmt"
	"time"

	"github.com/phi4mac/phi4mac/engine"
)

// MeasureBandwidth streams a float32 array of size bytes (make it well
// past the last-level cache) through the backend's threads with the same
// dot-product kernel the F32 products use, a few times, and returns the
// best read bandwidth in GB/s (10⁹ bytes per second): the ceiling of a
// memory-bound decode step on this machine. A size past the available
// memory fails with an error wrapping engine.ErrNoMemory.
func (b *Backend) MeasureBandwidth(ctx context.Context, size int) (float64, error) {
	const chunk = 1 << 16 // values per task
	n := size / 4 / chunk * chunk
	if n == 0 {
		return 0, fmt.Errorf("cpu: bandwidth probe of %d bytes (want at least %d)", size, 4*chunk)
	}
	if avail, ok := engine.AvailableMemory(); ok && int64(4*n) > avail {
		return 0, fmt.Errorf("cpu: bandwidth probe of %.1f GiB: %w (%.1f GiB available)",
			float64(4*n)/(1<<30), engine.ErrNoMemory, float64(avail)/(1<<30))
	}
	data := make([]float32, n)
	ones := make([]float32, chunk)
	for i := range ones {
		ones[i] = 1
	}
	for i := range data { // touch every page before timing
		data[i] = 1
	}
	best := time.Duration(1<<63 - 1)
	for i := 0; i < 4; i++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		start := time.Now()
		b.pool.parallel(n/chunk, 16, func(_, lo, hi int) {
			for c := lo; c < hi; c++ {
				b.k.dotF32(data[c*chunk:(c+1)*chunk], ones)
			}
		})
		best = min(best, time.Since(start))
	}
	return float64(4*n) / best.Seconds() / 1e9, nil
}
