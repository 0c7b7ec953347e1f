package cpu

import (
	"encoding/binary"
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

// TestMatMulBatched checks the batched path (prefill) against row-by-row
// matrix-vector products on edge shapes: with Exact, against the exact
// products (float32 activations); otherwise Q4_0, Q4_K and Q6_K, which then
// run on Q8 activations, against the non-exact row-by-row (pure-Go)
// products, and the other formats (float32 activations) against the exact
// ones. The pure-Go kernels are checked the same way.
func TestMatMulBatched(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	ref := New(Options{Threads: 1, Exact: true})
	defer ref.Close()
	refQ8 := New(Options{Threads: 1, Generic: true}) // the pure-Go Q8 products define the result
	defer refQ8.Close()
	for _, opts := range []Options{{Exact: true}, {}, {Generic: true}} {
		opts.Threads = 2
		b := New(opts)
		for _, typ := range []quant.Type{quant.F32, quant.F16, quant.Q8_0, quant.Q4_0, quant.Q4_K, quant.Q6_K} {
			ins := []int{256, 1056, 12}
			switch typ.BlockSize() {
			case 32:
				ins = []int{256, 1056}
			case 256:
				ins = []int{256, 768}
			}
			rowRef, int8Path := ref, !opts.Exact && (typ == quant.Q4_0 || typ == quant.Q4_K || typ == quant.Q6_K)
			if int8Path {
				rowRef = refQ8
			}
			outs, ns := []int{1, 5, 16, 37}, []int{2, 3, 4, 7}
			if int8Path {
				outs = append(outs, qGroup+17) // more than one group of rows
				ns = append(ns, 2*gemmToks+1)
			}
			for _, in := range ins {
				for _, out := range outs {
					for _, n := range ns {
						w := testWeight(t, b, typ, out, in, rng)
						wRef, err := rowRef.wrap(&weights.Tensor{Name: "w", Type: typ, Shape: w.shape, Data: w.data})
						if err != nil {
							t.Fatal(err)
						}
						x := b.NewBuffer(n, in).(*buffer)
						for i := range x.data {
							x.data[i] = float32(rng.NormFloat64())
						}
						got := b.NewBuffer(n, out).(*buffer)
						b.MatMul(got, x, w)
						for j := 0; j < n; j++ {
							want := rowRef.NewBuffer(1, out).(*buffer)
							rowRef.MatMul(want, b.Rows(x, j, 1), wRef)
							if int8Path {
								// And the same from the dequantised weights and activations.
								for r := range want.data {
									if e, e2 := want.data[r], q8RowRef(t, typ, w.row(r), x.data[j*in:(j+1)*in]); math.Abs(float64(e-e2)) > 1e-4*(1+math.Abs(float64(e))) {
										t.Fatalf("%s in=%d out=%d: row %d reference %g, from dequantised values %g", typ, in, out, r, e, e2)
									}
								}
							}
							for r := 0; r < out; r++ {
								g, e := got.data[j*out+r], want.data[r]
								tol := 1e-4 * (1 + math.Abs(float64(e)))
								if math.Abs(float64(g-e)) > tol {
									t.Fatalf("%+v %s in=%d out=%d n=%d: [%d][%d] = %g, row by row %g", opts, typ, in, out, n, j, r, g, e)
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

// q8RowRef returns the product of a weight row with x quantised as the
// int8 path quantises it (quantizeTile), from the dequantised weights and
// activations, summed in float64.
func q8RowRef(t *testing.T, typ quant.Type, row []byte, x []float32) float32 {
	t.Helper()
	nb := len(x) / 32
	tile := make([]byte, nb*qActBlock)
	quantizeTile([][]float32{x}, tile, usesQ8K(typ), &q8BlocksGeneric, new(q8Scratch))
	w := make([]float32, len(x))
	genericKernels().formats[typ].dequant(row, w)
	var sum float64
	for b := 0; b < nb; b++ {
		blk := tile[b*qActBlock:]
		d := math.Float32frombits(binary.LittleEndian.Uint32(blk[qActScales:]))
		for k := 0; k < 32; k++ {
			sum += float64(w[32*b+k]) * float64(d) * float64(int8(blk[k]))
		}
	}
	return float32(sum)
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
