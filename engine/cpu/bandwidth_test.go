package cpu

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/quant"
	"github.com/phi4mac/phi4mac/engine/weights"
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

// BenchmarkGemvMemory runs the decode matrix-vector product on a 256 MiB
// weight matrix, far past the caches, with 2 threads: its MB/s against
// BenchmarkBandwidth's is how close each format's kernel comes to the
// memory roofline (what decode speed depends on).
func BenchmarkGemvMemory(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	const in, size = 4096, 256 << 20
	be := New(Options{Threads: 2})
	defer be.Close()
	for _, typ := range []quant.Type{quant.F16, quant.Q8_0, quant.Q4_0, quant.Q4_K, quant.Q6_K} {
		rb, _ := typ.RowBytes(in)
		row := testRow(b, typ, in, rng)
		out := size / rb
		data := make([]byte, 0, out*rb)
		for r := 0; r < out; r++ {
			data = append(data, row...) // the same row: contents do not matter to speed
		}
		w, err := be.wrap(&weights.Tensor{Name: "w", Type: typ, Shape: []int{out, in}, Data: data})
		if err != nil {
			b.Fatal(err)
		}
		x := be.NewBuffer(1, in).(*buffer)
		for i := range x.data {
			x.data[i] = float32(rng.NormFloat64())
		}
		dst := be.NewBuffer(1, out)
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				be.MatMul(dst, x, w)
			}
		})
	}
}
