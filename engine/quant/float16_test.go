package quant

import (
	"math"
	"testing"
)

func TestF16RoundTripAllBits(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		f := F16ToF32(h)
		if f != f16ToF32Bits(h) && !(isNaN32(f) && isNaN32(f16ToF32Bits(h))) {
			t.Fatalf("table[%#04x] = %v, arithmetic %v", h, f, f16ToF32Bits(h))
		}
		back := F32ToF16(f)
		if isNaN32(f) {
			if back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %#04x -> %#04x is not NaN", h, back)
			}
			continue
		}
		if back != h {
			t.Fatalf("%#04x -> %v -> %#04x", h, f, back)
		}
	}
}

func TestF16KnownValues(t *testing.T) {
	tests := []struct {
		h uint16
		f float32
	}{
		{0x0000, 0}, {0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, 1.0 / (1 << 24)},
		{0x0400, 1.0 / (1 << 14)}, {0x3555, 0.333251953125}, {0x7c00, float32(math.Inf(1))},
	}
	for _, tc := range tests {
		if got := F16ToF32(tc.h); got != tc.f {
			t.Errorf("F16ToF32(%#04x) = %v, want %v", tc.h, got, tc.f)
		}
		if got := F32ToF16(tc.f); got != tc.h {
			t.Errorf("F32ToF16(%v) = %#04x, want %#04x", tc.f, got, tc.h)
		}
	}
	// Rounding at the edges.
	for _, tc := range []struct {
		f float32
		h uint16
	}{
		{65520, 0x7c00},               // halfway past max rounds (to even) to Inf
		{65519.99, 0x7bff},            // just below stays finite
		{1e-9, 0},                     // underflow to zero
		{-1e-9, 0x8000},               // negative zero
		{1.0 / (1 << 25), 0},          // exactly half the smallest subnormal: ties to even (0)
		{1.5 / (1 << 24), 0x0002},     // 1.5 ulp ties to even (2)
		{float32(math.NaN()), 0x7e00}, // quiet NaN
	} {
		if got := F32ToF16(tc.f); got != tc.h {
			t.Errorf("F32ToF16(%v) = %#04x, want %#04x", tc.f, got, tc.h)
		}
	}
}

// TestF32ToF16RoundsToNearestEven checks every midpoint between adjacent
// finite halves and its float32 neighbours.
func TestF32ToF16RoundsToNearestEven(t *testing.T) {
	for h := uint16(0); h < 0x7bff; h++ {
		lo, hi := F16ToF32(h), F16ToF32(h+1)
		mid := float32((float64(lo) + float64(hi)) / 2) // exact in float32
		even := h
		if h&1 == 1 {
			even = h + 1
		}
		for _, sign := range []uint16{0, 0x8000} {
			s := float32(1)
			if sign != 0 {
				s = -1
			}
			if got := F32ToF16(s * mid); got != sign|even {
				t.Fatalf("F32ToF16(%v) = %#04x, want %#04x", s*mid, got, sign|even)
			}
			below := math.Nextafter32(mid, 0)
			if got := F32ToF16(s * below); got != sign|h {
				t.Fatalf("F32ToF16(%v) = %#04x, want %#04x", s*below, got, sign|h)
			}
			above := math.Nextafter32(mid, float32(math.Inf(1)))
			if got := F32ToF16(s * above); got != sign|(h+1) {
				t.Fatalf("F32ToF16(%v) = %#04x, want %#04x", s*above, got, sign|(h+1))
			}
		}
	}
}

func TestBF16(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		f := BF16ToF32(h)
		if isNaN32(f) {
			if !isNaN32(BF16ToF32(F32ToBF16(f))) {
				t.Fatalf("NaN %#04x lost", h)
			}
			continue
		}
		if back := F32ToBF16(f); back != h {
			t.Fatalf("%#04x -> %v -> %#04x", h, f, back)
		}
	}
	for _, tc := range []struct {
		bits uint32
		want uint16
	}{
		{0x3f808000, 0x3f80}, // tie, even below
		{0x3f818000, 0x3f82}, // tie, odd below: up
		{0x3f808001, 0x3f81}, // above tie
		{0x7f7fffff, 0x7f80}, // max float rounds to Inf
		{0x7fc00001, 0x7fc0}, // NaN stays NaN
		{0x7f800001, 0x7fc0}, // signalling NaN becomes quiet
	} {
		if got := F32ToBF16(math.Float32frombits(tc.bits)); got != tc.want {
			t.Errorf("F32ToBF16(%#08x) = %#04x, want %#04x", tc.bits, got, tc.want)
		}
	}
}

func isNaN32(f float32) bool { return f != f }

func BenchmarkF16ToF32Slice(b *testing.B) {
	src := make([]byte, 2<<20)
	for i := range src {
		src[i] = byte(i * 7)
	}
	dst := make([]float32, len(src)/2)
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		F16ToF32Slice(dst, src)
	}
}

func BenchmarkF32ToF16(b *testing.B) {
	src := make([]float32, 1<<16)
	for i := range src {
		src[i] = float32(i) * 0.001
	}
	b.SetBytes(int64(4 * len(src)))
	var sink uint16
	for b.Loop() {
		for _, v := range src {
			sink ^= F32ToF16(v)
		}
	}
	_ = sink
}
