package quant

import (
	"fmt"
	"math"
)

// Quantize encodes src as type t into dst, bit-identical to GGML's reference
// quantize_row_*_ref functions (what llama-quantize writes when no importance
// matrix is given). Every Type is supported.
// len(src) must be a multiple of t's block size and len(dst) must equal
// t.RowBytes(len(src)).
func Quantize(t Type, src []float32, dst []byte) error {
	need, err := t.RowBytes(len(src))
	if err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	if len(dst) != need {
		return fmt.Errorf("quantize %s: %d elements need %d bytes, dst has %d", t, len(src), need, len(dst))
	}
	switch t {
	case F32:
		for i, v := range src {
			b := math.Float32bits(v)
			dst[4*i], dst[4*i+1], dst[4*i+2], dst[4*i+3] = byte(b), byte(b>>8), byte(b>>16), byte(b>>24)
		}
	case F16:
		for i, v := range src {
			h := F32ToF16(v)
			dst[2*i], dst[2*i+1] = byte(h), byte(h>>8)
		}
	case BF16:
		for i, v := range src {
			h := F32ToBF16(v)
			dst[2*i], dst[2*i+1] = byte(h), byte(h>>8)
		}
	case Q8_0:
		for i := 0; i < len(src); i += 32 {
			QuantizeBlockQ8_0((*[32]float32)(src[i:]), (*[34]byte)(dst[i/32*34:]))
		}
	case Q4_0:
		for i := 0; i < len(src); i += 32 {
			QuantizeBlockQ4_0((*[32]float32)(src[i:]), (*[18]byte)(dst[i/32*18:]))
		}
	case Q5_0:
		for i := 0; i < len(src); i += 32 {
			QuantizeBlockQ5_0((*[32]float32)(src[i:]), (*[22]byte)(dst[i/32*22:]))
		}
	case Q4_K:
		for i := 0; i < len(src); i += 256 {
			QuantizeBlockQ4_K((*[256]float32)(src[i:]), (*[144]byte)(dst[i/256*144:]))
		}
	case Q6_K:
		for i := 0; i < len(src); i += 256 {
			QuantizeBlockQ6_K((*[256]float32)(src[i:]), (*[210]byte)(dst[i/256*210:]))
		}
	default:
		return fmt.Errorf("quantize: no quantizer for %s", t)
	}
	return nil
}

// CanQuantize reports whether Quantize supports target type t.
func CanQuantize(t Type) bool {
	return t.Known()
}

// QuantizeQ8_0 returns src encoded as Q8_0 blocks. len(src) must be a
// multiple of 32; it panics otherwise (use Quantize for an error instead).
func QuantizeQ8_0(src []float32) []byte {
	return mustQuantize(Q8_0, src)
}

// QuantizeQ4_0 returns src encoded as Q4_0 blocks. len(src) must be a
// multiple of 32; it panics otherwise (use Quantize for an error instead).
func QuantizeQ4_0(src []float32) []byte {
	return mustQuantize(Q4_0, src)
}

func mustQuantize(t Type, src []float32) []byte {
	n, err := t.RowBytes(len(src))
	if err != nil {
		panic("quant: " + err.Error())
	}
	dst := make([]byte, n)
	if err := Quantize(t, src, dst); err != nil {
		panic("quant: " + err.Error())
	}
	return dst
}

func putHalf(b []byte, f float32) {
	h := F32ToF16(f)
	b[0], b[1] = byte(h), byte(h>>8)
}

// roundAway rounds to the nearest integer, halves away from zero (C roundf).
func roundAway(x float32) float32 { return float32(math.Round(float64(x))) }

// QuantizeBlockQ8_0 encodes 32 values as one Q8_0 block: d = max|x|/127,
// q = roundf(x/d) — the arithmetic of GGML's quantize_row_q8_0_ref.
func QuantizeBlockQ8_0(x *[32]float32, b *[34]byte) {
	var amax float32
	for _, v := range x {
		amax = max(amax, abs32(v))
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	putHalf(b[0:], d)
	for j, v := range x {
		b[2+j] = byte(int8(roundAway(v * id)))
	}
}

// maxAbsSigned returns the value of largest magnitude in x (the first one
// on ties), as GGML's Q4_0/Q5_0 reference quantizers choose it.
func maxAbsSigned(x *[32]float32) float32 {
	var amax, m float32
	for _, v := range x {
		if a := abs32(v); amax < a {
			amax, m = a, v
		}
	}
	return m
}

// QuantizeBlockQ4_0 encodes 32 values as one Q4_0 block with the arithmetic
// of GGML's quantize_row_q4_0_ref: d = max/-8 where max is the value of
// largest magnitude, q = min(15, trunc(x/d + 8.5)).
func QuantizeBlockQ4_0(x *[32]float32, b *[18]byte) {
	d := maxAbsSigned(x) / -8
	var id float32
	if d != 0 {
		id = 1 / d
	}
	putHalf(b[0:], d)
	for j := range 16 {
		x0 := mul(x[j], id)
		x1 := mul(x[j+16], id)
		q0 := min(15, uint8(int8(x0+8.5)))
		q1 := min(15, uint8(int8(x1+8.5)))
		b[2+j] = q0 | q1<<4
	}
}

// QuantizeBlockQ5_0 encodes 32 values as one Q5_0 block with the arithmetic
// of GGML's quantize_row_q5_0_ref: d = max/-16, q = min(31, trunc(x/d + 16.5)).
func QuantizeBlockQ5_0(x *[32]float32, b *[22]byte) {
	d := maxAbsSigned(x) / -16
	var id float32
	if d != 0 {
		id = 1 / d
	}
	putHalf(b[0:], d)
	var qh uint32
	for j := range 16 {
		x0 := mul(x[j], id)
		x1 := mul(x[j+16], id)
		q0 := min(31, uint8(int8(x0+16.5)))
		q1 := min(31, uint8(int8(x1+16.5)))
		b[6+j] = q0&0x0f | (q1&0x0f)<<4
		qh |= uint32(q0>>4&1) << j
		qh |= uint32(q1>>4&1) << (j + 16)
	}
	b[2], b[3], b[4], b[5] = byte(qh), byte(qh>>8), byte(qh>>16), byte(qh>>24)
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }
