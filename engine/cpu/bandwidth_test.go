package cpu

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/phi4mac/phi4mac/engine"
)

// BenchmarkBandwidth measures how fast this machine streams memory into the
// CPU: a 1 GiB float32 array is summed by 1 and 2 threads with the same
// dot-product kernel the F32 matrix-vector product uses. Its MB/s is the
// ceiling for memory-bound decoding.
func BenchmarkBandwidth(b *testing.B) {
	const n = 1 << 28 // 1 GiB of float32
	data := make([]float32, n)
	for i := range data {
		data[i] = 1
	}
	ones := make([]float32, 1<<16)
	for i := range ones {
		ones[i] = 1
	}
	k := simdKernels(genericKernels())
	for _, threads := range []int{1, 2} {
		p := newPool(threads)
		b.Run(fmt.Sprintf("%s/threads=%d", k.name, threads), func(b *testing.B) {
			b.SetBytes(4 * n)
			const chunk = 1 << 16
			for b.Loop() {
				p.parallel(n/chunk, 64, func(_, lo, hi int) {
					for c := lo; c < hi; c++ {
						k.dotF32(data[c*chunk:(c+1)*chunk], ones)
					}
				})
			}
		})
		p.close()
	}
}

func TestMeasureBandwidth(t *testing.T) {
	b := New(Options{Threads: 2})
	defer b.Close()
	gbs, err := b.MeasureBandwidth(context.Background(), 8<<20)
	if err != nil || gbs <= 0 || math.IsInf(gbs, 0) {
		t.Fatalf("bandwidth %v GB/s, %v", gbs, err)
	}
	if _, err := b.MeasureBandwidth(context.Background(), 1000); err == nil {
		t.Error("a probe smaller than one task was accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.MeasureBandwidth(ctx, 8<<20); err == nil {
		t.Error("a cancelled probe returned no error")
	}
}

// TestMeasureBandwidthTooLarge checks that a probe larger than the memory
// available (bench --roofline-mb is user input) is refused with an error
// wrapping engine.ErrNoMemory instead of allocated.
func TestMeasureBandwidthTooLarge(t *testing.T) {
	avail, ok := engine.AvailableMemory()
	if !ok {
		t.Skip("available memory unknown on this system: nothing to check against")
	}
	b := New(Options{Threads: 1})
	defer b.Close()
	for _, size := range []int{1 << 50, math.MaxInt} {
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("probe of %d bytes (%d available) panicked: %v", size, avail, p)
				}
			}()
			if _, err := b.MeasureBandwidth(context.Background(), size); !errors.Is(err, engine.ErrNoMemory) {
				t.Errorf("probe of %d bytes with %d available: %v, want ErrNoMemory", size, avail, err)
			}
		}()
	}
}
