package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/quant"
)

// TestAttentionBlocked checks prefill attention over a half-float cache
// (the blocked path from attnMinTokens tokens on, the per-token path
// below) against attention computed in float64 from the cache's values,
// for group sizes 1 to 6, batches after earlier tokens, batches that end
// inside a key block and inside a token tile, and both kernel sets.
func TestAttentionBlocked(t *testing.T) {
	cases := []struct{ hd, heads, kvh, pos0, n int }{
		{16, 4, 2, 0, 16},
		{64, 2, 1, 5, 37},
		{128, 16, 4, 0, 130},
		{128, 6, 2, 200, 17},
		{32, 8, 8, 3, 20},
		{16, 12, 2, 0, 23},
		{16, 4, 2, 0, 7},  // below attnMinTokens: the per-token path
		{24, 2, 1, 0, 40}, // head dim not a multiple of 16: the per-token path
	}
	rng := rand.New(rand.NewPCG(51, 52))
	for _, k := range []bool{false, true} {
		b := New(Options{Threads: 2, Generic: k})
		for _, tc := range cases {
			name := fmt.Sprintf("%s/hd%d-h%d-kv%d-pos%d-n%d", b.Kernels(), tc.hd, tc.heads, tc.kvh, tc.pos0, tc.n)
			spec := engine.KVSpec{Type: quant.F16, Layers: 2, Ctx: tc.pos0 + tc.n + 3, KVHeads: tc.kvh, HeadDim: tc.hd}
			cache, err := b.NewKVCache(spec)
			if err != nil {
				t.Fatal(err)
			}
			total := tc.pos0 + tc.n
			cols := (tc.heads + 2*tc.kvh) * tc.hd
			qkv := b.NewBuffer(total, cols).(*buffer)
			for i := range qkv.data {
				qkv.data[i] = float32(rng.NormFloat64())
			}
			d := b.NewBuffer(total, tc.heads*tc.hd).(*buffer)
			if tc.pos0 > 0 {
				b.Attention(b.Rows(d, 0, tc.pos0), b.Rows(qkv, 0, tc.pos0), cache, 1, 0)
			}
			b.Attention(b.Rows(d, tc.pos0, tc.n), b.Rows(qkv, tc.pos0, tc.n), cache, 1, tc.pos0)
			half := func(v float32) float64 { return float64(quant.F16ToF32(quant.F32ToF16(v))) }
			group := tc.heads / tc.kvh
			for i := tc.pos0; i < total; i++ {
				row := qkv.data[i*cols : (i+1)*cols]
				for h := 0; h < tc.heads; h++ {
					g := h / group
					q := row[h*tc.hd : (h+1)*tc.hd]
					w := make([]float64, i+1)
					mx := math.Inf(-1)
					for p := range w {
						kr := qkv.data[p*cols+(tc.heads+g)*tc.hd:]
						for j, qv := range q {
							w[p] += float64(qv) * half(kr[j])
						}
						w[p] /= math.Sqrt(float64(tc.hd))
						mx = math.Max(mx, w[p])
					}
					var sum float64
					for p := range w {
						w[p] = math.Exp(w[p] - mx)
						sum += w[p]
					}
					for j := 0; j < tc.hd; j++ {
						var want float64
						for p := range w {
							want += w[p] / sum * half(qkv.data[p*cols+(tc.heads+tc.kvh+g)*tc.hd+j])
						}
						if got := float64(d.data[i*tc.heads*tc.hd+h*tc.hd+j]); math.Abs(got-want) > 1e-4*(1+math.Abs(want)) {
							t.Fatalf("%s: token %d head %d [%d] = %g, want %g", name, i, h, j, got, want)
						}
					}
				}
			}
			cache.Close()
		}
		b.Close()
	}
}
