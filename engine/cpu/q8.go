package cpu

import (
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/phi4mac/phi4mac/engine/quant"
)

// Activations quantised to 8 bits, as llama.cpp does for its quantized dot
// products: blocks of 32 values, each with a scale d (rounded to half
// precision like llama.cpp's block_q8_0) and int8 values q, x ≈ d·q. Dot
// products of quantized weights with them run on integer SIMD instructions,
// several times faster than converting every weight to float32; the price
// is a relative error of about 0.4% per activation, the same llama.cpp pays.
type q8Acts struct {
	q []int8
	d []float32
	s []float32 // d·Σq per block (for the −8 offset of the AVX2 Q4_0 kernels)
	// pairs holds the same values regrouped for the Q4_0 kernel, one
	// 96-byte record per pair of blocks b0, b1 (see packPairs); nil when
	// the number of blocks is odd.
	pairs []byte
	mem   []byte // backing store of pairs, with room to align it
	// k is the same vector in Q8_K form, for the K-quant formats (see
	// usesQ8K); products quantise only the form their weights use.
	k q8KActs
}

// q8KActs is an activation vector in llama.cpp's Q8_K form, which its dot
// products with the K-quants (Q4_K, Q6_K) use: blocks of 256 int8 values
// with one float32 scale each (x ≈ d·q) and the sums of every 16 values.
// One scale per 256 values lets those kernels sum a whole block in integers
// and convert once, where per-32 scales would cost a conversion and a
// multiply every 32 values.
type q8KActs struct {
	q     []int8
	d     []float32 // per block of 256
	bsums []int16   // Σq per 16 values
}

// usesQ8K reports whether the dot products with weights of type t take
// their activations in Q8_K form (q8Acts.k) rather than Q8_0 blocks.
func usesQ8K(t quant.Type) bool { return t == quant.Q4_K || t == quant.Q6_K }

// resize makes a hold n values (n a multiple of 256).
func (a *q8KActs) resize(n int) {
	nb := n / 256
	if cap(a.q) < n {
		a.q = make([]int8, n)
		a.d = make([]float32, nb)
		a.bsums = make([]int16, 16*nb)
	}
	a.q, a.d, a.bsums = a.q[:n], a.d[:nb], a.bsums[:16*nb]
}

// quantizeQ8K fills a with the Q8_K form of x (len(x) a multiple of 256),
// rounding as llama.cpp's quantize_row_q8_K_ref does: the scale is
// −max/127 for the value max of largest magnitude, values round to the
// nearest integer (ties to even) and are clamped to 127.
func quantizeQ8K(x []float32, a *q8KActs) {
	nb := len(x) / 256
	a.resize(len(x))
	for b := 0; b < nb; b++ {
		xs := x[256*b : 256*b+256]
		q := a.q[256*b : 256*b+256]
		sums := a.bsums[16*b : 16*b+16]
		var amax, mx float32
		for _, v := range xs {
			if av := float32(math.Abs(float64(v))); av > amax {
				amax, mx = av, v
			}
		}
		if amax == 0 {
			a.d[b] = 0
			clear(q)
			clear(sums)
			continue
		}
		iscale := -127 / mx
		for j, v := range xs {
			q[j] = int8(min(127, math.RoundToEven(float64(iscale*v))))
		}
		for j := range sums {
			var s int16
			for _, v := range q[16*j : 16*j+16] {
				s += int16(v)
			}
			sums[j] = s
		}
		a.d[b] = 1 / iscale
	}
}

// pairRecord is the size of one record of q8Acts.pairs.
const pairRecord = 96

// packPairs fills a.pairs: for each pair of blocks b0, b1, the first 16
// values of b0 then the first 16 of b1 (32 bytes), the last 16 of b0 then
// the last 16 of b1 (32 bytes), and the scales as 8 float32s: d(b0) four
// times, then d(b1) four times. A Q4_0 kernel can then multiply the low
// and high nibbles of two weight blocks, loaded side by side in one
// vector, with two contiguous activation vectors, and scale the four
// partial sums of each block at once. The array starts 64-byte aligned,
// so each 96-byte record starts 32-byte aligned.
func packPairs(a *q8Acts) {
	nb := len(a.d)
	if nb%2 != 0 {
		a.pairs = nil
		return
	}
	n := nb / 2 * pairRecord
	if cap(a.mem) < n+64 {
		a.mem = make([]byte, n+64)
	}
	off := int(-uintptr(unsafe.Pointer(unsafe.SliceData(a.mem))) & 63)
	a.pairs = a.mem[off : off+n]
	q := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(a.q))), len(a.q))
	for p := 0; p < nb/2; p++ {
		rec := a.pairs[p*pairRecord : (p+1)*pairRecord]
		src := q[64*p : 64*p+64]
		copy(rec[0:16], src[0:16])
		copy(rec[16:32], src[32:48])
		copy(rec[32:48], src[16:32])
		copy(rec[48:64], src[48:64])
		d0, d1 := math.Float32bits(a.d[2*p]), math.Float32bits(a.d[2*p+1])
		for i := 0; i < 4; i++ {
			binary.LittleEndian.PutUint32(rec[64+4*i:], d0)
			binary.LittleEndian.PutUint32(rec[80+4*i:], d1)
		}
	}
}

// resize makes a hold n values (n a multiple of 32).
func (a *q8Acts) resize(n int) {
	nb := n / 32
	if cap(a.q) < n {
		a.q = make([]int8, n)
		a.d = make([]float32, nb)
		a.s = make([]float32, nb)
	}
	a.q, a.d, a.s = a.q[:n], a.d[:nb], a.s[:nb]
}

// setScale records block b's scale from its largest magnitude amax
// (amax/127 rounded to half precision, as llama.cpp's block_q8_0 stores
// it) and the sum of its quantised values.
func (a *q8Acts) setScale(b int, amax float32, sum int32) {
	d := quant.F16ToF32(quant.F32ToF16(amax / 127))
	a.d[b] = d
	a.s[b] = d * float32(sum)
}

// quantizeQ8 fills a with the Q8 form of x (len(x) a multiple of 32): the
// pure-Go kernel (kernels.quantizeQ8).
func quantizeQ8(x []float32, a *q8Acts) {
	nb := len(x) / 32
	a.resize(len(x))
	for b := 0; b < nb; b++ {
		xs := x[32*b : 32*b+32]
		var amax float32
		for _, v := range xs {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		var id float32
		if amax != 0 {
			id = 127 / amax // as llama.cpp's AVX2 quantize_row_q8_0
		}
		q := a.q[32*b : 32*b+32]
		var sum int32
		for j, v := range xs {
			q[j] = int8(math.RoundToEven(float64(v * id))) // _MM_ROUND_NEAREST
			sum += int32(q[j])
		}
		a.setScale(b, amax, sum)
	}
	packPairs(a)
}

// Pure-Go dot products of weight rows with Q8 activations.

func dotQ8_0Q8Generic(w []byte, a *q8Acts) float32 {
	t := f16Table()
	var sum float32
	for b := range a.d {
		blk := w[34*b : 34*b+34]
		q := a.q[32*b : 32*b+32]
		var s int32
		for j := 0; j < 32; j++ {
			s += int32(int8(blk[2+j])) * int32(q[j])
		}
		sum += t[binary.LittleEndian.Uint16(blk)] * a.d[b] * float32(s)
	}
	return sum
}

func dotQ4_0Q8Generic(w []byte, a *q8Acts) float32 {
	t := f16Table()
	var sum float32
	for b := range a.d {
		blk := w[18*b : 18*b+18]
		q := a.q[32*b : 32*b+32]
		var s int32
		for j := 0; j < 16; j++ {
			s += (int32(blk[2+j]&0xf) - 8) * int32(q[j])
			s += (int32(blk[2+j]>>4) - 8) * int32(q[j+16])
		}
		sum += t[binary.LittleEndian.Uint16(blk)] * a.d[b] * float32(s)
	}
	return sum
}

func dotQ5_0Q8Generic(w []byte, a *q8Acts) float32 {
	t := f16Table()
	var sum float32
	for b := range a.d {
		blk := w[22*b : 22*b+22]
		qh := binary.LittleEndian.Uint32(blk[2:])
		q := a.q[32*b : 32*b+32]
		var s int32
		for j := 0; j < 16; j++ {
			lo := int32(blk[6+j]&0xf) | int32((qh>>j)&1)<<4
			hi := int32(blk[6+j]>>4) | int32((qh>>(j+16))&1)<<4
			s += (lo-16)*int32(q[j]) + (hi-16)*int32(q[j+16])
		}
		sum += t[binary.LittleEndian.Uint16(blk)] * a.d[b] * float32(s)
	}
	return sum
}

func dotQ4_KQ8Generic(w []byte, a *q8Acts) float32 {
	t := f16Table()
	k := &a.k
	var sum float32
	for b := range k.d {
		blk := w[144*b : 144*b+144]
		d := t[binary.LittleEndian.Uint16(blk)]
		dmin := t[binary.LittleEndian.Uint16(blk[2:])]
		scales := blk[4:16]
		qs := blk[16:144]
		q := k.q[256*b : 256*b+256]
		var si, mi int32 // Σ sc·Σq·a and Σ m·Σa over the sub-blocks
		for j := 0; j < 8; j++ {
			sc, m := q4kScaleMin(j, scales)
			shift := 4 * uint(j%2)
			src := qs[32*(j/2) : 32*(j/2)+32]
			var s int32
			for l, v := range src {
				s += int32((v>>shift)&0xf) * int32(q[32*j+l])
			}
			si += int32(sc) * s
			mi += int32(m) * int32(k.bsums[16*b+2*j]+k.bsums[16*b+2*j+1])
		}
		sum += k.d[b] * (d*float32(si) - dmin*float32(mi))
	}
	return sum
}

func dotQ6_KQ8Generic(w []byte, a *q8Acts) float32 {
	t := f16Table()
	k := &a.k
	var sum float32
	for b := range k.d {
		blk := w[210*b : 210*b+210]
		d := t[binary.LittleEndian.Uint16(blk[208:])]
		q := k.q[256*b : 256*b+256]
		var si int32
		for n := 0; n < 2; n++ {
			ql := blk[64*n : 64*n+64]
			qh := blk[128+32*n : 128+32*n+32]
			sc := blk[192+8*n : 192+8*n+8]
			qa := q[128*n : 128*n+128]
			var s [8]int32 // per 16 values
			for l := 0; l < 32; l++ {
				q1 := int32(ql[l]&0xf|(qh[l]&3)<<4) - 32
				q2 := int32(ql[l+32]&0xf|((qh[l]>>2)&3)<<4) - 32
				q3 := int32(ql[l]>>4|((qh[l]>>4)&3)<<4) - 32
				q4 := int32(ql[l+32]>>4|((qh[l]>>6)&3)<<4) - 32
				h := l / 16
				s[h] += q1 * int32(qa[l])
				s[2+h] += q2 * int32(qa[l+32])
				s[4+h] += q3 * int32(qa[l+64])
				s[6+h] += q4 * int32(qa[l+96])
			}
			for i := range s {
				si += int32(int8(sc[i])) * s[i]
			}
		}
		sum += d * k.d[b] * float32(si)
	}
	return sum
}
