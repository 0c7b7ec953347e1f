package cpu

import (
	"encoding/binary"
	"math"

	"github.com/phi4mac/phi4mac/engine/quant"
)

// The pure-Go kernels. Every SIMD kernel has a counterpart here and is tested
// against it; these are also what non-amd64 builds run.

func dotF32Generic(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func dotF16Generic(w []byte, x []float32) float32 {
	t := f16Table()
	w = w[:2*len(x)]
	var s0, s1 float32
	i := 0
	for ; i+2 <= len(x); i += 2 {
		s0 += t[binary.LittleEndian.Uint16(w[2*i:])] * x[i]
		s1 += t[binary.LittleEndian.Uint16(w[2*i+2:])] * x[i+1]
	}
	for ; i < len(x); i++ {
		s0 += t[binary.LittleEndian.Uint16(w[2*i:])] * x[i]
	}
	return s0 + s1
}

func dotBF16Generic(w []byte, x []float32) float32 {
	w = w[:2*len(x)]
	var s0, s1 float32
	i := 0
	for ; i+2 <= len(x); i += 2 {
		s0 += quant.BF16ToF32(binary.LittleEndian.Uint16(w[2*i:])) * x[i]
		s1 += quant.BF16ToF32(binary.LittleEndian.Uint16(w[2*i+2:])) * x[i+1]
	}
	for ; i < len(x); i++ {
		s0 += quant.BF16ToF32(binary.LittleEndian.Uint16(w[2*i:])) * x[i]
	}
	return s0 + s1
}

func dotQ8_0Generic(w []byte, x []float32) float32 {
	t := f16Table()
	var sum float32
	for b := 0; b < len(x)/32; b++ {
		blk := w[34*b : 34*b+34]
		xs := x[32*b : 32*b+32]
		var s0, s1 float32
		for j := 0; j < 32; j += 2 {
			s0 += float32(int8(blk[2+j])) * xs[j]
			s1 += float32(int8(blk[3+j])) * xs[j+1]
		}
		sum += t[binary.LittleEndian.Uint16(blk)] * (s0 + s1)
	}
	return sum
}

func dotQ4_0Generic(w []byte, x []float32) float32 {
	t := f16Table()
	var sum float32
	for b := 0; b < len(x)/32; b++ {
		blk := w[18*b : 18*b+18]
		xs := x[32*b : 32*b+32]
		var s0, s1 float32
		for j := 0; j < 16; j++ {
			q := blk[2+j]
			s0 += float32(int(q&0xf)-8) * xs[j]
			s1 += float32(int(q>>4)-8) * xs[j+16]
		}
		sum += t[binary.LittleEndian.Uint16(blk)] * (s0 + s1)
	}
	return sum
}

func dotQ5_0Generic(w []byte, x []float32) float32 {
	t := f16Table()
	var sum float32
	for b := 0; b < len(x)/32; b++ {
		blk := w[22*b : 22*b+22]
		xs := x[32*b : 32*b+32]
		qh := binary.LittleEndian.Uint32(blk[2:])
		var s0, s1 float32
		for j := 0; j < 16; j++ {
			q := blk[6+j]
			lo := int(q&0xf) | int((qh>>j)&1)<<4
			hi := int(q>>4) | int((qh>>(j+16))&1)<<4
			s0 += float32(lo-16) * xs[j]
			s1 += float32(hi-16) * xs[j+16]
		}
		sum += t[binary.LittleEndian.Uint16(blk)] * (s0 + s1)
	}
	return sum
}

// q4kScaleMin returns the 6-bit scale and min of sub-block j (0..7) of a
// Q4_K block's 12 packed scale bytes.
func q4kScaleMin(j int, s []byte) (sc, m uint8) {
	if j < 4 {
		return s[j] & 63, s[j+4] & 63
	}
	return s[j+4]&0xf | (s[j-4]>>6)<<4, s[j+4]>>4 | (s[j]>>6)<<4
}

func dotQ4_KGeneric(w []byte, x []float32) float32 {
	t := f16Table()
	var sum float32
	for b := 0; b < len(x)/256; b++ {
		blk := w[144*b : 144*b+144]
		xs := x[256*b : 256*b+256]
		d := t[binary.LittleEndian.Uint16(blk)]
		dmin := t[binary.LittleEndian.Uint16(blk[2:])]
		scales := blk[4:16]
		qs := blk[16:144]
		for j := 0; j < 4; j++ { // 64 values per step: two sub-blocks
			sc1, m1 := q4kScaleMin(2*j, scales)
			sc2, m2 := q4kScaleMin(2*j+1, scales)
			q := qs[32*j : 32*j+32]
			x1 := xs[64*j : 64*j+32]
			x2 := xs[64*j+32 : 64*j+64]
			var a1, a2, xs1, xs2 float32
			for l := 0; l < 32; l++ {
				a1 += float32(q[l]&0xf) * x1[l]
				a2 += float32(q[l]>>4) * x2[l]
				xs1 += x1[l]
				xs2 += x2[l]
			}
			sum += d*float32(sc1)*a1 - dmin*float32(m1)*xs1
			sum += d*float32(sc2)*a2 - dmin*float32(m2)*xs2
		}
	}
	return sum
}

func dotQ6_KGeneric(w []byte, x []float32) float32 {
	t := f16Table()
	var sum float32
	for b := 0; b < len(x)/256; b++ {
		blk := w[210*b : 210*b+210]
		xs := x[256*b : 256*b+256]
		d := t[binary.LittleEndian.Uint16(blk[208:])]
		for n := 0; n < 2; n++ {
			ql := blk[64*n : 64*n+64]
			qh := blk[128+32*n : 128+32*n+32]
			sc := blk[192+8*n : 192+8*n+8]
			y := xs[128*n : 128*n+128]
			var acc [8]float32 // per 16-value group: scale index
			for l := 0; l < 32; l++ {
				is := l / 16
				q1 := int(ql[l]&0xf|(qh[l]&3)<<4) - 32
				q2 := int(ql[l+32]&0xf|((qh[l]>>2)&3)<<4) - 32
				q3 := int(ql[l]>>4|((qh[l]>>4)&3)<<4) - 32
				q4 := int(ql[l+32]>>4|((qh[l]>>6)&3)<<4) - 32
				acc[is] += float32(q1) * y[l]
				acc[is+2] += float32(q2) * y[l+32]
				acc[is+4] += float32(q3) * y[l+64]
				acc[is+6] += float32(q4) * y[l+96]
			}
			for i := range acc {
				sum += d * float32(int8(sc[i])) * acc[i]
			}
		}
	}
	return sum
}

// Dequantisation of a whole row (len(dst) elements) into float32.

func dequantF32(w []byte, dst []float32) {
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(w[4*i:]))
	}
}

func dequantF16Generic(w []byte, dst []float32) {
	t := f16Table()
	for i := range dst {
		dst[i] = t[binary.LittleEndian.Uint16(w[2*i:])]
	}
}

func dequantBF16(w []byte, dst []float32) {
	for i := range dst {
		dst[i] = quant.BF16ToF32(binary.LittleEndian.Uint16(w[2*i:]))
	}
}

func dequantQ8_0(w []byte, dst []float32) {
	t := f16Table()
	for b := 0; b < len(dst)/32; b++ {
		blk := w[34*b : 34*b+34]
		d := t[binary.LittleEndian.Uint16(blk)]
		y := dst[32*b : 32*b+32]
		for j := range y {
			y[j] = float32(int8(blk[2+j])) * d
		}
	}
}

func dequantQ4_0(w []byte, dst []float32) {
	t := f16Table()
	for b := 0; b < len(dst)/32; b++ {
		blk := w[18*b : 18*b+18]
		d := t[binary.LittleEndian.Uint16(blk)]
		y := dst[32*b : 32*b+32]
		for j := 0; j < 16; j++ {
			y[j] = float32(int(blk[2+j]&0xf)-8) * d
			y[j+16] = float32(int(blk[2+j]>>4)-8) * d
		}
	}
}

func dequantQ5_0(w []byte, dst []float32) {
	t := f16Table()
	for b := 0; b < len(dst)/32; b++ {
		blk := w[22*b : 22*b+22]
		d := t[binary.LittleEndian.Uint16(blk)]
		qh := binary.LittleEndian.Uint32(blk[2:])
		y := dst[32*b : 32*b+32]
		for j := 0; j < 16; j++ {
			q := blk[6+j]
			lo := int(q&0xf) | int((qh>>j)&1)<<4
			hi := int(q>>4) | int((qh>>(j+16))&1)<<4
			y[j] = float32(lo-16) * d
			y[j+16] = float32(hi-16) * d
		}
	}
}

func dequantQ4_K(w []byte, dst []float32) {
	t := f16Table()
	for b := 0; b < len(dst)/256; b++ {
		blk := w[144*b : 144*b+144]
		d := t[binary.LittleEndian.Uint16(blk)]
		dmin := t[binary.LittleEndian.Uint16(blk[2:])]
		scales := blk[4:16]
		qs := blk[16:144]
		y := dst[256*b : 256*b+256]
		for j := 0; j < 4; j++ {
			sc1, m1 := q4kScaleMin(2*j, scales)
			sc2, m2 := q4kScaleMin(2*j+1, scales)
			d1, mm1 := d*float32(sc1), dmin*float32(m1)
			d2, mm2 := d*float32(sc2), dmin*float32(m2)
			q := qs[32*j : 32*j+32]
			y1 := y[64*j : 64*j+32][:len(q)]
			y2 := y[64*j+32 : 64*j+64][:len(q)]
			for l, v := range q {
				y1[l] = d1*float32(v&0xf) - mm1
				y2[l] = d2*float32(v>>4) - mm2
			}
		}
	}
}

func dequantQ6_K(w []byte, dst []float32) {
	t := f16Table()
	for b := 0; b < len(dst)/256; b++ {
		blk := w[210*b : 210*b+210]
		d := t[binary.LittleEndian.Uint16(blk[208:])]
		y0 := dst[256*b : 256*b+256]
		for n := 0; n < 2; n++ {
			ql := blk[64*n : 64*n+64]
			qh := blk[128+32*n : 128+32*n+32]
			sc := blk[192+8*n : 192+8*n+8]
			y := y0[128*n : 128*n+128]
			for is := 0; is < 2; is++ {
				// Values 16is..16is+15 of each of the four 32-value groups.
				s1 := d * float32(int8(sc[is]))
				s2 := d * float32(int8(sc[is+2]))
				s3 := d * float32(int8(sc[is+4]))
				s4 := d * float32(int8(sc[is+6]))
				lo, hi := ql[16*is:16*is+16], ql[32+16*is:32+16*is+16]
				h := qh[16*is : 16*is+16][:len(lo)]
				hi = hi[:len(lo)]
				y1 := y[16*is : 16*is+16][:len(lo)]
				y2 := y[32+16*is : 32+16*is+16][:len(lo)]
				y3 := y[64+16*is : 64+16*is+16][:len(lo)]
				y4 := y[96+16*is : 96+16*is+16][:len(lo)]
				for l, a := range lo {
					b, c := hi[l], h[l]
					y1[l] = s1 * float32(int(a&0xf|(c&3)<<4)-32)
					y2[l] = s2 * float32(int(b&0xf|((c>>2)&3)<<4)-32)
					y3[l] = s3 * float32(int(a>>4|((c>>4)&3)<<4)-32)
					y4[l] = s4 * float32(int(b>>4|((c>>6)&3)<<4)-32)
				}
			}
		}
	}
}

// axpyF32Generic computes y += a·x.
func axpyF32Generic(a float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += a * v
	}
}

// axpyF16Generic computes y += a·x where x holds len(y) half floats.
func axpyF16Generic(a float32, x []byte, y []float32) {
	t := f16Table()
	x = x[:2*len(y)]
	for i := range y {
		y[i] += a * t[binary.LittleEndian.Uint16(x[2*i:])]
	}
}

// f32ToF16RowGeneric converts src to half floats in dst (2·len(src) bytes).
func f32ToF16RowGeneric(src []float32, dst []byte) {
	dst = dst[:2*len(src)]
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], quant.F32ToF16(v))
	}
}
