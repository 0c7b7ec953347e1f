package cpu

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/phi4mac/phi4mac/engine/quant"
)

// testRow returns a random row of n elements in format t, made the way real
// files are: floats rounded or quantised with engine/quant, and for the
// K-quants random blocks with valid half-float scales.
func testRow(t testing.TB, typ quant.Type, n int, rng *rand.Rand) []byte {
	t.Helper()
	src := make([]float32, n)
	for i := range src {
		src[i] = float32(rng.NormFloat64())
	}
	switch typ {
	case quant.F32:
		return append([]byte(nil), f32AsBytes(src)...)
	case quant.F16, quant.BF16:
		b := make([]byte, 2*n)
		for i, v := range src {
			h := quant.F32ToF16(v)
			if typ == quant.BF16 {
				h = quant.F32ToBF16(v)
			}
			binary.LittleEndian.PutUint16(b[2*i:], h)
		}
		return b
	case quant.Q8_0, quant.Q4_0, quant.Q5_0:
		rb, _ := typ.RowBytes(n)
		b := make([]byte, rb)
		if err := quant.Quantize(typ, src, b); err != nil {
			t.Fatal(err)
		}
		return b
	case quant.Q4_K, quant.Q6_K:
		rb, _ := typ.RowBytes(n)
		b := make([]byte, rb)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		bs := typ.BlockBytes()
		for blk := 0; blk < n/256; blk++ {
			o := blk * bs
			scale := func(at int) {
				binary.LittleEndian.PutUint16(b[o+at:], quant.F32ToF16(float32(rng.Float64()*0.01+0.001)))
			}
			if typ == quant.Q4_K {
				scale(0)
				scale(2)
			} else {
				scale(208)
			}
		}
		return b
	}
	t.Fatalf("no test rows for %s", typ)
	return nil
}

func kernelSets() []*kernels {
	g := genericKernels()
	s := simdKernels(g)
	if s == g {
		return []*kernels{g}
	}
	return []*kernels{g, s}
}

func TestDequantMatchesQuant(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, k := range kernelSets() {
		for typ, f := range k.formats {
			for _, n := range sizesFor(typ) {
				row := testRow(t, typ, n, rng)
				want := make([]float32, n)
				if err := quant.Dequantize(typ, row, want); err != nil {
					t.Fatal(err)
				}
				got := make([]float32, n)
				f.dequant(row, got)
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("%s/%s n=%d: element %d = %g, engine/quant says %g", k.name, typ, n, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// sizesFor returns edge-case row lengths valid for a format.
func sizesFor(typ quant.Type) []int {
	switch typ.BlockSize() {
	case 1:
		return []int{1, 7, 8, 9, 31, 32, 33, 64, 100, 256, 1000, 2048}
	case 32:
		return []int{32, 64, 96, 160, 192, 256, 2048, 5632}
	default:
		return []int{256, 512, 768, 2048, 5632 - 5632%256}
	}
}

func TestDotMatchesDequant(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, k := range kernelSets() {
		for typ, f := range k.formats {
			for _, n := range sizesFor(typ) {
				row := testRow(t, typ, n, rng)
				w := make([]float32, n)
				if err := quant.Dequantize(typ, row, w); err != nil {
					t.Fatal(err)
				}
				x := make([]float32, n)
				for i := range x {
					x[i] = float32(rng.NormFloat64())
				}
				var want, mag float64
				for i := range w {
					want += float64(w[i]) * float64(x[i])
					mag += math.Abs(float64(w[i]) * float64(x[i]))
				}
				got := float64(f.dot(row, x))
				if math.Abs(got-want) > 2e-6*mag+1e-30 {
					t.Errorf("%s/%s n=%d: dot %g, want %g (|Δ| %.3g, scale %.3g)", k.name, typ, n, got, want, math.Abs(got-want), mag)
				}
			}
		}
	}
}

func TestVectorKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, k := range kernelSets() {
		for _, n := range []int{1, 5, 8, 13, 16, 17, 64, 128, 131} {
			x := make([]float32, n)
			y := make([]float32, n)
			for i := range x {
				x[i], y[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
			}
			h := make([]byte, 2*n)
			k.f16Row(x, h)
			for i := range x {
				if got, want := binary.LittleEndian.Uint16(h[2*i:]), quant.F32ToF16(x[i]); got != want {
					t.Fatalf("%s: f16Row n=%d [%d]: %#04x, want %#04x", k.name, n, i, got, want)
				}
			}
			y1 := append([]float32(nil), y...)
			k.axpyF32(0.5, x, y1)
			y2 := append([]float32(nil), y...)
			k.axpyF16(0.5, h, y2)
			for i := range y {
				if d := math.Abs(float64(y1[i] - (y[i] + 0.5*x[i]))); d > 1e-6 {
					t.Fatalf("%s: axpyF32 n=%d [%d] off by %g", k.name, n, i, d)
				}
				if d := math.Abs(float64(y2[i] - (y[i] + 0.5*quant.F16ToF32(quant.F32ToF16(x[i]))))); d > 1e-6 {
					t.Fatalf("%s: axpyF16 n=%d [%d] off by %g", k.name, n, i, d)
				}
			}
		}
	}
}

func BenchmarkDot(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 10))
	const rows, n = 256, 4096 // 4096×256 matrix: larger than L2, like a real layer slice
	for _, k := range kernelSets() {
		for _, typ := range []quant.Type{quant.F32, quant.F16, quant.BF16, quant.Q8_0, quant.Q4_0, quant.Q5_0, quant.Q4_K, quant.Q6_K} {
			f := k.formats[typ]
			var data [][]byte
			for r := 0; r < rows; r++ {
				data = append(data, testRow(b, typ, n, rng))
			}
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			b.Run(fmt.Sprintf("%s/%s", k.name, typ), func(b *testing.B) {
				b.SetBytes(int64(len(data[0]) * rows))
				for b.Loop() {
					for _, row := range data {
						f.dot(row, x)
					}
				}
			})
		}
	}
}

// TestQ8Dots checks the Q8-activation dot products against the exact dot
// product of the dequantised weights with the dequantised activations.
func TestQ8Dots(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, k := range kernelSets() {
		for typ, f := range k.formats {
			if f.dotq == nil {
				continue
			}
			for _, n := range sizesFor(typ) {
				row := testRow(t, typ, n, rng)
				w := make([]float32, n)
				if err := quant.Dequantize(typ, row, w); err != nil {
					t.Fatal(err)
				}
				x := make([]float32, n)
				for i := range x {
					x[i] = float32(rng.NormFloat64())
				}
				var a q8Acts
				quantizeActs(typ, x, &a)
				var want, mag float64
				for i := range w {
					var xq float64
					if usesQ8K(typ) {
						xq = float64(a.k.d[i/256]) * float64(a.k.q[i])
					} else {
						xq = float64(a.d[i/32]) * float64(a.q[i])
					}
					want += float64(w[i]) * xq
					mag += math.Abs(float64(w[i]) * xq)
				}
				got := float64(f.dotq(row, &a))
				if math.Abs(got-want) > 2e-6*mag+1e-30 {
					t.Errorf("%s/%s×Q8 n=%d: dot %g, want %g (|Δ| %.3g, scale %.3g)", k.name, typ, n, got, want, math.Abs(got-want), mag)
				}
				// And the quantisation itself stays within half a step.
				for i := range x {
					q, d := a.q, a.d[:]
					step := 32
					if usesQ8K(typ) {
						q, d, step = a.k.q, a.k.d, 256
					}
					scale := float64(d[i/step])
					if e := math.Abs(float64(x[i]) - scale*float64(q[i])); e > 0.51*math.Abs(scale)+1e-3*math.Abs(float64(x[i])) {
						t.Fatalf("%s: activation %d: %g quantised to %d×%g", typ, i, x[i], q[i], scale)
					}
				}
				if usesQ8K(typ) {
					for j, s := range a.k.bsums {
						var want int16
						for _, v := range a.k.q[16*j : 16*j+16] {
							want += int16(v)
						}
						if s != want {
							t.Fatalf("%s: bsums[%d] = %d, want %d", typ, j, s, want)
						}
					}
				}
			}
		}
	}
}

func BenchmarkDotQ8(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 10))
	const rows, n = 256, 4096
	for _, k := range kernelSets() {
		for _, typ := range []quant.Type{quant.Q8_0, quant.Q4_0, quant.Q5_0, quant.Q4_K, quant.Q6_K} {
			f := k.formats[typ]
			var data [][]byte
			for r := 0; r < rows; r++ {
				data = append(data, testRow(b, typ, n, rng))
			}
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			var a q8Acts
			quantizeActs(typ, x, &a)
			b.Run(fmt.Sprintf("%s/%s", k.name, typ), func(b *testing.B) {
				b.SetBytes(int64(len(data[0]) * rows))
				for b.Loop() {
					for _, row := range data {
						f.dotq(row, &a)
					}
				}
			})
		}
	}
}

// BenchmarkDotQ8Rows measures the many-rows kernels, as decode runs them,
// on a matrix that stays in the L2 cache: the compute side of the roofline.
func BenchmarkDotQ8Rows(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 10))
	const rows, n = 128, 4096
	for _, k := range kernelSets() {
		for _, typ := range []quant.Type{quant.Q8_0, quant.Q4_0, quant.Q4_K, quant.Q6_K} {
			f := k.formats[typ]
			if f.dotqRows == nil {
				continue
			}
			var data []byte
			for r := 0; r < rows; r++ {
				data = append(data, testRow(b, typ, n, rng)...)
			}
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			var a q8Acts
			quantizeActs(typ, x, &a)
			dst := make([]float32, rows)
			b.Run(fmt.Sprintf("%s/%s", k.name, typ), func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					f.dotqRows(data, &a, dst)
				}
			})
		}
	}
}

func TestAttentionKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	gk := genericKernels()
	for _, k := range kernelSets() {
		for _, hd := range []int{4, 8, 16, 40, 64, 96, 128} {
			for _, np := range []int{1, 2, 7, 33, 40, 100} {
				for _, g := range []int{1, 2, 3, 4, 6} {
					q := make([]float32, g*hd)
					for i := range q {
						q[i] = float32(rng.NormFloat64())
					}
					kv := make([]float32, hd*np)
					for i := range kv {
						kv[i] = float32(rng.NormFloat64())
					}
					kb := make([]byte, 2*len(kv))
					f32ToF16RowGeneric(kv, kb)
					stride := np + 3 // rows of the score matrix are apart
					got, want := make([]float32, g*stride+16), make([]float32, g*stride)
					for i := range got {
						got[i] = 99
					}
					k.attnScoresF16(q, g, kb, np, 0.125, got[:(g-1)*stride+np], stride)
					for i, v := range got[(g-1)*stride+np:] {
						if v != 99 {
							t.Fatalf("%s scores hd=%d np=%d g=%d: wrote %g past the end (+%d)", k.name, hd, np, g, v, i)
						}
					}
					for h := 0; h < g-1; h++ { // the gaps between score rows stay untouched
						for i, v := range got[h*stride+np : (h+1)*stride] {
							if v != 99 {
								t.Fatalf("%s scores hd=%d np=%d g=%d: wrote %g between rows %d and %d (+%d)", k.name, hd, np, g, v, h, h+1, i)
							}
						}
					}
					for h := 0; h < g; h++ {
						for p := 0; p < np; p++ {
							// The reference: one query, one key at a time.
							want[h*stride+p] = 0.125 * dotF16Generic(kb[2*hd*p:2*hd*(p+1)], q[h*hd:(h+1)*hd])
							if e, w := got[h*stride+p], want[h*stride+p]; math.Abs(float64(e-w)) > 1e-4 {
								t.Fatalf("%s scores hd=%d np=%d g=%d [%d][%d]: %g, want %g", k.name, hd, np, g, h, p, e, w)
							}
						}
					}
					// Guards after each output catch writes past its end.
					const guard = 16
					vo, vw := make([]float32, g*hd+guard), make([]float32, g*hd)
					for i := range vo {
						vo[i] = 99 // must be overwritten, and the guards kept
					}
					k.attnValuesF16(want, stride, kb, np, vo[:g*hd], g)
					for i, v := range vo[g*hd:] {
						if v != 99 {
							t.Fatalf("%s values hd=%d np=%d g=%d: wrote %g past the end (+%d)", k.name, hd, np, g, v, i)
						}
					}
					gk.attnValuesF16(want, stride, kb, np, vw, g)
					for h := 0; h < g; h++ {
						for i := 0; i < hd; i++ {
							var e float64 // one weight at a time, in float64
							for p := 0; p < np; p++ {
								e += float64(want[h*stride+p]) * float64(quant.F16ToF32(binary.LittleEndian.Uint16(kb[2*(hd*p+i):])))
							}
							for name, v := range map[string]float32{k.name: vo[h*hd+i], "go": vw[h*hd+i]} {
								if math.Abs(float64(v)-e) > 1e-4*(1+math.Abs(e)) {
									t.Fatalf("%s values hd=%d np=%d g=%d [%d][%d]: %g, want %g", name, hd, np, g, h, i, v, e)
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestQuantizeQ8Kernels checks every kernel set's Q8_0 activation
// quantiser against the pure-Go one, value for value: random blocks, an
// all-zero block, exact ties at half a step, tiny and huge magnitudes.
func TestQuantizeQ8Kernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	for _, k := range kernelSets() {
		for _, n := range []int{32, 64, 96, 2048, 2080, 5632} {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			clear(x[:32]) // an all-zero block
			if n >= 96 {
				for i := 32; i < 64; i++ { // ties: amax 127 makes the step 1
					x[i] = float32(i-48) + 0.5
				}
				x[32] = 127
				x[64], x[65] = 1e-30, -3e30
			}
			var want, got q8Acts
			quantizeQ8(x, &want)
			k.quantizeQ8(x, &got)
			if !slices.Equal(got.q, want.q) || !slices.Equal(got.d, want.d) || !slices.Equal(got.s, want.s) || !bytes.Equal(got.pairs, want.pairs) {
				t.Fatalf("%s n=%d: quantizeQ8 differs from the pure-Go one", k.name, n)
			}
		}
	}
}

// TestQuantizeQ8KKernels checks every kernel set's Q8_K activation
// quantiser against the pure-Go one, value for value: random blocks, an
// all-zero block, ties, the largest magnitude negative and repeated with
// both signs (the first one sets the scale), and a NaN (passed over).
func TestQuantizeQ8KKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	for _, k := range kernelSets() {
		for _, n := range []int{256, 512, 2048, 5632 - 5632%256} {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			clear(x[:256]) // an all-zero block
			if n >= 512 {
				x[300], x[400] = -5, 5  // the first of ±5 sets the scale
				x[301] = 5 * 63.5 / 127 // a tie
				x[302] = float32(math.NaN())
			}
			var want, got q8KActs
			quantizeQ8K(x, &want)
			k.quantizeQ8K(x, &got)
			if n >= 512 { // a NaN's value, and so its 16-value sum, is undefined
				want.q[302], got.q[302] = 0, 0
				want.bsums[302/16], got.bsums[302/16] = 0, 0
			}
			if !slices.Equal(got.q, want.q) || !slices.Equal(got.d, want.d) || !slices.Equal(got.bsums, want.bsums) {
				t.Fatalf("%s n=%d: quantizeQ8K differs from the pure-Go one: d %v vs %v", k.name, n, got.d, want.d)
			}
		}
	}
}

func TestMaxF32(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	for _, k := range kernelSets() {
		for _, n := range []int{0, 1, 7, 8, 9, 16, 17, 24, 33, 100} {
			for at := 0; at < max(n, 1); at += max(1, n/5) {
				x := make([]float32, n)
				for i := range x {
					x[i] = -float32(rng.Float64()) - 1
				}
				want := float32(math.Inf(-1))
				if n > 0 {
					x[at] = 3
					want = 3
				}
				if got := k.maxF32(x); got != want {
					t.Fatalf("%s n=%d max at %d: %g", k.name, n, at, got)
				}
			}
		}
	}
}

// TestDotF16Rows checks the many-rows half-float kernels against one row
// at a time, for row counts around the 4-row step, strides past the row
// and lengths with and without the 16-value unit.
func TestDotF16Rows(t *testing.T) {
	rng := rand.New(rand.NewPCG(47, 48))
	for _, k := range kernelSets() {
		for _, n := range []int{8, 16, 48, 2048} {
			for _, rows := range []int{1, 3, 4, 5, 9} {
				stride := 2*n + 6
				w := make([]byte, rows*stride)
				for r := 0; r < rows; r++ {
					f32ToF16RowGeneric(randVec(rng, n), w[r*stride:r*stride+2*n])
				}
				x := randVec(rng, n)
				got := make([]float32, rows+1)
				got[rows] = 99
				k.dotF16Rows(w, stride, x, got[:rows])
				if got[rows] != 99 {
					t.Fatalf("%s n=%d rows=%d: wrote past the end", k.name, n, rows)
				}
				for r := 0; r < rows; r++ {
					var want, mag float64
					for i := 0; i < n; i++ {
						p := float64(quant.F16ToF32(binary.LittleEndian.Uint16(w[r*stride+2*i:]))) * float64(x[i])
						want, mag = want+p, mag+math.Abs(p)
					}
					if math.Abs(float64(got[r])-want) > 1e-6*mag+1e-30 {
						t.Fatalf("%s n=%d rows=%d: row %d = %g, want %g", k.name, n, rows, r, got[r], want)
					}
				}
			}
		}
	}
}

func randVec(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// TestQuantizeQ8K pins llama.cpp's Q8_K rounding on hand-checked values:
// the scale comes from the value of largest magnitude, with its sign
// flipped (so that value becomes −127), halves round to even, and an
// all-zero block has scale 0.
func TestQuantizeQ8K(t *testing.T) {
	x := make([]float32, 512)
	x[0], x[1], x[2], x[3] = 2, -1, 0.5*2/127, 1.5*2/127 // ±0.5 and 1.5 steps of 2/127
	x[4] = -2                                            // the same magnitude as x[0], later: x[0] sets the scale
	var a q8KActs
	quantizeQ8K(x, &a)
	if a.d[0] != 1/(-127/float32(2)) || a.d[1] != 0 {
		t.Fatalf("scales %v", a.d)
	}
	want := []int8{-127, 64, 0, -2, 127}
	for i, w := range want {
		if a.q[i] != w {
			t.Errorf("q[%d] = %d, want %d (x = %g)", i, a.q[i], w, x[i])
		}
	}
	if a.bsums[0] != -127+64+0-2+127 || a.bsums[16] != 0 {
		t.Errorf("bsums %v", a.bsums)
	}
}

// quantizeActs quantises x the way products with weights of type typ
// take it.
func quantizeActs(typ quant.Type, x []float32, a *q8Acts) {
	if usesQ8K(typ) {
		quantizeQ8K(x, &a.k)
		return
	}
	quantizeQ8(x, a)
}

// TestQ8Rows checks the many-rows kernels against the one-row ones.
func TestQ8Rows(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, k := range kernelSets() {
		for typ, f := range k.formats {
			if f.dotqRows == nil {
				continue
			}
			for _, n := range sizesFor(typ) {
				for _, rows := range []int{1, 2, 5} {
					var w []byte
					for r := 0; r < rows; r++ {
						w = append(w, testRow(t, typ, n, rng)...)
					}
					x := make([]float32, n)
					for i := range x {
						x[i] = float32(rng.NormFloat64())
					}
					var a q8Acts
					quantizeActs(typ, x, &a)
					got := make([]float32, rows)
					f.dotqRows(w, &a, got)
					rb := len(w) / rows
					for r := range got {
						if want := f.dotq(w[r*rb:(r+1)*rb], &a); got[r] != want {
							t.Errorf("%s/%s n=%d rows=%d: row %d = %g, one-row kernel %g", k.name, typ, n, rows, r, got[r], want)
						}
					}
				}
			}
		}
	}
}

// TestQ8ActsBounds checks that the Go wrappers of the assembly
// Q8-activation kernels bounds-check the activations too, not only the
// weights: given activations shorter than the weight row needs, they must
// panic as Go indexing does rather than let the assembly read past them.
// Each case cuts one activation array by one element, keeping its
// capacity. (The pure-Go kernels are memory-safe by construction.)
func TestQ8ActsBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	cases := []struct {
		typ  quant.Type
		n    int
		name string
		cut  func(a *q8Acts)
	}{
		{quant.Q8_0, 128, "q", func(a *q8Acts) { a.q = a.q[:len(a.q)-1] }},
		{quant.Q4_0, 96, "q (odd blocks)", func(a *q8Acts) { a.q = a.q[:len(a.q)-1] }},
		{quant.Q4_0, 96, "s (odd blocks)", func(a *q8Acts) { a.s = a.s[:len(a.s)-1] }},
		{quant.Q4_0, 128, "pairs", func(a *q8Acts) { a.pairs = a.pairs[:len(a.pairs)-1] }},
		{quant.Q4_0, 128, "s", func(a *q8Acts) { a.s = a.s[:len(a.s)-1] }},
		{quant.Q4_K, 512, "k.q", func(a *q8Acts) { a.k.q = a.k.q[:len(a.k.q)-1] }},
		{quant.Q4_K, 512, "k.bsums", func(a *q8Acts) { a.k.bsums = a.k.bsums[:len(a.k.bsums)-1] }},
		{quant.Q6_K, 512, "k.q", func(a *q8Acts) { a.k.q = a.k.q[:len(a.k.q)-1] }},
		{quant.Q6_K, 512, "k.bsums", func(a *q8Acts) { a.k.bsums = a.k.bsums[:len(a.k.bsums)-1] }},
	}
	for _, k := range kernelSets() {
		if k.name == "go" {
			continue
		}
		for _, c := range cases {
			f := k.formats[c.typ]
			w := testRow(t, c.typ, c.n, rng)
			w = append(w, w...) // two rows
			x := make([]float32, c.n)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			kernels := map[string]func(a *q8Acts){
				"dotq": func(a *q8Acts) { f.dotq(w[:len(w)/2], a) },
			}
			if f.dotqRows != nil {
				kernels["dotqRows"] = func(a *q8Acts) { f.dotqRows(w, a, make([]float32, 2)) }
			}
			for name, run := range kernels {
				var a q8Acts
				quantizeActs(c.typ, x, &a)
				c.cut(&a)
				func() {
					defer func() {
						if recover() == nil {
							t.Errorf("%s/%s %s: %s one element short was read without a panic", k.name, c.typ, name, c.name)
						}
					}()
					run(&a)
				}()
			}
		}
	}
}

// TestAttentionKernelsStride checks that the attention kernels of every
// set refuse a negative row stride of the score matrix for more than one
// query head (rows before the start of the slice) with a panic, as Go
// indexing does, instead of reading or writing before the slice. The
// slices given lie inside larger arrays, so a kernel that ignores the
// check touches memory of the test, not of the heap.
func TestAttentionKernelsStride(t *testing.T) {
	const hd, np, g, stride = 16, 4, 2, -2
	q := make([]float32, g*hd)
	for i := range q {
		q[i] = 1
	}
	kv := make([]byte, 2*hd*np)
	for i := 0; i < len(kv); i += 2 {
		binary.LittleEndian.PutUint16(kv[i:], quant.F32ToF16(1))
	}
	for _, k := range kernelSets() {
		scores := make([]float32, 32)
		out := scores[8 : 8+(g-1)*stride+np] // row 1 would start 2 before it
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: scores with stride %d: no panic (wrote before the slice: %v)", k.name, stride, scores[:8])
				}
			}()
			k.attnScoresF16(q, g, kv, np, 1, out, stride)
		}()
		w := make([]float32, 32)
		o := make([]float32, g*hd)
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: values with stride %d: no panic", k.name, stride)
				}
			}()
			k.attnValuesF16(w[8:8+(g-1)*stride+np], stride, kv, np, o, g)
		}()
	}
}
