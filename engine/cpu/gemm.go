package cpu

import (
	"encoding/binary"

	"github.com/phi4mac/phi4mac/engine/quant"
)

// The batched (prefill) matrix product. Weight rows are dequantised to
// float32 a group at a time and repacked k-major in panels of 16 rows, so
// the micro-kernel broadcasts one activation per token and multiplies it
// with 16 weights held in two vector registers: a 16-row × 6-token tile of
// 12 accumulators, no horizontal sums. The product runs over the input in
// chunks of gemmK values so that a chunk of the group's panels stays in the
// L2 cache and the tokens' chunks in L1 while every token goes by; the
// activations stream from memory once per group of gemmGroup rows.
const (
	gemmPanel = 16            // rows per micro-kernel panel
	gemmToks  = 6             // tokens per micro-kernel call
	gemmGroup = 3 * gemmPanel // rows dequantised together
	gemmK     = 512           // input values per chunk
)

// gemm16x6Generic is the pure-Go micro-kernel: for t < 6 and r < 16,
// out[t][r] (+)= Σ_i w[16i+r]·x[6i+t] for i < k (both operands k-major:
// 16 weights and 6 activations per step).
func gemm16x6Generic(w, x []float32, k int, out *[gemmToks][]float32, acc bool) {
	var res [gemmToks][gemmPanel]float32
	for i := 0; i < k; i++ {
		wi := w[gemmPanel*i : gemmPanel*i+gemmPanel]
		xi := x[gemmToks*i : gemmToks*i+gemmToks]
		for t, v := range xi {
			for r := range wi {
				res[t][r] += wi[r] * v
			}
		}
	}
	// Read every output before writing any: the caller repeats the last
	// token (and its output) to fill a tile, as the assembly allows.
	if acc {
		for t := range res {
			o := out[t][:gemmPanel]
			for r := range o {
				res[t][r] += o[r]
			}
		}
	}
	for t := range res {
		copy(out[t][:gemmPanel], res[t][:])
	}
}

func (b *Backend) gemm(d, s *buffer, w *Weight) {
	if b.useGemmq(w) {
		b.gemmq(d, s, w) // int8 products on Q8 activations, as gemv
		return
	}
	out, in, n := w.rows(), w.rowLen, s.rows
	kern := b.k.gemm16x6
	xp := b.packTokens(s)
	groups := (out + gemmGroup - 1) / gemmGroup
	b.pool.parallel(groups, 1, func(worker, lo, hi int) { // a group is milliseconds of work: hand them out one by one for balance
		// Scratch: a panel of dequantised rows, the group's packed panels, and
		// the group's outputs for all tokens.
		sc := b.scratchFor(worker, gemmPanel*in+gemmGroup*in+n*gemmGroup)
		rows := sc[:gemmPanel*in]
		packed := sc[gemmPanel*in : gemmPanel*in+gemmGroup*in]
		res := sc[gemmPanel*in+gemmGroup*in:]
		var os [gemmToks][]float32
		var zeros []byte // a half-float row of zeros, for panels past the last row
		if w.typ == quant.F16 && out%gemmPanel != 0 {
			zeros = make([]byte, 2*in)
		}
		for g := lo; g < hi; g++ {
			r0 := g * gemmGroup
			nr := min(gemmGroup, out-r0)
			panels := (nr + gemmPanel - 1) / gemmPanel
			for p := 0; p < panels; p++ {
				if w.typ == quant.F16 { // convert while transposing
					var src [gemmPanel][]byte
					for pr := range src {
						if r := p*gemmPanel + pr; r < nr {
							src[pr] = w.row(r0 + r)
						} else {
							src[pr] = zeros
						}
					}
					b.k.transpose16F16(packed[p*gemmPanel*in:(p+1)*gemmPanel*in], &src)
					continue
				}
				var src [gemmPanel][]float32
				for pr := range src {
					r := p*gemmPanel + pr
					switch {
					case r >= nr:
						src[pr] = rows[pr*in : (pr+1)*in]
						clear(src[pr])
					case w.typ == quant.F32:
						src[pr] = bytesAsF32(w.row(r0+r), in)
					default:
						src[pr] = rows[pr*in : (pr+1)*in]
						w.f.dequant(w.row(r0+r), src[pr])
					}
				}
				b.k.transpose16(packed[p*gemmPanel*in:(p+1)*gemmPanel*in], &src)
			}
			for k0 := 0; k0 < in; k0 += gemmK {
				kn := min(gemmK, in-k0)
				for j := 0; j < n; j += gemmToks {
					nt := min(gemmToks, n-j)
					x := xp[gemmToks*(j/gemmToks*in+k0) : gemmToks*(j/gemmToks*in+k0+kn)]
					for p := 0; p < panels; p++ {
						for t := range os {
							tt := j + min(t, nt-1)
							os[t] = res[tt*gemmGroup+p*gemmPanel : tt*gemmGroup+(p+1)*gemmPanel]
						}
						kern(packed[p*gemmPanel*in+gemmPanel*k0:], x, kn, &os, k0 > 0)
					}
				}
			}
			for j := 0; j < n; j++ {
				copy(d.data[j*out+r0:j*out+r0+nr], res[j*gemmGroup:j*gemmGroup+nr])
			}
		}
	})
}

// packTokens returns the rows of s (tokens) regrouped for the
// micro-kernel: tiles of 6 tokens, each stored k-major (the 6 tokens'
// values of input k side by side), the last tile padded by repeating its
// last token. The micro-kernel's broadcasts then read one sequential
// stream instead of six rows.
func (b *Backend) packTokens(s *buffer) []float32 {
	n, in := s.rows, s.cols
	tiles := (n + gemmToks - 1) / gemmToks
	size := tiles * in * gemmToks
	if cap(b.xpack) < size {
		b.xpack = make([]float32, size)
	}
	xp := b.xpack[:size]
	b.pool.parallel(tiles, 1, func(_, lo, hi int) {
		for j := lo; j < hi; j++ {
			var rows [gemmToks][]float32
			for t := range rows {
				tt := min(gemmToks*j+t, n-1)
				rows[t] = s.data[tt*in : (tt+1)*in]
			}
			b.k.interleave6(xp[j*in*gemmToks:(j+1)*in*gemmToks], &rows)
		}
	})
	return xp
}

// interleave6Generic stores the 6 rows src (of equal length) k-major
// into dst: dst[6i+t] = src[t][i].
func interleave6Generic(dst []float32, src *[gemmToks][]float32) {
	n := len(src[0])
	s0, s1, s2, s3, s4, s5 := src[0][:n], src[1][:n], src[2][:n], src[3][:n], src[4][:n], src[5][:n]
	dst = dst[:gemmToks*n]
	for i := 0; i < n; i++ {
		d := dst[gemmToks*i : gemmToks*i+gemmToks : gemmToks*i+gemmToks]
		d[0], d[1], d[2], d[3], d[4], d[5] = s0[i], s1[i], s2[i], s3[i], s4[i], s5[i]
	}
}

// transpose16F16Generic is transpose16Generic for rows of half floats:
// dst[16i+r] = the float32 value of half float i of src[r].
func transpose16F16Generic(dst []float32, src *[gemmPanel][]byte) {
	n := len(src[0]) / 2
	t := f16Table()
	for r := range src {
		row := src[r][:2*n]
		for i := 0; i < n; i++ {
			dst[gemmPanel*i+r] = t[binary.LittleEndian.Uint16(row[2*i:])]
		}
	}
}

// transpose16Generic stores the 16 rows src (of equal length) k-major into dst:
// dst[16i+r] = src[r][i].
func transpose16Generic(dst []float32, src *[gemmPanel][]float32) {
	n := len(src[0])
	s0, s1, s2, s3 := src[0][:n], src[1][:n], src[2][:n], src[3][:n]
	s4, s5, s6, s7 := src[4][:n], src[5][:n], src[6][:n], src[7][:n]
	s8, s9, s10, s11 := src[8][:n], src[9][:n], src[10][:n], src[11][:n]
	s12, s13, s14, s15 := src[12][:n], src[13][:n], src[14][:n], src[15][:n]
	dst = dst[:gemmPanel*n]
	for i := 0; i < n; i++ {
		d := dst[gemmPanel*i : gemmPanel*i+gemmPanel : gemmPanel*i+gemmPanel]
		d[0], d[1], d[2], d[3] = s0[i], s1[i], s2[i], s3[i]
		d[4], d[5], d[6], d[7] = s4[i], s5[i], s6[i], s7[i]
		d[8], d[9], d[10], d[11] = s8[i], s9[i], s10[i], s11[i]
		d[12], d[13], d[14], d[15] = s12[i], s13[i], s14[i], s15[i]
	}
}
