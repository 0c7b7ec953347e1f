package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/quant"
)

// attentionRef is causal attention in float64 over the half-float values
// of qkv's keys and values (the rows of every position up to the last),
// for token i and query head h.
func attentionRef(qkv []float32, cols, hd, heads, kvh, i, h int) []float64 {
	half := func(v float32) float64 { return float64(quant.F16ToF32(quant.F32ToF16(v))) }
	g := h / (heads / kvh)
	q := qkv[i*cols+h*hd : i*cols+(h+1)*hd]
	w := make([]float64, i+1)
	mx := math.Inf(-1)
	for p := range w {
		kr := qkv[p*cols+(heads+g)*hd:]
		for j, qv := range q {
			w[p] += float64(qv) * half(kr[j])
		}
		w[p] /= math.Sqrt(float64(hd))
		mx = math.Max(mx, w[p])
	}
	var sum float64
	for p := range w {
		w[p] = math.Exp(w[p] - mx)
		sum += w[p]
	}
	out := make([]float64, hd)
	for j := range out {
		for p := range w {
			out[j] += w[p] / sum * half(qkv[p*cols+(heads+kvh+g)*hd+j])
		}
	}
	return out
}

// TestAttentionBlockedEdges checks the blocked prefill attention where its
// bookkeeping is most likely to slip: a cache filled to its last position,
// batches of exactly attnMinTokens tokens, batches ending on a key block
// or panel boundary, groups of more than attnHeads query heads, several
// blocked batches in a row, scores far apart (the online softmax's
// rescaling and exp underflow), and a cache holding stale, larger values
// past the batch from an earlier, longer prompt.
func TestAttentionBlockedEdges(t *testing.T) {
	cases := []struct {
		hd, heads, kvh int
		batches        []int // batch sizes, attended one after another
		ctx            int   // 0: exactly the tokens of the batches
		qscale         float32
	}{
		{16, 5, 1, []int{16}, 0, 1},
		{16, 8, 1, []int{112, 16}, 0, 1},         // ends on a key block, ctx full
		{32, 10, 2, []int{16, 16, 16, 16}, 0, 4}, // blocked after blocked
		{48, 4, 1, []int{127, 129}, 0, 6},        // 256 positions: two key blocks each batch
		{16, 6, 3, []int{5, 16, 17}, 40, 8},      // per-token, then blocked batches
		{64, 2, 2, []int{250, 16}, 0, 3},
	}
	rng := rand.New(rand.NewPCG(61, 62))
	for _, generic := range []bool{false, true} {
		b := New(Options{Threads: 2, Generic: generic})
		for _, tc := range cases {
			total := 0
			for _, n := range tc.batches {
				total += n
			}
			ctx := max(tc.ctx, total)
			name := fmt.Sprintf("%s/hd%d-h%d-kv%d-%v-ctx%d-q%g", b.Kernels(), tc.hd, tc.heads, tc.kvh, tc.batches, ctx, tc.qscale)
			t.Run(name, func(t *testing.T) {
				spec := engine.KVSpec{Type: quant.F16, Layers: 1, Ctx: ctx, KVHeads: tc.kvh, HeadDim: tc.hd}
				cache, err := b.NewKVCache(spec)
				if err != nil {
					t.Fatal(err)
				}
				defer cache.Close()
				cols := (tc.heads + 2*tc.kvh) * tc.hd
				// An earlier prompt filled the whole cache with other, larger values.
				stale := b.NewBuffer(ctx, cols).(*buffer)
				for i := range stale.data {
					stale.data[i] = 50 * float32(rng.NormFloat64())
				}
				b.Attention(b.NewBuffer(ctx, tc.heads*tc.hd), stale, cache, 0, 0)

				qkv := b.NewBuffer(total, cols).(*buffer)
				for i := range qkv.data {
					qkv.data[i] = float32(rng.NormFloat64())
				}
				for i := 0; i < total; i++ {
					for j := 0; j < tc.heads*tc.hd; j++ {
						qkv.data[i*cols+j] *= tc.qscale
					}
				}
				d := b.NewBuffer(total, tc.heads*tc.hd).(*buffer)
				pos := 0
				for _, n := range tc.batches {
					b.Attention(b.Rows(d, pos, n), b.Rows(qkv, pos, n), cache, 0, pos)
					pos += n
				}
				for i := 0; i < total; i++ {
					for h := 0; h < tc.heads; h++ {
						want := attentionRef(qkv.data, cols, tc.hd, tc.heads, tc.kvh, i, h)
						for j, e := range want {
							if g := float64(d.data[i*tc.heads*tc.hd+h*tc.hd+j]); !(math.Abs(g-e) <= 2e-4*(1+math.Abs(e))) {
								t.Fatalf("token %d head %d [%d] = %g, want %g", i, h, j, g, e)
							}
						}
					}
				}
			})
		}
		b.Close()
	}
}

// TestAttentionBlockedNonFinite checks that a non-finite value stays
// where causal attention puts it: a token whose query is infinite gets
// non-finite outputs without touching the other tokens of its tile, and
// an infinite key or value (a half float past 65504) at a position
// reaches only the tokens at or after it, as on the per-token path.
func TestAttentionBlockedNonFinite(t *testing.T) {
	const hd, heads, kvh, n = 16, 2, 1, 40
	cols := (heads + 2*kvh) * hd
	for _, generic := range []bool{false, true} {
		b := New(Options{Threads: 2, Generic: generic})
		for _, what := range []string{"query", "key", "value"} {
			for _, at := range []int{0, 7, 17, 33, 39} {
				t.Run(fmt.Sprintf("%s/%s-at-%d", b.Kernels(), what, at), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(uint64(at), 5))
					cache, err := b.NewKVCache(engine.KVSpec{Type: quant.F16, Layers: 1, Ctx: n, KVHeads: kvh, HeadDim: hd})
					if err != nil {
						t.Fatal(err)
					}
					defer cache.Close()
					qkv := b.NewBuffer(n, cols).(*buffer)
					for i := range qkv.data {
						qkv.data[i] = float32(rng.NormFloat64())
					}
					col := map[string]int{"query": 3, "key": heads*hd + 3, "value": (heads+kvh)*hd + 3}[what]
					qkv.data[at*cols+col] = 1e6 // infinite as a half float
					d := b.NewBuffer(n, heads*hd).(*buffer)
					b.Attention(d, qkv, cache, 0, 0)
					for i := 0; i < n; i++ {
						if i >= at && !(what == "query" && i != at) {
							continue // may be non-finite
						}
						for h := 0; h < heads; h++ {
							want := attentionRef(qkv.data, cols, hd, heads, kvh, i, h)
							for j, e := range want {
								if g := float64(d.data[i*heads*hd+h*hd+j]); !(math.Abs(g-e) <= 2e-4*(1+math.Abs(e))) {
									t.Fatalf("token %d head %d [%d] = %g, want %g", i, h, j, g, e)
								}
							}
						}
					}
				})
			}
		}
		b.Close()
	}
}
