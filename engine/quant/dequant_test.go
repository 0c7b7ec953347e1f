package quant

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The functions below restate each block layout element by element, in the
// form of the GGUF format description, as an independent check of the
// loop-structured decoders.

func refQ4K(b []byte, i int) float32 {
	d, dmin := F16ToF32(uint16(b[0])|uint16(b[1])<<8), F16ToF32(uint16(b[2])|uint16(b[3])<<8)
	s := b[4:16]
	sb := i / 32 // sub-block 0..7
	var sc, m uint8
	if sb < 4 {
		sc, m = s[sb]&0x3f, s[sb+4]&0x3f
	} else { // low 4 bits in bytes 8..11, high 2 bits in the top of bytes 0..7
		sc = s[sb+4]&0x0f | (s[sb-4]>>6)<<4
		m = s[sb+4]>>4 | (s[sb]>>6)<<4
	}
	qbyte := b[16+32*(i/64)+i%32]
	q := qbyte & 0x0f
	if sb%2 == 1 {
		q = qbyte >> 4
	}
	return float32(d*float32(sc)*float32(q)) - dmin*float32(m)
}

func refQ6K(b []byte, i int) float32 {
	d := F16ToF32(uint16(b[208]) | uint16(b[209])<<8)
	n, r := i/128, i%128
	quarter, l := r/32, r%32
	lb := b[64*n+l+32*(quarter&1)]
	low := lb & 0x0f
	if quarter >= 2 {
		low = lb >> 4
	}
	high := (b[128+32*n+l] >> (2 * quarter)) & 3
	sc := int8(b[192+8*n+l/16+2*quarter])
	return d * float32(sc) * float32(int32(low|high<<4)-32)
}

func refQ5_0(b []byte, i int) float32 {
	d := F16ToF32(uint16(b[0]) | uint16(b[1])<<8)
	qh := uint32(b[2]) | uint32(b[3])<<8 | uint32(b[4])<<16 | uint32(b[5])<<24
	q := b[6+i%16] & 0x0f
	if i >= 16 {
		q = b[6+i%16] >> 4
	}
	q |= byte(qh>>i&1) << 4
	return float32(int32(q)-16) * d
}

func refQ4_0(b []byte, i int) float32 {
	d := F16ToF32(uint16(b[0]) | uint16(b[1])<<8)
	q := b[2+i%16] & 0x0f
	if i >= 16 {
		q = b[2+i%16] >> 4
	}
	return float32(int32(q)-8) * d
}

func refQ8_0(b []byte, i int) float32 {
	return float32(int8(b[2+i])) * F16ToF32(uint16(b[0])|uint16(b[1])<<8)
}

func TestDequantizeMatchesLayoutSpec(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		typ   Type
		ref   func([]byte, int) float32
		halfs []int // offsets of F16 scales to keep finite
	}{
		{Q8_0, refQ8_0, []int{0}},
		{Q4_0, refQ4_0, []int{0}},
		{Q5_0, refQ5_0, []int{0}},
		{Q4_K, refQ4K, []int{0, 2}},
		{Q6_K, refQ6K, []int{208}},
	}
	for _, tc := range tests {
		t.Run(tc.typ.String(), func(t *testing.T) {
			const blocks = 64
			bs, bb := tc.typ.BlockSize(), tc.typ.BlockBytes()
			src := make([]byte, blocks*bb)
			for i := range src {
				src[i] = byte(rng.Uint32())
			}
			for blk := range blocks {
				for _, off := range tc.halfs {
					h := F32ToF16(float32(rng.NormFloat64()) * 0.01)
					src[blk*bb+off], src[blk*bb+off+1] = byte(h), byte(h>>8)
				}
			}
			dst := make([]float32, blocks*bs)
			if err := Dequantize(tc.typ, src, dst); err != nil {
				t.Fatal(err)
			}
			for i, got := range dst {
				blk := i / bs
				want := tc.ref(src[blk*bb:(blk+1)*bb], i%bs)
				if got != want {
					t.Fatalf("element %d: %v, want %v", i, got, want)
				}
			}
		})
	}
}

func TestDequantizeErrors(t *testing.T) {
	dst := make([]float32, 32)
	if err := Dequantize(Q8_0, make([]byte, 33), dst); err == nil {
		t.Error("short source: no error")
	}
	if err := Dequantize(Q4_K, make([]byte, 144), dst); err == nil {
		t.Error("32 elements of Q4_K: no error")
	}
	if err := Dequantize(Type(99), nil, dst); err == nil {
		t.Error("unknown type: no error")
	}
	if err := Quantize(Q6_K, dst, make([]byte, 210)); err == nil {
		t.Error("Q6_K quantize: no error")
	}
	if err := Quantize(Q8_0, dst, make([]byte, 33)); err == nil {
		t.Error("wrong dst size: no error")
	}
}

// TestQuantizeRoundTrip checks quantize→dequantize error bounds and the
// edge cases of the reference quantizers (all-zero blocks, ties).
func TestQuantizeRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, 32*100)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	copy(x[:32], make([]float32, 32)) // an all-zero block
	for _, tc := range []struct {
		typ   Type
		bound float64 // max error / block absmax
	}{{Q8_0, 0.5/127 + 1e-3}, {Q4_0, 1.0/8 + 1e-3}, {Q5_0, 1.0/16 + 1e-3}, {F16, 1e-3}, {BF16, 1.0 / 128}} {
		size, _ := tc.typ.RowBytes(len(x))
		q := make([]byte, size)
		if err := Quantize(tc.typ, x, q); err != nil {
			t.Fatal(err)
		}
		y := make([]float32, len(x))
		if err := Dequantize(tc.typ, q, y); err != nil {
			t.Fatal(err)
		}
		for b := 0; b < len(x); b += 32 {
			var amax float32
			for _, v := range x[b : b+32] {
				amax = max(amax, abs32(v))
			}
			for i := b; i < b+32; i++ {
				if e := abs32(y[i] - x[i]); float64(e) > tc.bound*float64(amax) {
					t.Fatalf("%s: element %d: %v -> %v", tc.typ, i, x[i], y[i])
				}
			}
		}
	}
	// The largest-magnitude value of a Q4_0 block maps to -8 exactly.
	blk := QuantizeQ4_0([]float32{-3, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	if blk[2]&0x0f != 0 || F16ToF32(uint16(blk[0])|uint16(blk[1])<<8) != 0.375 {
		t.Errorf("Q4_0 block %x", blk)
	}
}

func TestKQuantRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	x := make([]float32, 256*16)
	for i := range x {
		x[i] = float32(rng.NormFloat64()) * 0.02
	}
	copy(x[256:512], make([]float32, 256)) // an all-zero super-block
	for _, tc := range []struct {
		typ    Type
		maxRMS float64
	}{{Q4_K, 0.09}, {Q6_K, 0.025}} {
		size, _ := tc.typ.RowBytes(len(x))
		q := make([]byte, size)
		if err := Quantize(tc.typ, x, q); err != nil {
			t.Fatal(err)
		}
		y := make([]float32, len(x))
		if err := Dequantize(tc.typ, q, y); err != nil {
			t.Fatal(err)
		}
		var e2, x2 float64
		for i := range x {
			d := float64(y[i] - x[i])
			e2 += d * d
			x2 += float64(x[i]) * float64(x[i])
		}
		if rms := math.Sqrt(e2 / x2); rms > tc.maxRMS {
			t.Errorf("%s: relative RMS error %.4f > %.4f", tc.typ, rms, tc.maxRMS)
		}
		for i := 256; i < 512; i++ {
			if y[i] != 0 {
				t.Fatalf("%s: zero block decodes to %v", tc.typ, y[i])
			}
		}
	}
}
