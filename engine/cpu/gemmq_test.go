package cpu

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/phi4mac/phi4mac/engine/quant"
)

// randomGemmqInputs returns a random panel and activation tile of nb
// blocks. With integer set, every scale is 1 and every offset 0, so the
// outputs are the integer dot products themselves (exact in float32).
func randomGemmqInputs(rng *rand.Rand, nb int, integer bool) (w, a []byte) {
	w = make([]byte, nb*qPanelBlock)
	a = make([]byte, nb*qActBlock)
	for b := 0; b < nb; b++ {
		p := w[b*qPanelBlock:]
		for i := 0; i < qPanelDW; i++ {
			p[i] = byte(rng.IntN(16))
		}
		x := a[b*qActBlock:]
		for i := 0; i < qActScales; i++ {
			x[i] = byte(int8(rng.IntN(255) - 127))
		}
		for r := 0; r < gemmPanel; r++ {
			dw, dm := float32(1), float32(0)
			if !integer {
				dw, dm = float32(rng.NormFloat64()), float32(rng.NormFloat64())
			}
			putScales(p, r, dw, dm)
		}
		for t := 0; t < gemmToks; t++ {
			da, sa := float32(1), float32(0)
			if !integer {
				da, sa = float32(rng.Float64()/100), float32(rng.NormFloat64())
			}
			binary.LittleEndian.PutUint32(x[qActScales+8*t:], math.Float32bits(da))
			binary.LittleEndian.PutUint32(x[qActScales+8*t+4:], math.Float32bits(sa))
		}
	}
	return w, a
}

// TestGemmqKernel checks the SIMD micro-kernel against the pure-Go one:
// exactly on integer sums (including the extreme ±127·15 products), to
// float rounding with random scales; and the pure-Go one against a plain
// dot product.
func TestGemmqKernel(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	fast := gemmqKernel(simdKernels(genericKernels()))
	for _, nb := range []int{1, 2, 7, 16, 24} {
		for _, integer := range []bool{true, false} {
			w, a := randomGemmqInputs(rng, nb, integer)
			if integer && nb == 2 { // the largest sums: 15 × ±127 everywhere
				for i := 0; i < qPanelDW; i++ {
					w[i], w[qPanelBlock+i] = 15, 15
				}
				for i := 0; i < qActScales; i++ {
					a[i], a[qActBlock+i] = byte(0x81), 127 // -127, 127
				}
			}
			want := sameKernelOutputs(t, nb, integer,
				func(o *[qTile]float32) { fast(w, a, nil, nb, o) },
				func(o *[qTile]float32) { gemmq16x6Generic(w, a, nil, nb, o) })
			if !integer {
				continue
			}
			for tok := 0; tok < gemmToks; tok++ {
				for r := 0; r < gemmPanel; r++ {
					s := tok*gemmPanel + r // the initial value
					for b := 0; b < nb; b++ {
						for k := 0; k < 32; k++ {
							wq := w[b*qPanelBlock+64*(k/4)+panelOffset(r)+k%4]
							s += int(wq) * int(int8(a[b*qActBlock+32*tok+k]))
						}
					}
					if want[tok*gemmPanel+r] != float32(s) {
						t.Fatalf("nb=%d: pure Go out[%d][%d] = %g, want %d", nb, tok, r, want[tok*gemmPanel+r], s)
					}
				}
			}
		}
	}
}

// TestGemmq6Kernel checks the SIMD Q6_K micro-kernel against the pure-Go
// one: exactly on integer sums (unit scales d, small sc), and to float
// rounding on packed random Q6_K rows and quantised activations; and the
// pure-Go one against a plain dot product of the integers.
func TestGemmq6Kernel(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	fast := gemmq6Kernel(simdKernels(genericKernels()))
	for _, nb := range []int{8, 16, 24} {
		for _, integer := range []bool{true, false} {
			w := make([]byte, nb*q6PanelBlock)
			a := make([]byte, nb*qActBlock)
			toks := make([][]float32, gemmToks)
			for i := range toks {
				toks[i] = make([]float32, 32*nb)
				for j := range toks[i] {
					toks[i][j] = float32(rng.NormFloat64())
				}
			}
			quantizeTile(toks, a, true, &q8BlocksGeneric, new(q8Scratch))
			if integer {
				for b := 0; b < nb; b++ {
					p := w[b*q6PanelBlock:]
					for i := 0; i < q6PanelSC; i++ {
						p[i] = byte(rng.IntN(64))
					}
					if b == 0 {
						for i := 0; i < q6PanelSC; i++ {
							p[i] = 63 // the largest int16 pair sums
						}
					}
					for r := 0; r < gemmPanel; r++ {
						o := panelOffset(r)
						for h := 0; h < 2; h++ {
							sc := int16(rng.IntN(5) - 2)
							binary.LittleEndian.PutUint16(p[q6PanelSC+64*h+o:], uint16(sc))
							binary.LittleEndian.PutUint16(p[q6PanelSC+64*h+o+2:], uint16(sc))
							binary.LittleEndian.PutUint16(p[q6PanelSCP+o+2*h:], uint16(32*sc))
						}
						binary.LittleEndian.PutUint32(p[q6PanelD+4*r:], math.Float32bits(1))
					}
					x := a[b*qActBlock:]
					for tok := 0; tok < gemmToks; tok++ {
						binary.LittleEndian.PutUint32(x[qActScales+8*tok:], math.Float32bits(1))
						if b == 0 { // with the 63s, pair sums of ±4·63·127
							for k := 0; k < 32; k++ {
								x[32*tok+k] = byte(int8(127 - 254*(tok%2)))
							}
						}
					}
				}
			} else {
				var rows [gemmPanel][]byte
				for r := range rows {
					rows[r] = testRow(t, quant.Q6_K, 32*nb, rng)
				}
				packerFor(quant.Q6_K, genericKernels())(&rows, nb, w)
			}
			bs := make([]byte, nb*qBsBlock)
			tileSums16(a, bs)
			want := sameKernelOutputs(t, nb, integer,
				func(o *[qTile]float32) { fast(w, a, bs, nb, o) },
				func(o *[qTile]float32) { gemmq6Generic(w, a, bs, nb, o) })
			if !integer {
				continue
			}
			for tok := 0; tok < gemmToks; tok++ {
				for r := 0; r < gemmPanel; r++ {
					s := tok*gemmPanel + r // the initial value
					for b := 0; b < nb; b++ {
						p := w[b*q6PanelBlock:]
						for k := 0; k < 32; k++ {
							q := int(p[64*(k/4)+panelOffset(r)+k%4]) - 32
							sc := int(int16(binary.LittleEndian.Uint16(p[q6PanelSC+64*(k/16)+panelOffset(r):])))
							s += sc * q * int(int8(a[b*qActBlock+32*tok+k]))
						}
					}
					if want[tok*gemmPanel+r] != float32(s) {
						t.Fatalf("nb=%d: pure Go out[%d][%d] = %g, want %d", nb, tok, r, want[tok*gemmPanel+r], s)
					}
				}
			}
		}
	}
}

// TestQuantizeTile checks that the activation tiles hold exactly what
// quantizeQ8 makes of each token, and zeros past the last token.
func TestQuantizeTile(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	const in = 96
	nb := in / 32
	for _, n := range []int{1, 4, 6} {
		toks := make([][]float32, n)
		for i := range toks {
			toks[i] = make([]float32, in)
			for j := range toks[i] {
				toks[i][j] = float32(rng.NormFloat64())
			}
		}
		toks[0][5] = 0 // and a block of zeros
		clear(toks[n-1][32:64])
		for _, qk := range q8BlockSets() {
			dst := make([]byte, nb*qActBlock)
			for i := range dst {
				dst[i] = 0xff
			}
			quantizeTile(toks, dst, false, qk, new(q8Scratch))
			for tok := 0; tok < gemmToks; tok++ {
				var a q8Acts
				if tok < n {
					quantizeQ8(toks[tok], &a)
				} else {
					quantizeQ8(make([]float32, in), &a)
				}
				for b := 0; b < nb; b++ {
					x := dst[b*qActBlock:]
					for k := 0; k < 32; k++ {
						if int8(x[32*tok+k]) != a.q[32*b+k] {
							t.Fatalf("n=%d token %d block %d: q[%d] = %d, quantizeQ8 %d", n, tok, b, k, int8(x[32*tok+k]), a.q[32*b+k])
						}
					}
					da := math.Float32frombits(binary.LittleEndian.Uint32(x[qActScales+8*tok:]))
					sa := math.Float32frombits(binary.LittleEndian.Uint32(x[qActScales+8*tok+4:]))
					if da != a.d[b] || sa != a.s[b] {
						t.Fatalf("n=%d token %d block %d: d, s = %g, %g; quantizeQ8 %g, %g", n, tok, b, da, sa, a.d[b], a.s[b])
					}
				}
			}
		}
	}
}

// q8BlockSets returns the pure-Go activation quantisers and those of the
// SIMD kernel set.
func q8BlockSets() []*q8BlockKernels {
	return []*q8BlockKernels{&q8BlocksGeneric, q8BlocksFor(simdKernels(genericKernels()))}
}

// TestQuantizeTileQ8K checks the Q8_K form of the activation tiles: per
// 256 values the first of largest magnitude becomes -127 (the scale takes
// its sign; one of the opposite sign then 127), every value is within half a step of d·q, and s = d·Σq.
func TestQuantizeTileQ8K(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	const in = 512
	nb := in / 32
	toks := make([][]float32, 5)
	for i := range toks {
		toks[i] = randVec(rng, in)
	}
	clear(toks[2][256:]) // a block of zeros
	toks[3][300] = -10   // the largest magnitude twice: the first sets the sign
	toks[3][301] = 10
	toks[4][7] = 10
	toks[4][100] = -10
	var dst []byte
	for i, qk := range q8BlockSets() {
		d := make([]byte, nb*qActBlock)
		quantizeTile(toks, d, true, qk, new(q8Scratch))
		if i > 0 && string(d) != string(dst) {
			t.Fatal("SIMD Q8_K tile differs from the pure-Go one")
		}
		dst = d
	}
	for tok := 0; tok < gemmToks; tok++ {
		for kb := 0; kb < in/256; kb++ {
			var x []float32
			if tok < len(toks) {
				x = toks[tok][256*kb : 256*kb+256]
			} else {
				x = make([]float32, 256)
			}
			var amax float32
			for _, v := range x {
				amax = max(amax, float32(math.Abs(float64(v))))
			}
			for b := 8 * kb; b < 8*kb+8; b++ {
				blk := dst[b*qActBlock:]
				d := math.Float32frombits(binary.LittleEndian.Uint32(blk[qActScales+8*tok:]))
				s := math.Float32frombits(binary.LittleEndian.Uint32(blk[qActScales+8*tok+4:]))
				if math.Abs(float64(d)) != float64(amax)/127 && math.Abs(math.Abs(float64(d))-float64(amax)/127) > 1e-7*float64(amax) {
					t.Fatalf("token %d block %d: |d| = %g, want %g", tok, b, d, amax/127)
				}
				sum := 0
				for k := 0; k < 32; k++ {
					q := int8(blk[32*tok+k])
					sum += int(q)
					v := x[32*(b-8*kb)+k]
					if math.Abs(float64(v-d*float32(q))) > 0.5001*math.Abs(float64(d)) {
						t.Fatalf("token %d block %d value %d: %g quantised to %d·%g", tok, b, k, v, q, d)
					}
					if v != 0 && math.Abs(float64(v)) == float64(amax) && q != -127 && (q != 127 || d*v < 0) {
						t.Fatalf("token %d block %d value %d: the largest magnitude %g quantised to %d", tok, b, k, v, q)
					}
				}
				if s != d*float32(sum) {
					t.Fatalf("token %d block %d: s = %g, want %g", tok, b, s, d*float32(sum))
				}
			}
		}
	}
}

// TestGemmqPack checks the panel packers against the row dequantisers
// (dw·q − dm must be the dequantised weight), and the SIMD packers against
// the pure-Go ones byte for byte.
func TestGemmqPack(t *testing.T) {
	rng := rand.New(rand.NewPCG(35, 36))
	const in = 512
	nb := in / 32
	for _, typ := range []quant.Type{quant.Q4_0, quant.Q4_K, quant.Q6_K} {
		f := genericKernels().formats[typ]
		var rows [gemmPanel][]byte
		for r := range rows {
			rows[r] = testRow(t, typ, in, rng)
		}
		var panels [][]byte
		panelBlock := qPanelBlock
		if typ == quant.Q6_K {
			panelBlock = q6PanelBlock
		}
		for _, k := range []*kernels{genericKernels(), simdKernels(genericKernels())} {
			panel := make([]byte, nb*panelBlock)
			for i := range panel {
				panel[i] = 0xee
			}
			packerFor(typ, k)(&rows, nb, panel)
			panels = append(panels, panel)
		}
		if string(panels[0]) != string(panels[1]) {
			t.Errorf("%s: the SIMD panel differs from the pure-Go one", typ)
		}
		panel := panels[0]
		for r, row := range rows {
			want := make([]float32, in)
			f.dequant(row, want)
			for k := 0; k < in; k++ {
				p := panel[(k/32)*panelBlock:]
				q := p[64*(k%32/4)+panelOffset(r)+k%4]
				var got float32
				if typ == quant.Q6_K {
					sc := int16(binary.LittleEndian.Uint16(p[q6PanelSC+64*(k%32/16)+panelOffset(r):]))
					sc2 := int16(binary.LittleEndian.Uint16(p[q6PanelSC+64*(k%32/16)+panelOffset(r)+2:]))
					scp := int16(binary.LittleEndian.Uint16(p[q6PanelSCP+panelOffset(r)+2*(k%32/16):]))
					d := math.Float32frombits(binary.LittleEndian.Uint32(p[q6PanelD+4*r:]))
					if q > 63 || sc != sc2 || scp != 32*sc {
						t.Fatalf("%s row %d value %d: q = %d, scales %d %d %d", typ, r, k, q, sc, sc2, scp)
					}
					got = d * float32(int(sc)*(int(q)-32))
				} else {
					dw := math.Float32frombits(binary.LittleEndian.Uint32(p[qPanelDW+4*r:]))
					dm := math.Float32frombits(binary.LittleEndian.Uint32(p[qPanelDM+4*r:]))
					if q > 15 {
						t.Fatalf("%s row %d value %d: q = %d", typ, r, k, q)
					}
					got = dw*float32(q) - dm
				}
				if math.Abs(float64(got-want[k])) > 1e-6*(1+math.Abs(float64(want[k]))) {
					t.Fatalf("%s row %d value %d: %g, dequantised %g", typ, r, k, got, want[k])
				}
			}
		}
	}
}

// BenchmarkGemmqKernel measures the int8 micro-kernels alone on a
// 16-block (512-value) pass, the size the product uses, in L1/L2.
func BenchmarkGemmqKernel(b *testing.B) {
	rng := rand.New(rand.NewPCG(37, 38))
	const nb = qChunk
	w, a := randomGemmqInputs(rng, nb, false)
	w6 := make([]byte, nb*q6PanelBlock)
	var rows [gemmPanel][]byte
	for r := range rows {
		rows[r] = testRow(b, quant.Q6_K, 32*nb, rng)
	}
	packerFor(quant.Q6_K, genericKernels())(&rows, nb, w6)
	bs := make([]byte, nb*qBsBlock)
	simd := simdKernels(genericKernels())
	for _, k := range []struct {
		name  string
		fn    gemmqKernelFunc
		panel []byte
	}{
		{"q4/simd", gemmqKernel(simd), w}, {"q4/go", gemmq16x6Generic, w},
		{"q6/simd", gemmq6Kernel(simd), w6}, {"q6/go", gemmq6Generic, w6},
	} {
		b.Run(k.name, func(b *testing.B) {
			var out [qTile]float32
			for b.Loop() {
				k.fn(k.panel, a, bs, nb, &out)
			}
			b.ReportMetric(float64(qTile*32*nb)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}

// BenchmarkGEMMPrefill compares the float32 path (Exact) with the int8
// path on prefill shapes: 512 tokens through Q4_0, Q4_K and Q6_K matrices of
// phi-4-mini-like sizes, one thread.
func BenchmarkGEMMPrefill(b *testing.B) {
	rng := rand.New(rand.NewPCG(39, 40))
	const n = 512
	for _, shape := range [][2]int{{2048, 2048}, {11264, 2048}, {2048, 5632}} {
		out, in := shape[0], shape[1]
		for _, typ := range []quant.Type{quant.Q4_0, quant.Q4_K, quant.Q6_K} {
			for _, exact := range []bool{true, false} {
				path := "int8"
				if exact {
					path = "f32"
				}
				b.Run(fmt.Sprintf("%dx%d/%s/%s", in, out, typ, path), func(b *testing.B) {
					be := New(Options{Threads: 1, Exact: exact})
					defer be.Close()
					w := testWeight(b, be, typ, out, in, rng)
					x := be.NewBuffer(n, in).(*buffer)
					for i := range x.data {
						x.data[i] = float32(rng.NormFloat64())
					}
					d := be.NewBuffer(n, out)
					for b.Loop() {
						be.MatMul(d, x, w)
					}
					b.ReportMetric(2*float64(out*in*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

// sameKernelOutputs runs a micro-kernel's SIMD form (fast) and its pure-Go
// form (generic) on outputs that both start at 0, 1, 2, … and fails unless
// they agree: exactly for integer inputs, else to float rounding. It
// returns the pure-Go outputs.
func sameKernelOutputs(t *testing.T, nb int, integer bool, fast, generic func(*[qTile]float32)) [qTile]float32 {
	t.Helper()
	var got, want [qTile]float32
	for i := range got {
		got[i] = float32(i)
		want[i] = float32(i)
	}
	fast(&got)
	generic(&want)
	for i := range got {
		if integer && got[i] != want[i] || math.Abs(float64(got[i]-want[i])) > 1e-5*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("nb=%d integer=%v: out[%d] = %g, pure Go %g", nb, integer, i, got[i], want[i])
		}
	}
	return want
}
