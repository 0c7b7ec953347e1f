package cpu

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/phi4mac/phi4mac/engine/quant"
	"github.com/phi4mac/phi4mac/engine/weights"
)

// extremeRow returns a row of n values of typ whose integer values are the
// largest the format holds (nibble 15, 6-bit 63) with the largest scales, so
// that the int8 kernels' int16 sums reach their bounds.
func extremeRow(t testing.TB, typ quant.Type, n int, negScale bool) []byte {
	t.Helper()
	rb, err := typ.RowBytes(n)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, rb)
	one := quant.F32ToF16(1)
	switch typ {
	case quant.Q4_0:
		for o := 0; o < rb; o += 18 {
			binary.LittleEndian.PutUint16(b[o:], one)
			for i := 2; i < 18; i++ {
				b[o+i] = 0xff
			}
		}
	case quant.Q4_K:
		for o := 0; o < rb; o += 144 {
			binary.LittleEndian.PutUint16(b[o:], one)
			binary.LittleEndian.PutUint16(b[o+2:], one)
			for i := 4; i < 144; i++ {
				b[o+i] = 0xff // scales and mins 63, values 15
			}
		}
	case quant.Q6_K:
		for o := 0; o < rb; o += 210 {
			for i := 0; i < 192; i++ {
				b[o+i] = 0xff // values 63
			}
			for i := 192; i < 208; i++ {
				b[o+i] = 0x7f
				if negScale {
					b[o+i] = 0x80 // −128
				}
			}
			binary.LittleEndian.PutUint16(b[o+208:], one)
		}
	default:
		t.Fatalf("no extreme rows for %s", typ)
	}
	return b
}

// TestMatMulInt8Edges runs the int8 prefill product end to end on the
// shapes and values at its limits, on the SIMD and pure-Go kernel sets and
// several thread counts, against the product of the dequantised weights
// with the activations quantised as the int8 path quantises them (q8RowRef):
// weights and activations at the int16 bounds of the kernels (all values
// 15 or 63 with the largest scales, activations all ±127), inputs of more
// than 64 blocks (the activation quantisers' chunk) and more than one
// kernel chunk with a remainder, token counts around the 6-token tile,
// rows around the 16-row panel and the 96-row group.
func TestMatMulInt8Edges(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	type actKind int
	const (
		actRandom actKind = iota
		actPlus
		actMinus
		actTiny
	)
	for _, typ := range []quant.Type{quant.Q4_0, quant.Q4_K, quant.Q6_K} {
		ins := []int{2080, 3072} // 65 and 96 blocks of 32
		if typ != quant.Q4_0 {
			ins = []int{2304, 3072}
		}
		for _, in := range ins {
			for _, c := range []struct {
				out, n  int
				extreme bool
				neg     bool
				act     actKind
			}{
				{16, 2, true, false, actPlus},
				{17, 6, true, false, actMinus},
				{97, 7, true, true, actPlus},
				{97, 13, true, true, actMinus},
				{33, 3, false, false, actRandom},
				{192, 12, false, false, actRandom},
				{5, 2, false, false, actTiny},
			} {
				if c.neg && typ != quant.Q6_K {
					continue
				}
				data := make([]byte, 0)
				for r := 0; r < c.out; r++ {
					if c.extreme {
						data = append(data, extremeRow(t, typ, in, c.neg)...)
					} else {
						data = append(data, testRow(t, typ, in, rng)...)
					}
				}
				x := make([]float32, c.n*in)
				for i := range x {
					switch c.act {
					case actRandom:
						x[i] = float32(rng.NormFloat64())
					case actPlus:
						x[i] = 1
					case actMinus:
						x[i] = -1
					case actTiny:
						x[i] = float32(rng.NormFloat64() * 1e-38)
					}
				}
				want := make([]float32, c.n*c.out)
				for j := 0; j < c.n; j++ {
					for r := 0; r < c.out; r++ {
						row := data[r*len(data)/c.out : (r+1)*len(data)/c.out]
						want[j*c.out+r] = q8RowRef(t, typ, row, x[j*in:(j+1)*in])
					}
				}
				for _, opts := range []Options{{Threads: 3}, {Threads: 1}, {Threads: 2, Generic: true}} {
					name := fmt.Sprintf("%s/in=%d/out=%d/n=%d/extreme=%v/neg=%v/act=%d/threads=%d/generic=%v",
						typ, in, c.out, c.n, c.extreme, c.neg, c.act, opts.Threads, opts.Generic)
					b := New(opts)
					w, err := b.wrap(&weights.Tensor{Name: "w", Type: typ, Shape: []int{c.out, in}, Data: data})
					if err != nil {
						t.Fatal(err)
					}
					xb := b.NewBuffer(c.n, in).(*buffer)
					copy(xb.data, x)
					got := b.NewBuffer(c.n, c.out).(*buffer)
					for i := range got.data {
						got.data[i] = float32(math.NaN())
					}
					b.MatMul(got, xb, w)
					for i, g := range got.data {
						e := want[i]
						if math.IsNaN(float64(g)) || math.Abs(float64(g-e)) > 1e-4*(1+math.Abs(float64(e))) {
							t.Fatalf("%s: [%d][%d] = %g, want %g", name, i/c.out, i%c.out, g, e)
						}
					}
					b.Close()
				}
			}
		}
	}
}

// TestMatMulInt8NaN checks that a NaN among the activations (a diverged
// model, a bad input) neither panics nor hangs the int8 product, and leaves
// the other tokens' outputs as they are without it; a NaN in any block
// position (the SIMD abs-max keeps a NaN only in some lanes).
func TestMatMulInt8NaN(t *testing.T) {
	rng := rand.New(rand.NewPCG(53, 54))
	const in, out, n = 512, 20, 3
	for _, typ := range []quant.Type{quant.Q4_0, quant.Q4_K, quant.Q6_K} {
		for _, pos := range []int{0, 8, 100, 300, 511} {
			for _, opts := range []Options{{Threads: 2}, {Threads: 2, Generic: true}} {
				b := New(opts)
				w := testWeight(t, b, typ, out, in, rng)
				x := b.NewBuffer(n, in).(*buffer)
				for i := range x.data {
					x.data[i] = float32(rng.NormFloat64())
				}
				x.data[in+pos] = float32(math.NaN()) // token 1
				got := b.NewBuffer(n, out).(*buffer)
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Fatalf("%s NaN at %d %+v: panic: %v", typ, pos, opts, r)
						}
					}()
					b.MatMul(got, x, w)
				}()
				for _, j := range []int{0, 2} {
					for r := 0; r < out; r++ {
						g, e := got.data[j*out+r], q8RowRef(t, typ, w.row(r), x.data[j*in:(j+1)*in])
						if math.Abs(float64(g-e)) > 1e-4*(1+math.Abs(float64(e))) {
							t.Fatalf("%s NaN at %d of token 1 %+v: token %d row %d = %g, want %g", typ, pos, opts, j, r, g, e)
						}
					}
				}
				b.Close()
			}
		}
	}
}

// TestQuantizeTileMatchesGemv checks the activation tiles byte for byte
// against the matrix-vector path's quantisers, pure Go and SIMD (quantizeQ8
// for Q8_0 blocks, quantizeQ8K for Q8_K: values, scales, sums of 16), on
// rows longer than the quantisers' 64-block chunk, with blocks of zeros and
// the largest magnitude repeated with both signs.
func TestQuantizeTileMatchesGemv(t *testing.T) {
	rng := rand.New(rand.NewPCG(55, 56))
	const in = 3072
	nb := in / 32
	toks := make([][]float32, 5)
	for i := range toks {
		toks[i] = randVec(rng, in)
	}
	clear(toks[1][2048 : 2048+256])
	toks[2][2100], toks[2][2101] = 20, -20
	toks[3][2100], toks[3][2101] = -20, 20
	toks[4][2047] = 20 // the last value of a quantiser chunk
	for _, k := range []bool{false, true} {
		for i, qk := range q8BlockSets() {
			tile := make([]byte, nb*qActBlock)
			quantizeTile(toks, tile, k, qk, new(q8Scratch))
			bs := make([]byte, nb*qBsBlock)
			tileSums16(tile, bs)
			for tok, x := range toks {
				for _, ks := range kernelSets() { // gemv's quantisers, pure Go and SIMD
					var a q8Acts
					ks.quantizeQ8(x, &a)
					ks.quantizeQ8K(x, &a.k)
					for b := 0; b < nb; b++ {
						blk := tile[b*qActBlock:]
						d := math.Float32frombits(binary.LittleEndian.Uint32(blk[qActScales+8*tok:]))
						s := math.Float32frombits(binary.LittleEndian.Uint32(blk[qActScales+8*tok+4:]))
						wantD, wantQ := a.d[b], a.q[32*b:32*b+32]
						if k {
							wantD, wantQ = a.k.d[b/8], a.k.q[32*b:32*b+32]
						}
						sum := 0
						for j, q := range wantQ {
							sum += int(q)
							if int8(blk[32*tok+j]) != q {
								t.Fatalf("k=%v set %d token %d block %d: q[%d] = %d, gemv %d", k, i, tok, b, j, int8(blk[32*tok+j]), q)
							}
						}
						if d != wantD || s != wantD*float32(sum) {
							t.Fatalf("k=%v set %d token %d block %d: d, s = %g, %g; gemv %g, %g", k, i, tok, b, d, s, wantD, wantD*float32(sum))
						}
						if k {
							for h := 0; h < 2; h++ {
								got := int16(binary.LittleEndian.Uint16(bs[b*qBsBlock+4*tok+2*h:]))
								if want := a.k.bsums[2*b+h]; got != want {
									t.Fatalf("set %d token %d block %d: sum of 16 #%d = %d, gemv %d", i, tok, b, h, got, want)
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestMatMulInt8Allocs checks that the int8 product allocates a bounded
// number of objects per call, whatever the numbers of tokens and rows (a
// prefill runs it hundreds of times).
func TestMatMulInt8Allocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(57, 58))
	for _, opts := range []Options{{Threads: 2}, {Threads: 2, Generic: true}} {
		for _, typ := range []quant.Type{quant.Q4_0, quant.Q4_K, quant.Q6_K} {
			b := New(opts)
			var allocs []float64
			for _, sh := range [][2]int{{8, 192}, {96, 1024}} { // both with two tiles and groups or more
				n, out := sh[0], sh[1]
				w := testWeight(t, b, typ, out, 512, rng)
				x, d := b.NewBuffer(n, 512), b.NewBuffer(n, out)
				b.MatMul(d, x, w) // the scratch space grows once
				allocs = append(allocs, testing.AllocsPerRun(5, func() { b.MatMul(d, x, w) }))
			}
			if allocs[1] > allocs[0] || allocs[0] > 16 {
				t.Errorf("%+v %s: %v allocations per product of 8 tokens by 192 rows, %v of 96 by 1024", opts, typ, allocs[0], allocs[1])
			}
			b.Close()
		}
	}
}

// TestQuantizeTileTiny checks the activation tiles of blocks whose largest
// magnitude is so small (below 127/MaxFloat32) that 127/amax overflows to
// infinity: the SIMD and pure-Go quantisers must agree, and no value may
// come out as −128 (vcvtps2dq turns ±Inf into the integer indefinite,
// which packs to −128) or the sums be garbage; the scale d is 0 there.
func TestQuantizeTileTiny(t *testing.T) {
	rng := rand.New(rand.NewPCG(59, 60))
	const in = 512
	nb := in / 32
	toks := make([][]float32, 3)
	for i := range toks {
		toks[i] = randVec(rng, in)
	}
	for j := range toks[1] {
		toks[1][j] = float32(rng.NormFloat64() * 1e-38) // every block tiny
	}
	for j := 256; j < 512; j++ {
		toks[2][j] = float32(rng.NormFloat64() * 1e-39) // the second 256 tiny
	}
	for _, k := range []bool{false, true} {
		var tiles [][]byte
		for _, qk := range q8BlockSets() {
			tile := make([]byte, nb*qActBlock)
			quantizeTile(toks, tile, k, qk, new(q8Scratch))
			tiles = append(tiles, tile)
		}
		for i, tile := range tiles {
			if string(tile) != string(tiles[0]) {
				t.Errorf("k=%v: the SIMD tile differs from the pure-Go one", k)
			}
			for b := 0; b < nb; b++ {
				blk := tile[b*qActBlock:]
				for tok := range toks {
					for j := 0; j < 32; j++ {
						if int8(blk[32*tok+j]) == -128 {
							t.Fatalf("k=%v set %d token %d block %d: value %d quantised to −128", k, i, tok, b, j)
						}
					}
					tiny := tok == 1 || tok == 2 && b >= 8
					d := math.Float32frombits(binary.LittleEndian.Uint32(blk[qActScales+8*tok:]))
					s := math.Float32frombits(binary.LittleEndian.Uint32(blk[qActScales+8*tok+4:]))
					if tiny && (d != 0 || s != 0) {
						t.Fatalf("k=%v set %d token %d block %d: d, s = %g, %g, want 0", k, i, tok, b, d, s)
					}
				}
			}
		}
	}
}

// TestMatMulInt8Inf checks that an infinite activation makes its token's
// outputs non-finite in the int8 product as in the matrix-vector one (a
// diverged model must not look sane in prefill), for every format and
// kernel set.
func TestMatMulInt8Inf(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	const in, out, n = 512, 20, 3
	for _, typ := range []quant.Type{quant.Q4_0, quant.Q4_K, quant.Q6_K} {
		for _, inf := range []float64{math.Inf(1), math.Inf(-1)} {
			for _, opts := range []Options{{Threads: 2}, {Threads: 2, Generic: true}} {
				b := New(opts)
				w := testWeight(t, b, typ, out, in, rng)
				x := b.NewBuffer(n, in).(*buffer)
				for i := range x.data {
					x.data[i] = float32(rng.NormFloat64())
				}
				x.data[in+300] = float32(inf) // token 1
				got := b.NewBuffer(n, out).(*buffer)
				b.MatMul(got, x, w)
				row := b.NewBuffer(1, out).(*buffer)
				b.MatMul(row, b.Rows(x, 1, 1), w)
				for r := 0; r < out; r++ {
					g, e := float64(got.data[out+r]), float64(row.data[r])
					if !math.IsInf(e, 0) && !math.IsNaN(e) {
						t.Fatalf("%s %g %+v: gemv row %d = %g, want non-finite", typ, inf, opts, r, e)
					}
					if !math.IsInf(g, 0) && !math.IsNaN(g) {
						t.Fatalf("%s %g %+v: row %d = %g, gemv %g", typ, inf, opts, r, g, e)
					}
				}
				b.Close()
			}
		}
	}
}
