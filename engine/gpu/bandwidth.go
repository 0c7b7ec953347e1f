package gpu

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// MeasureBandwidth streams a buffer of size bytes through the
// read_bandwidth kernel a few times and returns the best read bandwidth
// in GB/s (10⁹ bytes per second), the figure a decode token's time is
// bounded by.
func MeasureBandwidth(ctx context.Context, dev Device, size int) (float64, error) {
	const groups, threads = 1024, 256
	size &^= 15
	if size < 16 {
		return 0, fmt.Errorf("gpu: bandwidth probe of %d bytes", size)
	}
	if size/16 > math.MaxUint32 { // the kernel takes a uint32 count of 16-byte reads
		return 0, fmt.Errorf("gpu: bandwidth probe of %d bytes: at most %d", size, 16*math.MaxUint32)
	}
	src, err := dev.Alloc(size)
	if err != nil {
		return 0, err
	}
	defer src.Release()
	out, err := dev.Alloc(4 * groups * threads)
	if err != nil {
		return 0, err
	}
	defer out.Release()
	n4 := binary.LittleEndian.AppendUint32(nil, uint32(size/16))
	ds := []Dispatch{{
		Kernel:  "read_bandwidth",
		Groups:  [3]int{groups, 1, 1},
		Threads: [3]int{threads, 1, 1},
		Buffers: []Binding{{Buf: src}, {Buf: out}, {Bytes: n4}},
	}}
	if err := dev.Run(ctx, ds); err != nil { // warm-up: pages, pipeline
		return 0, fmt.Errorf("gpu: bandwidth probe: %w", err)
	}
	best := time.Duration(1<<63 - 1)
	for i := 0; i < 3; i++ {
		start := time.Now()
		if err := dev.Run(ctx, ds); err != nil {
			return 0, fmt.Errorf("gpu: bandwidth probe: %w", err)
		}
		best = min(best, time.Since(start))
	}
	return float64(size) / best.Seconds() / 1e9, nil
}

// MeasureBandwidth is MeasureBandwidth on the backend's device.
func (b *Backend) MeasureBandwidth(ctx context.Context, size int) (float64, error) {
	return MeasureBandwidth(ctx, b.dev, size)
}
