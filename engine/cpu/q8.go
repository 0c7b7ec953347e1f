package cpu

import (
	"encoding/binary"
	"math"

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
	s []float32 // d·Σq per block (for the K-quants' minimum terms)
}

// quantizeQ8 fills a with the Q8 form of x (len(x) a multiple of 32).
func quantizeQ8(x []float32, a *q8Acts) {
	nb := len(x) / 32
	if cap(a.q) < len(x) {
		a.q = make([]int8, len(x))
		a.d = make([]float32, nb)
		a.s = make([]float32, nb)
	}
	a.q, a.d, a.s = a.q[:len(x)], a.d[:nb], a.s[:nb]
	for b := 0; b < nb; b++ {
		xs := x[32*b : 32*b+32]
		var amax float32
		for _, v := range xs {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		var id float32
		if amax != 0 {
			id = 127 / amax // as llama.cpp's AVX2 quantize_row_q8_0
		}
		q := a.q[32*b : 32*b+32]
		sum := 0
		for j, v := range xs {
			q[j] = int8(math.RoundToEven(float64(v * id))) // _MM_ROUND_NEAREST
			sum += int(q[j])
		}
		dh := quant.F16ToF32(quant.F32ToF16(d))
		a.d[b] = dh
		a.s[b] = dh * float32(sum)
	}
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
	var sum float32
	for b := 0; b < len(a.d)/8; b++ {
		blk := w[144*b : 144*b+144]
		d := t[binary.LittleEndian.Uint16(blk)]
		dmin := t[binary.LittleEndian.Uint16(blk[2:])]
		scales := blk[4:16]
		qs := blk[16:144]
		for j := 0; j < 4; j++ {
			for h := 0; h < 2; h++ {
				sb := 8*b + 2*j + h // activation block
				sc, m := q4kScaleMin(2*j+h, scales)
				q := a.q[32*sb : 32*sb+32]
				var s int32
				for l := 0; l < 32; l++ {
					s += int32((qs[32*j+l]>>(4*h))&0xf) * int32(q[l])
				}
				sum += d*float32(sc)*a.d[sb]*float32(s) - dmin*float32(m)*a.s[sb]
			}
		}
	}
	return sum
}

func dotQ6_KQ8Generic(w []byte, a *q8Acts) float32 {
	t := f16Table()
	var sum float32
	for b := 0; b < len(a.d)/8; b++ {
		blk := w[210*b : 210*b+210]
		d := t[binary.LittleEndian.Uint16(blk[208:])]
		for n := 0; n < 2; n++ {
			ql := blk[64*n : 64*n+64]
			qh := blk[128+32*n : 128+32*n+32]
			sc := blk[192+8*n : 192+8*n+8]
			// Four activation blocks of 32: values l, l+32, l+64, l+96.
			var s [8]int32 // per 16 values
			base := 8*b + 4*n
			for l := 0; l < 32; l++ {
				q1 := int32(ql[l]&0xf|(qh[l]&3)<<4) - 32
				q2 := int32(ql[l+32]&0xf|((qh[l]>>2)&3)<<4) - 32
				q3 := int32(ql[l]>>4|((qh[l]>>4)&3)<<4) - 32
				q4 := int32(ql[l+32]>>4|((qh[l]>>6)&3)<<4) - 32
				h := l / 16
				s[h] += q1 * int32(a.q[32*base+l])
				s[2+h] += q2 * int32(a.q[32*(base+1)+l])
				s[4+h] += q3 * int32(a.q[32*(base+2)+l])
				s[6+h] += q4 * int32(a.q[32*(base+3)+l])
			}
			for i := 0; i < 8; i++ {
				sum += d * a.d[base+i/2] * float32(int32(int8(sc[i]))*s[i])
			}
		}
	}
	return sum
}
