package cpu

import (
	"context"
	"fmt"
	"time"

	"github.com/phi4mac/phi4mac/engine"
)

// MeasureBandwidth streams an array of size bytes (make it well past the
// last-level cache) through the backend's threads a few times and returns
// the best read bandwidth in GB/s (10⁹ bytes per second): the ceiling of
// a memory-bound decode step on this machine. It reads the way the
// fastest decode kernel does, half-float rows four at a time (four
// streams per thread read about a tenth faster here than one). A size
// past the available memory fails with an error wrapping
// engine.ErrNoMemory.
func (b *Backend) MeasureBandwidth(ctx context.Context, size int) (float64, error) {
	const rowVals = 8192 // values per row (16 KiB)
	rows := size / (2 * rowVals)
	if rows == 0 {
		return 0, fmt.Errorf("cpu: bandwidth probe of %d bytes (want at least %d)", size, 2*rowVals)
	}
	n := rows * 2 * rowVals
	if avail, ok := engine.AvailableMemory(); ok && int64(n) > avail {
		return 0, fmt.Errorf("cpu: bandwidth probe of %.1f GiB: %w (%.1f GiB available)",
			float64(n)/(1<<30), engine.ErrNoMemory, float64(avail)/(1<<30))
	}
	data := make([]byte, n)
	for i := range data { // touch every page before timing (0x3c3c: the half float 1.06)
		data[i] = 0x3c
	}
	x := make([]float32, rowVals)
	dst := make([]float32, rows)
	best := time.Duration(1<<63 - 1)
	for i := 0; i < 4; i++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		start := time.Now()
		b.pool.parallel(rows, 64, func(_, lo, hi int) {
			b.k.dotF16Rows(data[lo*2*rowVals:], 2*rowVals, x, dst[lo:hi])
		})
		best = min(best, time.Since(start))
	}
	return float64(n) / best.Seconds() / 1e9, nil
}
