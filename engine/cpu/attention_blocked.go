package cpu

import (
	"math"

	"github.com/phi4mac/phi4mac/engine/quant"
)

// Prefill attention over a half-float cache as blocked matrix products
// (flash attention) on the prefill GEMM's micro-kernel. Per KV group, the
// cache's keys are converted once into panels of 16 positions stored
// k-major over the head dimension (the micro-kernel's weight layout) and
// its values into panels of 16 dimensions stored k-major over positions.
// Then, for each tile of 6 tokens of one query head, scores = keys ·
// queries and out += weights · values run block by block over the keys
// with an online softmax, and blocks past the tile's last position are
// skipped. The per-token path reads the whole cache once per token at
// about half the FMA rate (a horizontal sum per position); this runs at
// the micro-kernel's.
const (
	attnKeyBlock  = 128 // key positions per online-softmax step (a multiple of gemmPanel)
	attnMinTokens = 16  // batches from this size attend blocked
)

// useBlockedAttention reports whether a batch of n tokens attends
// blocked.
func useBlockedAttention(c *kvCache, n int) bool {
	return c.elem == 2 && c.spec.HeadDim%gemmPanel == 0 && n >= attnMinTokens
}

// finiteValues reports whether the half-float values of positions
// pos0..pos0+n-1 of a layer are all finite. The blocked path masks a
// token's later positions with zero weights, and zero times an infinite
// value (a value past 65504) is NaN: a batch holding one attends per
// token, so that, as causal attention says, it reaches only the tokens
// at or after its position. Positions before pos0 are visible to every
// token of the batch and never masked.
func (c *kvCache) finiteValues(layer, pos0, n int) bool {
	hd := c.spec.HeadDim
	for g := 0; g < c.spec.KVHeads; g++ {
		v := c.v[layer][(g*c.spec.Ctx+pos0)*hd*2 : (g*c.spec.Ctx+pos0+n)*hd*2]
		for i := 1; i < len(v); i += 2 {
			if v[i]&0x7c == 0x7c { // exponent all ones: ±Inf or NaN
				return false
			}
		}
	}
	return true
}

// attendBlocked writes to d the attention of the n tokens of s (queries
// at positions pos0..pos0+n-1, already in the cache) over the cache's
// first pos0+n positions.
func (b *Backend) attendBlocked(d, s *buffer, c *kvCache, layer, pos0, heads int) {
	sp := c.spec
	hd, kvh := sp.HeadDim, sp.KVHeads
	group := heads / kvh
	n := s.rows
	np := pos0 + n
	npad := (np + gemmPanel - 1) / gemmPanel * gemmPanel
	scale := float32(1 / math.Sqrt(float64(hd)))
	if need := 2 * npad * hd; cap(b.attnPack) < need {
		b.attnPack = make([]float32, need)
	}
	kp := b.attnPack[:npad*hd]            // key panels: 16 positions × hd, k-major
	vp := b.attnPack[npad*hd : 2*npad*hd] // value panels: hd/16 panels of npad positions × 16
	zeros := make([]byte, 2*hd)
	toF32 := b.k.formats[quant.F16].dequant
	tiles := (n + gemmToks - 1) / gemmToks
	for g := 0; g < kvh; g++ {
		keys := c.k[layer][g*sp.Ctx*hd*2:]
		vals := c.v[layer][g*sp.Ctx*hd*2:]
		panels := npad / gemmPanel
		b.pool.parallel(panels, 1, func(_, lo, hi int) {
			for pp := lo; pp < hi; pp++ {
				var src [gemmPanel][]byte
				for r := range src {
					if p := pp*gemmPanel + r; p < np {
						src[r] = keys[p*hd*2 : (p+1)*hd*2]
					} else {
						src[r] = zeros
					}
				}
				b.k.transpose16F16(kp[pp*gemmPanel*hd:(pp+1)*gemmPanel*hd], &src)
				for p := pp * gemmPanel; p < (pp+1)*gemmPanel; p++ {
					for dp := 0; dp < hd/gemmPanel; dp++ {
						dst := vp[dp*npad*gemmPanel+p*gemmPanel : dp*npad*gemmPanel+(p+1)*gemmPanel]
						if p < np {
							toF32(vals[(p*hd+dp*gemmPanel)*2:(p*hd+(dp+1)*gemmPanel)*2], dst)
						} else {
							clear(dst)
						}
					}
				}
			}
		})
		tasks := group * tiles
		b.pool.parallel(tasks, 1, func(worker, lo, hi int) {
			sc := b.scratchFor(worker, 2*gemmToks*hd+2*gemmToks*attnKeyBlock)
			xq := sc[:gemmToks*hd]
			o := sc[gemmToks*hd : 2*gemmToks*hd]
			sb := sc[2*gemmToks*hd : 2*gemmToks*hd+gemmToks*attnKeyBlock]
			xp := sc[2*gemmToks*hd+gemmToks*attnKeyBlock:]
			for task := lo; task < hi; task++ {
				h := g*group + task/tiles
				t0 := task % tiles * gemmToks
				nt := min(gemmToks, n-t0)
				b.attendTile(d, s, kp, vp, npad, xq, o, sb, xp, h, t0, nt, pos0, hd, scale)
			}
		})
	}
}

// attendTile is attendBlocked for tokens t0..t0+nt-1 (nt ≤ 6) of query
// head h, with the group's key panels kp and value panels vp, and worker
// scratch xq, o (6·hd values), sb and xp (6·attnKeyBlock).
func (b *Backend) attendTile(d, s *buffer, kp, vp []float32, npad int, xq, o, sb, xp []float32, h, t0, nt, pos0, hd int, scale float32) {
	kern := b.k.gemm16x6
	var rows [gemmToks][]float32
	for t := range rows {
		tt := t0 + min(t, nt-1) // a short tile repeats its last token
		rows[t] = s.data[tt*s.cols+h*hd : tt*s.cols+(h+1)*hd]
	}
	b.k.interleave6(xq, &rows)
	for i := range xq {
		xq[i] *= scale
	}
	clear(o)
	var m, l [gemmToks]float32
	for t := range m {
		m[t] = float32(math.Inf(-1))
	}
	var os [gemmToks][]float32
	lim := pos0 + t0 + nt // positions the tile's last token sees
	for kb := 0; kb < lim; kb += attnKeyBlock {
		kn := (min(attnKeyBlock, lim-kb) + gemmPanel - 1) / gemmPanel * gemmPanel
		for p := 0; p < kn/gemmPanel; p++ {
			for t := range os {
				os[t] = sb[t*attnKeyBlock+p*gemmPanel : t*attnKeyBlock+(p+1)*gemmPanel]
			}
			pp := kb/gemmPanel + p
			kern(kp[pp*gemmPanel*hd:(pp+1)*gemmPanel*hd], xq, hd, &os, false)
		}
		for t := 0; t < gemmToks; t++ {
			row := sb[t*attnKeyBlock : t*attnKeyBlock+kn]
			visible := min(max(pos0+t0+min(t, nt-1)+1-kb, 0), kn)
			if visible == 0 {
				clear(row)
				continue
			}
			mx := max(m[t], b.k.maxF32(row[:visible]))
			alpha := float32(math.Exp(float64(m[t] - mx))) // 0 while m is −∞
			sum := b.k.expSubSum(row[:visible], mx)
			clear(row[visible:])
			l[t] = l[t]*alpha + sum
			m[t] = mx
			if alpha != 1 {
				ot := o[t*hd : (t+1)*hd]
				for i := range ot {
					ot[i] *= alpha
				}
			}
		}
		for t := range rows {
			rows[t] = sb[t*attnKeyBlock : t*attnKeyBlock+kn]
		}
		b.k.interleave6(xp[:gemmToks*kn], &rows)
		for dp := 0; dp < hd/gemmPanel; dp++ {
			for t := range os {
				os[t] = o[t*hd+dp*gemmPanel : t*hd+(dp+1)*gemmPanel]
			}
			kern(vp[dp*npad*gemmPanel+kb*gemmPanel:], xp[:gemmToks*kn], kn, &os, true)
		}
	}
	for t := 0; t < nt; t++ {
		out := d.data[(t0+t)*d.cols+h*hd : (t0+t)*d.cols+(h+1)*hd]
		inv := 1 / l[t]
		for i, v := range o[t*hd : (t+1)*hd] {
			out[i] = v * inv
		}
	}
}
