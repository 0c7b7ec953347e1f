package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/quant"
	"github.com/phi4mac/phi4mac/engine/weights"
)

func testWeight(t testing.TB, b *Backend, typ quant.Type, out, in int, rng *rand.Rand) *Weight {
	var data []byte
	for r := 0; r < out; r++ {
		data = append(data, testRow(t, typ, in, rng)...)
	}
	w, err := b.wrap(&weights.Tensor{Name: "w", Type: typ, Shape: []int{out, in}, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestMatMulBatched checks the batched path (prefill), which keeps f32
// activations in both modes, against exact row-by-row matrix-vector
// products on edge shapes.
func TestMatMulBatched(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	ref := New(Options{Threads: 1, Exact: true})
	defer ref.Close()
	for _, exact := range []bool{true, false} {
		b := New(Options{Threads: 2, Exact: exact})
		for _, typ := range []quant.Type{quant.F32, quant.F16, quant.Q8_0, quant.Q4_K} {
			ins := []int{256, 1056, 12}
			switch typ.BlockSize() {
			case 32:
				ins = []int{256, 1056}
			case 256:
				ins = []int{256, 768}
			}
			for _, in := range ins {
				for _, out := range []int{1, 5, 16, 37} {
					for _, n := range []int{2, 3, 4, 7} {
						w := testWeight(t, b, typ, out, in, rng)
						x := b.NewBuffer(n, in).(*buffer)
						for i := range x.data {
							x.data[i] = float32(rng.NormFloat64())
						}
						got := b.NewBuffer(n, out).(*buffer)
						b.MatMul(got, x, w)
						for j := 0; j < n; j++ {
							want := ref.NewBuffer(1, out).(*buffer)
							ref.MatMul(want, b.Rows(x, j, 1), w)
							for r := 0; r < out; r++ {
								g, e := got.data[j*out+r], want.data[r]
								tol := 1e-4 * (1 + math.Abs(float64(e)))
								if math.Abs(float64(g-e)) > tol {
									t.Fatalf("exact=%v %s in=%d out=%d n=%d: [%d][%d] = %g, row by row %g", exact, typ, in, out, n, j, r, g, e)
								}
							}
						}
					}
				}
			}
		}
		b.Close()
	}
}

// BenchmarkGEMM measures the prefill matrix product (one thread): 96
// tokens through a 1024×2048 matrix.
func BenchmarkGEMM(b *testing.B) {
	rng := rand.New(rand.NewPCG(19, 20))
	const out, in, n = 1024, 2048, 96
	for _, typ := range []quant.Type{quant.F32, quant.F16, quant.Q8_0, quant.Q4_0, quant.Q4_K} {
		be := New(Options{Threads: 1})
		w := testWeight(b, be, typ, out, in, rng)
		x := be.NewBuffer(n, in).(*buffer)
		for i := range x.data {
			x.data[i] = float32(rng.NormFloat64())
		}
		d := be.NewBuffer(n, out)
		b.Run(fmt.Sprint(typ), func(b *testing.B) {
			for b.Loop() {
				be.MatMul(d, x, w)
			}
			b.ReportMetric(2*out*in*n*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		be.Close()
	}
}

var _ engine.Buffer = (*buffer)(nil)

// BenchmarkDequant measures the row dequantisers the prefill path runs
// once per weight row (a 5632-value row).
func BenchmarkDequant(b *testing.B) {
	rng := rand.New(rand.NewPCG(21, 22))
	const in = 5632
	k := simdKernels(genericKernels())
	for _, typ := range []quant.Type{quant.F16, quant.Q8_0, quant.Q4_0, quant.Q4_K, quant.Q6_K} {
		row := testRow(b, typ, in, rng)
		dst := make([]float32, in)
		f := k.formats[typ]
		b.Run(fmt.Sprint(typ), func(b *testing.B) {
			for b.Loop() {
				f.dequant(row, dst)
			}
			b.SetBytes(4 * in)
		})
	}
}
