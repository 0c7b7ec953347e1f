package quant

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Dequantize decodes len(dst) elements of type t from src into dst, exactly
// as GGML's reference dequantize_row_* functions (and llama.cpp's gguf-py)
// compute them: the results are bit-identical. len(dst) must be a multiple
// of t's block size and src must hold at least t.RowBytes(len(dst)) bytes.
func Dequantize(t Type, src []byte, dst []float32) error {
	need, err := t.RowBytes(len(dst))
	if err != nil {
		return fmt.Errorf("dequantize: %w", err)
	}
	if len(src) < need {
		return fmt.Errorf("dequantize %s: %d elements need %d bytes, have %d", t, len(dst), need, len(src))
	}
	src = src[:need]
	switch t {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		F16ToF32Slice(dst, src)
	case BF16:
		BF16ToF32Slice(dst, src)
	case Q8_0:
		for i := 0; i < len(dst); i += 32 {
			DequantizeBlockQ8_0((*[34]byte)(src[i/32*34:]), (*[32]float32)(dst[i:]))
		}
	case Q4_0:
		for i := 0; i < len(dst); i += 32 {
			DequantizeBlockQ4_0((*[18]byte)(src[i/32*18:]), (*[32]float32)(dst[i:]))
		}
	case Q5_0:
		for i := 0; i < len(dst); i += 32 {
			DequantizeBlockQ5_0((*[22]byte)(src[i/32*22:]), (*[32]float32)(dst[i:]))
		}
	case Q4_K:
		for i := 0; i < len(dst); i += 256 {
			DequantizeBlockQ4_K((*[144]byte)(src[i/256*144:]), (*[256]float32)(dst[i:]))
		}
	case Q6_K:
		for i := 0; i < len(dst); i += 256 {
			DequantizeBlockQ6_K((*[210]byte)(src[i/256*210:]), (*[256]float32)(dst[i:]))
		}
	default:
		return fmt.Errorf("dequantize: unsupported type %s", t)
	}
	return nil
}

// halfAt reads the little-endian F16 value at b[0:2] as float32.
func halfAt(b []byte) float32 { return f16Table[binary.LittleEndian.Uint16(b)] }

// DequantizeBlockQ8_0 decodes one Q8_0 block: an F16 scale d and 32 int8
// quants q, value = q*d.
func DequantizeBlockQ8_0(b *[34]byte, y *[32]float32) {
	d := halfAt(b[0:])
	for j := range 32 {
		y[j] = float32(int8(b[2+j])) * d
	}
}

// DequantizeBlockQ4_0 decodes one Q4_0 block: an F16 scale d and 32 4-bit
// quants (low nibbles are elements 0..15, high nibbles 16..31), value = (q-8)*d.
func DequantizeBlockQ4_0(b *[18]byte, y *[32]float32) {
	d := halfAt(b[0:])
	qs := b[2:18]
	for j := range 16 {
		y[j] = float32(int32(qs[j]&0x0f)-8) * d
		y[j+16] = float32(int32(qs[j]>>4)-8) * d
	}
}

// DequantizeBlockQ5_0 decodes one Q5_0 block: an F16 scale d, 32 high bits
// qh (bit j belongs to element j) and 32 low nibbles as in Q4_0,
// value = (q-16)*d.
func DequantizeBlockQ5_0(b *[22]byte, y *[32]float32) {
	d := halfAt(b[0:])
	qh := binary.LittleEndian.Uint32(b[2:])
	qs := b[6:22]
	for j := range 16 {
		h0 := byte(qh>>j<<4) & 0x10
		h1 := byte(qh>>(j+12)) & 0x10
		y[j] = float32(int32(qs[j]&0x0f|h0)-16) * d
		y[j+16] = float32(int32(qs[j]>>4|h1)-16) * d
	}
}

// ScaleMinK4 unpacks the 6-bit scale and min of sub-block j (0..7) from the
// 12 packed scale bytes of a Q4_K block.
func ScaleMinK4(j int, q *[12]byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0x0f | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// DequantizeBlockQ4_K decodes one Q4_K super-block of 256 elements: F16 d
// and dmin, 8 sub-blocks of 32 with 6-bit scales and mins, 4-bit quants;
// value = d*scale*q - dmin*min.
func DequantizeBlockQ4_K(b *[144]byte, y *[256]float32) {
	d := halfAt(b[0:])
	dmin := halfAt(b[2:])
	scales := (*[12]byte)(b[4:16])
	qs := b[16:144]
	for g := range 4 { // 64 elements per group: two sub-blocks share 32 bytes
		sc, m := ScaleMinK4(2*g, scales)
		d1, m1 := mul(d, float32(sc)), mul(dmin, float32(m))
		sc, m = ScaleMinK4(2*g+1, scales)
		d2, m2 := mul(d, float32(sc)), mul(dmin, float32(m))
		q := qs[32*g : 32*g+32]
		out := y[64*g : 64*g+64]
		for l := range 32 {
			// mul keeps Go from fusing multiply and subtract into an FMA,
			// so the result rounds as the reference's separate operations.
			out[l] = mul(d1, float32(q[l]&0x0f)) - m1
			out[l+32] = mul(d2, float32(q[l]>>4)) - m2
		}
	}
}

// DequantizeBlockQ6_K decodes one Q6_K super-block of 256 elements: 4-bit
// low quants ql, 2-bit high quants qh, 16 int8 scales and an F16 d;
// value = d*scale*(q-32).
func DequantizeBlockQ6_K(b *[210]byte, y *[256]float32) {
	d := halfAt(b[208:])
	for n := range 2 { // two halves of 128 elements
		ql := b[64*n : 64*n+64]
		qh := b[128+32*n : 128+32*n+32]
		sc := b[192+8*n : 192+8*n+8]
		out := y[128*n : 128*n+128]
		for l := range 32 {
			is := l / 16
			q1 := int32(ql[l]&0x0f|(qh[l]>>0&3)<<4) - 32
			q2 := int32(ql[l+32]&0x0f|(qh[l]>>2&3)<<4) - 32
			q3 := int32(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
			q4 := int32(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
			out[l] = d * float32(int8(sc[is])) * float32(q1)
			out[l+32] = d * float32(int8(sc[is+2])) * float32(q2)
			out[l+64] = d * float32(int8(sc[is+4])) * float32(q3)
			out[l+96] = d * float32(int8(sc[is+6])) * float32(q4)
		}
	}
}
