package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/phi4mac/phi4mac/engine/quant"
)

// TestMatMulInt8NaNPropagates checks that a NaN activation makes every
// output of its token NaN on the int8 paths whose activations are
// quantised in blocks of 32 with a half-float scale (Q8_0 form), decode
// (one token, gemv) and prefill (gemmq) alike, whatever the NaN's place
// in its block and whichever kernel set runs, as the pure-Go quantisers
// do (the scale of its block is NaN). An abs-max that passed the NaN
// over would turn it into a finite −128·d and wrapped integer sums: a
// diverged model would go on with plausible-looking garbage, and the two
// kernel sets would disagree.
func TestMatMulInt8NaNPropagates(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 72))
	const in, out = 512, 24
	for _, typ := range []quant.Type{quant.Q4_0, quant.Q5_0, quant.Q8_0} {
		for _, generic := range []bool{false, true} {
			b := New(Options{Threads: 2, Generic: generic})
			w := testWeight(t, b, typ, out, in, rng)
			for _, n := range []int{1, 3} {
				for _, pos := range []int{0, 5, 8, 13, 23, 30, 31, 100, 511} {
					t.Run(fmt.Sprintf("%s/%s/n%d/nan-at-%d", typ, b.Kernels(), n, pos), func(t *testing.T) {
						x := b.NewBuffer(n, in).(*buffer)
						for i := range x.data {
							x.data[i] = float32(rng.NormFloat64())
						}
						tok := n / 2
						x.data[tok*in+pos] = float32(math.NaN())
						got := b.NewBuffer(n, out).(*buffer)
						b.MatMul(got, x, w)
						for r := 0; r < out; r++ {
							if g := got.data[tok*out+r]; !math.IsNaN(float64(g)) {
								t.Fatalf("row %d of the NaN token = %g, want NaN", r, g)
							}
						}
					})
				}
			}
			b.Close()
		}
	}
}

// TestQuantizeQ8KernelsNaN checks the Q8_0-block activation quantisers
// with a NaN at each place of a block: that block's scale and scaled sum
// are NaN in every kernel set, and the other blocks are as without it.
func TestQuantizeQ8KernelsNaN(t *testing.T) {
	rng := rand.New(rand.NewPCG(73, 74))
	x := make([]float32, 96)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for _, k := range kernelSets() {
		var clean q8Acts
		k.quantizeQ8(x, &clean)
		for pos := 32; pos < 64; pos++ {
			y := append([]float32(nil), x...)
			y[pos] = float32(math.NaN())
			var a q8Acts
			k.quantizeQ8(y, &a)
			if !math.IsNaN(float64(a.d[1])) || !math.IsNaN(float64(a.s[1])) {
				t.Fatalf("%s NaN at %d: block scale %g, scaled sum %g; want NaN", k.name, pos, a.d[1], a.s[1])
			}
			for _, b := range []int{0, 2} {
				if a.d[b] != clean.d[b] || a.s[b] != clean.s[b] || string(i8Bytes(a.q[32*b:32*b+32])) != string(i8Bytes(clean.q[32*b:32*b+32])) {
					t.Fatalf("%s NaN at %d: block %d changed", k.name, pos, b)
				}
			}
		}
	}
}

func i8Bytes(q []int8) []byte {
	b := make([]byte, len(q))
	for i, v := range q {
		b[i] = byte(v)
	}
	return b
}
