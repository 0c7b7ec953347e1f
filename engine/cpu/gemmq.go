package cpu

import (
	"encoding/binary"
	"math"

	"github.com/phi4mac/phi4mac/engine/quant"
)

// The int8 prefill product for Q4_0, Q4_K and Q6_K weights. Outside Exact
// mode the activations are quantised to 8 bits exactly as the
// matrix-vector path quantises them (Q8_0 blocks of 32 for Q4_0, as
// quantizeQ8; Q8_K blocks of 256 for the K-quants, as quantizeQ8K), once
// per product for all tokens, and the weights are expanded a group of rows
// at a time into unsigned bytes, so the micro-kernel runs on vpmaddubsw: 32
// multiply-adds in one instruction where FMA does 8.
//
// Weight panel (16 rows), per block of 32 input values (qPanelBlock
// bytes): 8 quads of 64 bytes, quad j holding values 4j..4j+3 of rows 0..7
// (4 bytes per row) then of rows 8..15; then 16 float32 scales dw (the
// weight of a block is dw·q − dm) and 16 float32 offsets dm. For Q4_0,
// dw = d and dm = 8d; for Q4_K, dw = d·sc and dm = dmin·m of the row's
// sub-block. (Q6_K panels differ after the quads: see q6PanelBlock.)
//
// Activation tile (6 tokens), per block (qActBlock bytes): the 6 tokens'
// 32 int8 values, then for each token its scale d and s = d·Σq (for Q8_K
// the scale of the block's 256 values).
//
// The kernel broadcasts four activations of one token (vpbroadcastd) and
// multiplies them with a quad of 8 rows, summing the 8 quads of a block in
// int16 (at most 8·2·15·127 = 30480, no overflow), then per block and
// token turns the sums into float32 and adds (S·d_a)·dw − dm·s_a to the
// 16×6 outputs. A token's result thus differs from the row-by-row Q8
// product (dotq) only in float summation order.
const (
	qPanelBlock = 8*64 + 2*gemmPanel*4       // bytes per block of a weight panel
	qActBlock   = gemmToks*32 + gemmToks*2*4 // bytes per block of an activation tile
	qTile       = gemmToks * gemmPanel       // outputs of one micro-kernel call
	qGroup      = 6 * gemmPanel              // rows repacked together
	qChunk      = 16                         // blocks per pass (512 input values)
	qNibbles    = 0x0f0f0f0f0f0f0f0f         // low nibble of every byte
	qPanelDW    = 8 * 64                     // offset of dw in a panel block
	qPanelDM    = qPanelDW + gemmPanel*4     // offset of dm in a panel block
	qActScales  = gemmToks * 32              // offset of the scales in an activation block
)

// gemmqPacker expands 16 weight rows (raw bytes, nb blocks of 32 values
// each) into a panel.
type gemmqPacker func(rows *[gemmPanel][]byte, nb int, panel []byte)

// packerFor returns the panel packer of the kernel set k for a format with
// an int8 prefill path, nil for the others.
func packerFor(t quant.Type, k *kernels) gemmqPacker {
	if p := fastPacker(t, k); p != nil {
		return p
	}
	switch t {
	case quant.Q4_0:
		return packRows(packQ4_0Panel)
	case quant.Q4_K:
		return packRows(packQ4_KPanel)
	case quant.Q6_K:
		return packRows(packQ6_KPanel)
	}
	return nil
}

// packRows makes a panel packer of a row packer.
func packRows(pack func(row []byte, nb int, panel []byte, r int)) gemmqPacker {
	return func(rows *[gemmPanel][]byte, nb int, panel []byte) {
		for r, row := range rows {
			pack(row, nb, panel, r)
		}
	}
}

// panelOffset is the offset of row r's 4 bytes within a quad (and within
// the other 64-byte vectors of per-row values: 8 rows, then 8 rows).
func panelOffset(r int) int { return 32*(r/8) + 4*(r%8) }

// putQuads stores the 32 values of one block of row r, given as four
// little-endian words of 8 bytes (values 0..7, 8..15, 16..23, 24..31), into
// the 8 quads of the panel block p.
func putQuads(p []byte, r int, v0, v1, v2, v3 uint64) {
	o := panelOffset(r)
	p = p[:qPanelBlock]
	binary.LittleEndian.PutUint32(p[o:], uint32(v0))
	binary.LittleEndian.PutUint32(p[64+o:], uint32(v0>>32))
	binary.LittleEndian.PutUint32(p[128+o:], uint32(v1))
	binary.LittleEndian.PutUint32(p[192+o:], uint32(v1>>32))
	binary.LittleEndian.PutUint32(p[256+o:], uint32(v2))
	binary.LittleEndian.PutUint32(p[320+o:], uint32(v2>>32))
	binary.LittleEndian.PutUint32(p[384+o:], uint32(v3))
	binary.LittleEndian.PutUint32(p[448+o:], uint32(v3>>32))
}

func putScales(p []byte, r int, dw, dm float32) {
	binary.LittleEndian.PutUint32(p[qPanelDW+4*r:], math.Float32bits(dw))
	binary.LittleEndian.PutUint32(p[qPanelDM+4*r:], math.Float32bits(dm))
}

// packQ4_0Panel stores row r of a panel from a Q4_0 row.
func packQ4_0Panel(row []byte, nb int, panel []byte, r int) {
	t := f16Table()
	for b := 0; b < nb; b++ {
		blk := row[18*b : 18*b+18]
		d := t[binary.LittleEndian.Uint16(blk)]
		q0 := binary.LittleEndian.Uint64(blk[2:])
		q1 := binary.LittleEndian.Uint64(blk[10:])
		p := panel[b*qPanelBlock : (b+1)*qPanelBlock]
		putQuads(p, r, q0&qNibbles, q1&qNibbles, q0>>4&qNibbles, q1>>4&qNibbles)
		putScales(p, r, d, 8*d)
	}
}

// packQ4_KPanel stores row r of a panel from a Q4_K row.
func packQ4_KPanel(row []byte, nb int, panel []byte, r int) {
	t := f16Table()
	for sb := 0; sb < nb/8; sb++ {
		blk := row[144*sb : 144*sb+144]
		d := t[binary.LittleEndian.Uint16(blk)]
		dmin := t[binary.LittleEndian.Uint16(blk[2:])]
		scales := blk[4:16]
		for j := 0; j < 4; j++ {
			qs := blk[16+32*j : 16+32*j+32]
			v0 := binary.LittleEndian.Uint64(qs)
			v1 := binary.LittleEndian.Uint64(qs[8:])
			v2 := binary.LittleEndian.Uint64(qs[16:])
			v3 := binary.LittleEndian.Uint64(qs[24:])
			for h := 0; h < 2; h++ {
				b := 8*sb + 2*j + h
				sc, m := q4kScaleMin(2*j+h, scales)
				sh := uint(4 * h)
				p := panel[b*qPanelBlock : (b+1)*qPanelBlock]
				putQuads(p, r, v0>>sh&qNibbles, v1>>sh&qNibbles, v2>>sh&qNibbles, v3>>sh&qNibbles)
				putScales(p, r, d*float32(sc), dmin*float32(m))
			}
		}
	}
}

// q8BlockKernels are the two steps of quantising activations, in blocks
// of 32 values.
type q8BlockKernels struct {
	// absMax sets amax[b] to the largest |x| of block b of x, for
	// len(amax) blocks.
	absMax func(x, amax []float32)
	// scaleRound sets token t's values of activation tile block b of dst
	// to x·scale[b] rounded to the nearest integer (ties to even, at most
	// 127), and sums[b] to their sum, for len(scale) blocks.
	scaleRound func(x, scale []float32, dst []byte, t int, sums []int32)
}

var q8BlocksGeneric = q8BlockKernels{absMaxGeneric, scaleRoundGeneric}

func absMaxGeneric(x, amax []float32) {
	for b := range amax {
		var m float32
		for _, v := range x[32*b : 32*b+32] {
			m = max(m, float32(math.Abs(float64(v))))
		}
		amax[b] = m
	}
}

func scaleRoundGeneric(x, scale []float32, dst []byte, t int, sums []int32) {
	for b, sc := range scale {
		q := dst[b*qActBlock+32*t : b*qActBlock+32*t+32]
		var sum int32
		for j, v := range x[32*b : 32*b+32] {
			qv := int8(min(127, math.RoundToEven(float64(v*sc))))
			q[j] = byte(qv)
			sum += int32(qv)
		}
		sums[b] = sum
	}
}

// q8Chunk is the number of blocks of 32 values quantizeToken takes at a
// time (a multiple of 8).
const q8Chunk = 64

// q8Scratch is the working space of quantizeToken. The quantisers are
// called through function values, so arrays on the stack passed to them
// would move to the heap at every call: each worker keeps one of these.
type q8Scratch struct {
	amax, scale [q8Chunk]float32
	sums        [q8Chunk]int32
}

// quantizeTile quantises tokens (each of len in, fewer than 6 for the last
// tile; the rest of the tile is zero) into the activation tile dst: in
// blocks of 32 with the rounding of quantizeQ8 (the Q8_0 form the Q4_0
// products use), or with k in blocks of 256 with the rounding of
// llama.cpp's quantize_row_q8_K_ref (the Q8_K form the K-quant products
// use), each 256-value scale then repeated for its 8 blocks of 32. tmp is
// the caller's working space.
func quantizeTile(tokens [][]float32, dst []byte, k bool, qk *q8BlockKernels, tmp *q8Scratch) {
	nb := len(dst) / qActBlock
	for t := 0; t < gemmToks; t++ {
		if t < len(tokens) {
			quantizeToken(tokens[t], dst, t, k, qk, tmp)
			continue
		}
		for b := 0; b < nb; b++ {
			blk := dst[b*qActBlock : (b+1)*qActBlock]
			clear(blk[32*t : 32*t+32])
			clear(blk[qActScales+8*t : qActScales+8*t+8])
		}
	}
}

// quantizeToken quantises x into token t of an activation tile (see
// quantizeTile).
func quantizeToken(x []float32, dst []byte, t int, k bool, qk *q8BlockKernels, tmp *q8Scratch) {
	nb := len(dst) / qActBlock
	amax, scale, sums := &tmp.amax, &tmp.scale, &tmp.sums
	for c := 0; c < nb; c += q8Chunk {
		m := min(q8Chunk, nb-c)
		xs := x[32*c : 32*(c+m)]
		qk.absMax(xs, amax[:m])
		if k {
			for kb := 0; kb < m; kb += 8 {
				iscale := q8KScale(xs[32*kb:32*kb+256], amax[kb:kb+8])
				for b := kb; b < kb+8; b++ {
					scale[b] = iscale
				}
			}
		} else {
			for b, a := range amax[:m] {
				scale[b] = 0
				if a != 0 {
					scale[b] = finiteOr0(127 / a) // as llama.cpp's AVX2 quantize_row_q8_0
				}
			}
		}
		qk.scaleRound(xs, scale[:m], dst[c*qActBlock:], t, sums[:m])
		for b := 0; b < m; b++ {
			var d float32
			switch {
			case !k:
				d = quant.F16ToF32(quant.F32ToF16(amax[b] / 127))
			case scale[b] != 0:
				d = 1 / scale[b]
			}
			sc := dst[(c+b)*qActBlock+qActScales+8*t:]
			binary.LittleEndian.PutUint32(sc, math.Float32bits(d))
			binary.LittleEndian.PutUint32(sc[4:], math.Float32bits(d*float32(sums[b])))
		}
	}
}

// q8KScale returns the scale of 256 values x in Q8_K form, as quantizeQ8K
// (llama.cpp's quantize_row_q8_K_ref) sets it: −127/mx for the first value
// mx of largest magnitude, 0 if all are zero (or if −127/mx is infinite:
// see finiteOr0), NaN if mx is infinite. amax holds the largest
// magnitude of each block of 32. A NaN in x is passed over, as quantizeQ8K
// passes it over, though the abs-max kernels may return it.
func q8KScale(x, amax []float32) float32 {
	x, amax = x[:256], amax[:8]
	a := amax[0]
	for _, v := range amax[1:] {
		a = max(a, v)
	}
	if a == 0 {
		return 0
	}
	if math.IsInf(float64(a), 1) {
		// −127/±Inf is 0, which would drop the 256 values; NaN keeps
		// the product non-finite, as the matrix-vector one (d = 1/∓0).
		return float32(math.NaN())
	}
	for b, m := range amax {
		if m != a {
			continue
		}
		for _, v := range x[32*b : 32*b+32] {
			if float32(math.Abs(float64(v))) == a {
				return finiteOr0(-127 / v)
			}
		}
	}
	// a is NaN: find the largest magnitude of the other values.
	var mx, m float32
	for _, v := range x {
		if av := float32(math.Abs(float64(v))); av > m {
			m, mx = av, v
		}
	}
	if m == 0 {
		return 0
	}
	return finiteOr0(-127 / mx)
}

// finiteOr0 returns the scale s, or 0 if it is infinite or NaN: a block
// whose largest magnitude is below 127/MaxFloat32 has d = 0 (Q8_0 rounds
// it to half precision, Q8_K takes 1/±Inf), so its values do not count,
// but x·Inf would quantise to garbage (−128 and wrapped sums in SIMD, other
// garbage in Go). With 0 they are all 0.
func finiteOr0(s float32) float32 {
	if math.Abs(float64(s)) <= math.MaxFloat32 {
		return s
	}
	return 0
}

// fma32 returns a·b+c rounded once to float32 (up to the rare double
// rounding through float64).
func fma32(a, b, c float32) float32 {
	return float32(math.FMA(float64(a), float64(b), float64(c)))
}

// gemmq16x6Generic is the pure-Go micro-kernel: over nb blocks of the
// panel w and the activation tile a, for t < 6 and r < 16, with S the
// block's integer dot product of row r and token t,
// out[16t+r] += (S·d_a)·dw − dm·s_a.
func gemmq16x6Generic(w, a, _ []byte, nb int, out *[qTile]float32) {
	var wv [gemmPanel][32]int32
	var av [32]int32
	for b := 0; b < nb; b++ {
		p := w[b*qPanelBlock : (b+1)*qPanelBlock]
		x := a[b*qActBlock : (b+1)*qActBlock]
		unpackQuads(p, &wv)
		for t := 0; t < gemmToks; t++ {
			for k, v := range x[32*t : 32*t+32] {
				av[k] = int32(int8(v))
			}
			da := math.Float32frombits(binary.LittleEndian.Uint32(x[qActScales+8*t:]))
			sa := math.Float32frombits(binary.LittleEndian.Uint32(x[qActScales+8*t+4:]))
			for r := range wv {
				var s int32
				for k, v := range &wv[r] {
					s += v * av[k]
				}
				dw := math.Float32frombits(binary.LittleEndian.Uint32(p[qPanelDW+4*r:]))
				dm := math.Float32frombits(binary.LittleEndian.Uint32(p[qPanelDM+4*r:]))
				v := fma32(float32(s)*da, dw, out[gemmPanel*t+r])
				out[gemmPanel*t+r] = fma32(-dm, sa, v)
			}
		}
	}
}

// unpackQuads sets wv[r][k] to value k of row r of the panel block p.
func unpackQuads(p []byte, wv *[gemmPanel][32]int32) {
	p = p[:8*64]
	for r := range wv {
		o := panelOffset(r)
		for j := 0; j < 8; j++ {
			q := p[64*j+o : 64*j+o+4]
			wv[r][4*j], wv[r][4*j+1], wv[r][4*j+2], wv[r][4*j+3] = int32(q[0]), int32(q[1]), int32(q[2]), int32(q[3])
		}
	}
}

// packQ4_0Scales stores the scales of row r of a panel from a Q4_0 row.
func packQ4_0Scales(row []byte, nb int, panel []byte, r int) {
	t := f16Table()
	for b := 0; b < nb; b++ {
		d := t[binary.LittleEndian.Uint16(row[18*b:])]
		putScales(panel[b*qPanelBlock:(b+1)*qPanelBlock], r, d, 8*d)
	}
}

// packQ4_KScales stores the scales of row r of a panel from a Q4_K row.
func packQ4_KScales(row []byte, nb int, panel []byte, r int) {
	t := f16Table()
	for sb := 0; sb < nb/8; sb++ {
		blk := row[144*sb : 144*sb+16]
		d := t[binary.LittleEndian.Uint16(blk)]
		dmin := t[binary.LittleEndian.Uint16(blk[2:])]
		for j := 0; j < 8; j++ {
			sc, m := q4kScaleMin(j, blk[4:16])
			b := 8*sb + j
			putScales(panel[b*qPanelBlock:(b+1)*qPanelBlock], r, d*float32(sc), dmin*float32(m))
		}
	}
}

// useGemmq reports whether the product with w runs on the int8 path.
func (b *Backend) useGemmq(w *Weight) bool {
	return !b.exact && packerFor(w.typ, b.k) != nil && w.rowLen%32 == 0
}

// gemmqKernelFunc is a micro-kernel of the int8 path: nb blocks of 32 values
// of a panel w and an activation tile a (and, for Q6_K, the tile's sums of
// 16 values bs), added to out.
type gemmqKernelFunc func(w, a, bs []byte, nb int, out *[qTile]float32)

// gemmq computes d = s·wᵀ for a Q4_0, Q4_K or Q6_K weight on the int8 path.
func (b *Backend) gemmq(d, s *buffer, w *Weight) {
	out, in, n := w.rows(), w.rowLen, s.rows
	nb := in / 32
	pack := packerFor(w.typ, b.k)
	q8k := usesQ8K(w.typ) // quantised as the matrix-vector product does
	kern, qk := gemmqKernel(b.k), q8BlocksFor(b.k)
	panelBlock := qPanelBlock
	if w.typ == quant.Q6_K {
		kern, panelBlock = gemmq6Kernel(b.k), q6PanelBlock
	}
	tiles := (n + gemmToks - 1) / gemmToks
	panelBytes := nb * panelBlock
	groupFloats := qGroup / gemmPanel * panelBytes / 4 // the packed panels
	resFloats := tiles * qGroup / gemmPanel * qTile    // the group's outputs
	actBytes := tiles * nb * qActBlock
	bsBytes := tiles * nb * qBsBlock
	actFloats := (actBytes + bsBytes + 3) / 4

	// Worker 0's scratch holds the quantised activations (and their sums
	// of 16), which every worker reads, then its own panels and outputs.
	sc0 := b.scratchFor(0, actFloats+groupFloats+resFloats)
	act := f32AsBytes(sc0[:actFloats])[:actBytes]
	bs := f32AsBytes(sc0[:actFloats])[actBytes : actBytes+bsBytes]
	// Per worker: the quantisers' working space and the row list of a
	// panel, on the heap once per call rather than once per token and
	// panel (they go to functions called through values).
	type workerTmp struct {
		q8   q8Scratch
		rows [gemmPanel][]byte
	}
	tmp := make([]workerTmp, b.pool.threads)
	b.pool.parallel(tiles, 1, func(worker, lo, hi int) {
		var toks [gemmToks][]float32
		for j := lo; j < hi; j++ {
			nt := min(gemmToks, n-j*gemmToks)
			for t := 0; t < nt; t++ {
				tt := j*gemmToks + t
				toks[t] = s.data[tt*in : (tt+1)*in]
			}
			tile := act[j*nb*qActBlock : (j+1)*nb*qActBlock]
			quantizeTile(toks[:nt], tile, q8k, qk, &tmp[worker].q8)
			if w.typ == quant.Q6_K {
				tileSums16(tile, bs[j*nb*qBsBlock:(j+1)*nb*qBsBlock])
			}
		}
	})

	var zero []byte // stands in for the rows past the last of a panel
	if out%gemmPanel != 0 {
		zero = make([]byte, w.rowBytes)
	}
	groups := (out + qGroup - 1) / qGroup
	b.pool.parallel(groups, 1, func(worker, lo, hi int) {
		var sc []float32
		if worker == 0 {
			sc = sc0[actFloats:]
		} else {
			sc = b.scratchFor(worker, groupFloats+resFloats)
		}
		packed := f32AsBytes(sc[:groupFloats])
		res := sc[groupFloats : groupFloats+resFloats]
		for g := lo; g < hi; g++ {
			r0 := g * qGroup
			nr := min(qGroup, out-r0)
			panels := (nr + gemmPanel - 1) / gemmPanel
			for p := 0; p < panels; p++ {
				rows := &tmp[worker].rows
				for r := range rows {
					rows[r] = zero
					if row := p*gemmPanel + r; row < nr {
						rows[r] = w.row(r0 + row)
					}
				}
				pack(rows, nb, packed[p*panelBytes:(p+1)*panelBytes])
			}
			res := res[:tiles*panels*qTile]
			clear(res)
			for k0 := 0; k0 < nb; k0 += qChunk {
				kn := min(qChunk, nb-k0)
				for j := 0; j < tiles; j++ {
					a := act[(j*nb+k0)*qActBlock : (j*nb+k0+kn)*qActBlock]
					ab := bs[(j*nb+k0)*qBsBlock : (j*nb+k0+kn)*qBsBlock]
					for p := 0; p < panels; p++ {
						o := (*[qTile]float32)(res[(j*panels+p)*qTile:])
						kern(packed[p*panelBytes+k0*panelBlock:p*panelBytes+(k0+kn)*panelBlock], a, ab, kn, o)
					}
				}
			}
			for t := 0; t < n; t++ {
				j, tt := t/gemmToks, t%gemmToks
				for p := 0; p < panels; p++ {
					m := min(gemmPanel, nr-p*gemmPanel)
					src := res[(j*panels+p)*qTile+gemmPanel*tt:]
					dst := d.data[t*out+r0+p*gemmPanel:]
					if m == gemmPanel { // a whole panel: 16 values, inline moves rather than a memmove call
						*(*[gemmPanel]float32)(dst) = *(*[gemmPanel]float32)(src)
						continue
					}
					copy(dst[:m], src[:m])
				}
			}
		}
	})
}

// Q6_K. Its 6-bit values q (0..63, the weight is d·sc·(q−32)) have a
// signed 8-bit scale sc per 16 values and d per 256; the activations are in
// Q8_K form, one scale per 256. The panel keeps the quads (values 0..63)
// and, per block of 32, the scales as int16 pairs for vpmaddwd, and d per
// row: q6PanelBlock bytes. The kernel sums every two quads in int16 (at
// most 4·63·127), widens them times sc into int32, takes 32·sc·Σa off per
// 16 values (with the activations' sums of 16, qBsBlock bytes per block of
// an activation tile: two int16 per token) and scales by d·d_a per 256.
const (
	q6PanelSC    = 8 * 64            // 2 sub-blocks × 2 halves of 8 rows × (sc, sc)
	q6PanelSCP   = q6PanelSC + 4*32  // 2 halves × 8 rows × (32·sc0, 32·sc1)
	q6PanelD     = q6PanelSCP + 2*32 // 16 rows × d (float32)
	q6PanelBlock = q6PanelD + gemmPanel*4
	qBsBlock     = gemmToks * 4
)

// packQ6_KPanel stores row r of a panel from a Q6_K row.
func packQ6_KPanel(row []byte, nb int, panel []byte, r int) {
	const lo2 = 0x0303030303030303
	for sb := 0; sb < nb/8; sb++ {
		blk := row[210*sb : 210*sb+210]
		for n := 0; n < 2; n++ {
			ql := blk[64*n : 64*n+64]
			qh := blk[128+32*n : 128+32*n+32]
			var v [4][4]uint64 // [block of 32][8 values]
			for i := 0; i < 4; i++ {
				l := binary.LittleEndian.Uint64(ql[8*i:])
				l2 := binary.LittleEndian.Uint64(ql[32+8*i:])
				h := binary.LittleEndian.Uint64(qh[8*i:])
				v[0][i] = l&qNibbles | (h&lo2)<<4
				v[1][i] = l2&qNibbles | (h>>2&lo2)<<4
				v[2][i] = l>>4&qNibbles | (h>>4&lo2)<<4
				v[3][i] = l2>>4&qNibbles | (h>>6&lo2)<<4
			}
			for m := 0; m < 4; m++ {
				b := 8*sb + 4*n + m
				putQuads(panel[b*q6PanelBlock:(b+1)*q6PanelBlock], r, v[m][0], v[m][1], v[m][2], v[m][3])
			}
		}
	}
	packQ6_KScales(row, nb, panel, r)
}

// packQ6_KScales stores the scales of row r of a panel from a Q6_K row.
func packQ6_KScales(row []byte, nb int, panel []byte, r int) {
	t := f16Table()
	o := panelOffset(r)
	for sb := 0; sb < nb/8; sb++ {
		blk := row[210*sb : 210*sb+210]
		d := math.Float32bits(t[binary.LittleEndian.Uint16(blk[208:])])
		for i := 0; i < 8; i++ {
			p := panel[(8*sb+i)*q6PanelBlock : (8*sb+i+1)*q6PanelBlock]
			sc0 := uint32(uint16(int16(int8(blk[192+2*i]))))
			sc1 := uint32(uint16(int16(int8(blk[192+2*i+1]))))
			binary.LittleEndian.PutUint32(p[q6PanelSC+o:], sc0|sc0<<16)
			binary.LittleEndian.PutUint32(p[q6PanelSC+64+o:], sc1|sc1<<16)
			binary.LittleEndian.PutUint32(p[q6PanelSCP+o:], uint32(uint16(32*int16(int8(blk[192+2*i]))))|uint32(uint16(32*int16(int8(blk[192+2*i+1]))))<<16)
			binary.LittleEndian.PutUint32(p[q6PanelD+4*r:], d)
		}
	}
}

// tileSums16 stores, for each block of the activation tile and token, the
// sums of its first and last 16 values as two int16.
func tileSums16(tile, bs []byte) {
	for b := 0; b < len(tile)/qActBlock; b++ {
		blk := tile[b*qActBlock : (b+1)*qActBlock]
		for t := 0; t < gemmToks; t++ {
			q := blk[32*t : 32*t+32]
			var s0, s1 int16
			for k := 0; k < 16; k++ {
				s0 += int16(int8(q[k]))
				s1 += int16(int8(q[16+k]))
			}
			binary.LittleEndian.PutUint16(bs[b*qBsBlock+4*t:], uint16(s0))
			binary.LittleEndian.PutUint16(bs[b*qBsBlock+4*t+2:], uint16(s1))
		}
	}
}

// gemmq6Generic is the pure-Go Q6_K micro-kernel: over nb blocks of 32
// values (a multiple of 8), for t < 6 and r < 16,
// out[16t+r] += (Σ_i sc_i·Σ_{k∈i} (q_k−32)·a_k)·d·d_a per 256 values.
func gemmq6Generic(w, a, bs []byte, nb int, out *[qTile]float32) {
	var wv [gemmPanel][32]int32
	var av [32]int32
	for sb := 0; sb < nb/8; sb++ {
		var sum [gemmToks][gemmPanel]int32
		for b := 8 * sb; b < 8*sb+8; b++ {
			p := w[b*q6PanelBlock : (b+1)*q6PanelBlock]
			x := a[b*qActBlock : (b+1)*qActBlock]
			unpackQuads(p, &wv)
			var sc [gemmPanel][2]int32
			for r := range sc {
				sc[r][0] = int32(int16(binary.LittleEndian.Uint16(p[q6PanelSC+panelOffset(r):])))
				sc[r][1] = int32(int16(binary.LittleEndian.Uint16(p[q6PanelSC+64+panelOffset(r):])))
			}
			for t := range sum {
				for k, v := range x[32*t : 32*t+32] {
					av[k] = int32(int8(v))
				}
				bs0 := int32(int16(binary.LittleEndian.Uint16(bs[b*qBsBlock+4*t:])))
				bs1 := int32(int16(binary.LittleEndian.Uint16(bs[b*qBsBlock+4*t+2:])))
				for r := range wv {
					wr := &wv[r]
					var s0, s1 int32
					for k := 0; k < 16; k++ {
						s0 += wr[k] * av[k]
						s1 += wr[16+k] * av[16+k]
					}
					sum[t][r] += sc[r][0]*(s0-32*bs0) + sc[r][1]*(s1-32*bs1)
				}
			}
		}
		p := w[(8*sb+7)*q6PanelBlock : (8*sb+8)*q6PanelBlock]
		x := a[(8*sb+7)*qActBlock : (8*sb+8)*qActBlock]
		for t := range sum {
			da := math.Float32frombits(binary.LittleEndian.Uint32(x[qActScales+8*t:]))
			for r := range sum[t] {
				dw := math.Float32frombits(binary.LittleEndian.Uint32(p[q6PanelD+4*r:]))
				out[gemmPanel*t+r] = fma32(float32(sum[t][r])*dw, da, out[gemmPanel*t+r])
			}
		}
	}
}
