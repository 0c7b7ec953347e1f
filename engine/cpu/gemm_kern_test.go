package cpu

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGEMMMicroKernel checks the SIMD micro-kernel against the pure-Go one
// on edge lengths, with and without accumulation, with repeated rows.
func TestGEMMMicroKernel(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	fast := simdKernels(genericKernels()).gemm16x6
	for _, k := range []int{0, 1, 7, 8, 33, 512} {
		for _, acc := range []bool{false, true} {
			w := make([]float32, gemmPanel*k+5)
			for i := range w {
				w[i] = float32(rng.NormFloat64())
			}
			x := make([]float32, gemmToks*k+5)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			var got, want [gemmToks][]float32
			for tk := range got {
				got[tk] = make([]float32, gemmPanel)
				want[tk] = make([]float32, gemmPanel)
				for r := range got[tk] {
					v := float32(rng.NormFloat64())
					got[tk][r], want[tk][r] = v, v
				}
			}
			got[5], want[5] = got[4], want[4] // the tail of a token block repeats its last token
			for i := 0; i < k; i++ {
				x[gemmToks*i+5] = x[gemmToks*i+4]
			}
			fast(w, x, k, &got, acc)
			gemm16x6Generic(w, x, k, &want, acc)
			// And the generic kernel against the definition, in float64.
			if k > 0 && !acc {
				for tk := 0; tk < gemmToks; tk++ {
					for r := 0; r < gemmPanel; r++ {
						var e float64
						for i := 0; i < k; i++ {
							e += float64(w[gemmPanel*i+r]) * float64(x[gemmToks*i+tk])
						}
						if g := want[tk][r]; math.Abs(float64(g)-e) > 1e-4*(1+math.Abs(e)) {
							t.Fatalf("generic k=%d: out[%d][%d] = %g, want %g", k, tk, r, g, e)
						}
					}
				}
			}
			for tk := range got {
				for r := range got[tk] {
					g, e := got[tk][r], want[tk][r]
					if math.Abs(float64(g-e)) > 1e-4*(1+math.Abs(float64(e))) {
						t.Fatalf("k=%d acc=%v: out[%d][%d] = %g, want %g", k, acc, tk, r, g, e)
					}
				}
			}
		}
	}
}

// BenchmarkGEMMMicroKernel measures the micro-kernel alone on data in L1.
func BenchmarkGEMMMicroKernel(b *testing.B) {
	const k = 256
	kern := simdKernels(genericKernels()).gemm16x6
	w := make([]float32, gemmPanel*k)
	x := make([]float32, gemmToks*k)
	var out [gemmToks][]float32
	for t := range out {
		out[t] = make([]float32, gemmPanel)
	}
	for b.Loop() {
		kern(w, x, k, &out, false)
	}
	b.ReportMetric(2*gemmPanel*gemmToks*k*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// TestTranspose16 checks the SIMD panel transpose against the pure-Go one
// on lengths with and without a tail.
func TestTranspose16(t *testing.T) {
	fast := simdKernels(genericKernels()).transpose16
	for _, n := range []int{1, 7, 8, 9, 24, 37} {
		var src [gemmPanel][]float32
		for r := range src {
			src[r] = make([]float32, n)
			for i := range src[r] {
				src[r][i] = float32(1000*r + i)
			}
		}
		got := make([]float32, gemmPanel*n)
		want := make([]float32, gemmPanel*n)
		fast(got, &src)
		transpose16Generic(want, &src)
		for i := range want {
			if got[i] != want[i] || want[i] != src[i%gemmPanel][i/gemmPanel] {
				t.Fatalf("n=%d: dst[%d] = %g, want %g", n, i, got[i], want[i])
			}
		}
	}
}

// TestExpKernels checks the SIMD exp-based kernels (SiLU, softmax) against
// float64 math on lengths with tails and on values up to the clamps.
func TestExpKernels(t *testing.T) {
	k := simdKernels(genericKernels())
	rng := rand.New(rand.NewPCG(33, 34))
	for _, n := range []int{1, 8, 13, 64, 1001} {
		g := make([]float32, n)
		u := make([]float32, n)
		for i := range g {
			g[i] = float32(rng.NormFloat64() * 20)
			u[i] = float32(rng.NormFloat64())
		}
		g[0] = -100
		if n > 1 {
			g[1] = 100
		}
		o := make([]float32, n)
		k.siluMul(g, u, o)
		for i, x := range g {
			want := float64(x) / (1 + math.Exp(-float64(x))) * float64(u[i])
			if d := math.Abs(float64(o[i]) - want); d > 1e-6*math.Abs(want)+1e-30 {
				t.Fatalf("n=%d: silu(%g)·%g = %g, want %g", n, x, u[i], o[i], want)
			}
		}
		x := append([]float32(nil), g...)
		m := g[0] // softmax subtracts the maximum: every x-m ≤ 0
		for _, v := range g {
			m = max(m, v)
		}
		sum := k.expSubSum(x, m)
		var wantSum float64
		for i, v := range g {
			want := math.Exp(float64(v - m))
			if want < 1e-37 {
				want = 0 // below the kernel's clamp: a negligible softmax weight
			}
			wantSum += want
			if d := math.Abs(float64(x[i]) - want); d > 1e-6*want+1e-37 {
				t.Fatalf("n=%d: exp(%g-%g) = %g, want %g", n, v, m, x[i], want)
			}
		}
		if d := math.Abs(float64(sum) - wantSum); d > 1e-6*wantSum+1e-37 {
			t.Fatalf("n=%d: sum %g, want %g", n, sum, wantSum)
		}
	}
}
