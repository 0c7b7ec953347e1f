package cpu

import (
	"golang.org/x/sys/cpu"

	"github.com/phi4mac/phi4mac/engine/quant"
)

//go:noescape
func dotF32AVX2(a, b *float32, n int) float32

//go:noescape
func dotF16AVX2(w *byte, x *float32, n int) float32

//go:noescape
func dotQ8_0AVX2(w *byte, x *float32, nb int) float32

//go:noescape
func dotQ4_0AVX2(w *byte, x *float32, nb int) float32

//go:noescape
func axpyF32AVX2(a float32, x, y *float32, n int)

//go:noescape
func axpyF16AVX2(a float32, x *byte, y *float32, n int)

//go:noescape
func f32ToF16AVX2(src *float32, dst *byte, n int)

//go:noescape
func f16ToF32AVX2(src *byte, dst *float32, n int)

//go:noescape
func attnScoresF16GAVX2(q *float32, heads int, k *byte, npos, hd int, scale float32, out *float32, stride int)

//go:noescape
func attnValuesF16GAVX2(w *float32, stride int, v *byte, npos, hd, heads int, out *float32)

//go:noescape
func dotBF16AVX2(w *byte, x *float32, n int) float32

//go:noescape
func bf16ToF32AVX2(src *byte, dst *float32, n int)

//go:noescape
func dequantQ8_0AVX2(w *byte, dst *float32, nb int)

//go:noescape
func dequantQ4_0AVX2(w *byte, dst *float32, nb int)

//go:noescape
func dotQ4_0Q8RowsAVX2(w *byte, xq *int8, xd, xs *float32, nb, rows int, dst *float32)

//go:noescape
func dotQ4_0Q8PairsAVX2(w *byte, pairs *byte, xs *float32, nb, rows int, dst *float32)

//go:noescape
func dotQ6_KQ8KRowsAVX2(w *byte, xq *int8, xd *float32, bsums *int16, nb, rows int, dst *float32)

//go:noescape
func dotQ4_KQ8KRowsAVX2(w *byte, xq *int8, xd *float32, bsums *int16, nb, rows int, dst *float32)

//go:noescape
func quantizeQ8RowAVX2(x *float32, nb int, q *int8, amax *float32, sums *int32)

// quantizeQ8Fast is quantizeQ8 with the per-value work in AVX2.
func quantizeQ8Fast(x []float32, a *q8Acts) {
	nb := len(x) / 32
	a.resize(len(x))
	const chunk = 64
	var amax [chunk]float32
	var sums [chunk]int32
	for c := 0; c < nb; c += chunk {
		m := min(chunk, nb-c)
		quantizeQ8RowAVX2(&x[32*c], m, &a.q[32*c], &amax[0], &sums[0])
		for b := 0; b < m; b++ {
			a.setScale(c+b, amax[b], sums[b])
		}
	}
	packPairs(a)
}

//go:noescape
func quantizeQ8KRowAVX2(x *float32, nb int, q *int8, d *float32, bsums *int16)

// quantizeQ8KFast is quantizeQ8K in AVX2.
func quantizeQ8KFast(x []float32, a *q8KActs) {
	a.resize(len(x))
	if nb := len(x) / 256; nb > 0 {
		quantizeQ8KRowAVX2(&x[0], nb, &a.q[0], &a.d[0], &a.bsums[0])
	}
}

//go:noescape
func dotF16RowsAVX2(w *byte, stride, n, rows int, x *float32, dst *float32)

// dotF16RowsFast is the AVX2 form of dotF16RowsGeneric.
func dotF16RowsFast(w []byte, stride int, x, dst []float32) {
	n := len(x)
	if n%16 != 0 || n == 0 || len(dst) == 0 || stride < 2*n {
		for r := range dst {
			dst[r] = dotF16Fast(w[r*stride:r*stride+2*n], x)
		}
		return
	}
	_ = w[(len(dst)-1)*stride+2*n-1]
	dotF16RowsAVX2(&w[0], stride, n, len(dst), &x[0], &dst[0])
}

//go:noescape
func dotQ8_0Q8RowsAVX2(w *byte, xq *int8, xd *float32, nb, rows int, dst *float32)

//go:noescape
func gemm16x6F32AVX2(w *float32, x *float32, k int, out *[gemmToks]*float32, acc int)

// gemm16x6Fast is the AVX2 form of gemm16x6Generic.
func gemm16x6Fast(w, x []float32, k int, out *[gemmToks][]float32, acc bool) {
	if k <= 0 {
		gemm16x6Generic(w, x, 0, out, acc)
		return
	}
	_, _ = w[gemmPanel*k-1], x[gemmToks*k-1]
	var op [gemmToks]*float32
	for t := range op {
		_ = out[t][gemmPanel-1]
		op[t] = &out[t][0]
	}
	a := 0
	if acc {
		a = 1
	}
	gemm16x6F32AVX2(&w[0], &x[0], k, &op, a)
}

//go:noescape
func transpose16AVX2(src *[gemmPanel]*float32, dst *float32, n int)

// transpose16Fast is the AVX2 form of transpose16Generic.
func transpose16Fast(dst []float32, src *[gemmPanel][]float32) {
	n := len(src[0])
	m := n &^ 7
	if m > 0 {
		_ = dst[gemmPanel*n-1]
		var sp [gemmPanel]*float32
		for r := range sp {
			_ = src[r][n-1]
			sp[r] = &src[r][0]
		}
		transpose16AVX2(&sp, &dst[0], m)
	}
	if m < n {
		var tail [gemmPanel][]float32
		for r := range tail {
			tail[r] = src[r][m:n]
		}
		transpose16Generic(dst[gemmPanel*m:], &tail)
	}
}

//go:noescape
func transpose16F16AVX2(src *[gemmPanel]*byte, dst *float32, n int)

// transpose16F16Fast is the AVX2 form of transpose16F16Generic.
func transpose16F16Fast(dst []float32, src *[gemmPanel][]byte) {
	n := len(src[0]) / 2
	m := n &^ 7
	if m > 0 {
		_ = dst[gemmPanel*n-1]
		var sp [gemmPanel]*byte
		for r := range sp {
			_ = src[r][2*n-1]
			sp[r] = &src[r][0]
		}
		transpose16F16AVX2(&sp, &dst[0], m)
	}
	if m < n {
		var tail [gemmPanel][]byte
		for r := range tail {
			tail[r] = src[r][2*m : 2*n]
		}
		transpose16F16Generic(dst[gemmPanel*m:], &tail)
	}
}

//go:noescape
func maxF32AVX2(x *float32, n int) float32

// maxF32Fast is the AVX2 form of maxF32Generic.
func maxF32Fast(x []float32) float32 {
	n := len(x) &^ 7
	if n == 0 {
		return maxF32Generic(x)
	}
	m := maxF32AVX2(&x[0], n)
	if n < len(x) {
		m = max(m, maxF32Generic(x[n:]))
	}
	return m
}

//go:noescape
func expSubSumAVX2(x *float32, n int, m float32) float32

//go:noescape
func siluMulAVX2(gp, up, op *float32, n int)

func siluMulFast(g, u, o []float32) {
	n := len(g) &^ 7
	if n > 0 {
		_, _ = u[len(g)-1], o[len(g)-1]
		siluMulAVX2(&g[0], &u[0], &o[0], n)
	}
	siluMulGeneric(g[n:], u[n:len(g)], o[n:len(g)])
}

func expSubSumFast(x []float32, m float32) float32 {
	n := len(x) &^ 7
	var sum float32
	if n > 0 {
		sum = expSubSumAVX2(&x[0], n, m)
	}
	return sum + expSubSumGeneric(x[n:], m)
}

// hasAVX2 reports whether the CPU has what the amd64 kernels use.
func hasAVX2() bool {
	return cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasAVX // F16C comes with these on every AVX2 CPU
}

// simdKernels returns the AVX2/FMA/F16C kernel set when the CPU supports it,
// else k. Each kernel handles the part of a row that is a multiple of its
// vector width and leaves any tail to the pure-Go code.
func simdKernels(k *kernels) *kernels {
	if !hasAVX2() {
		return k
	}
	s := k.clone("avx2")
	s.dotF32 = dotF32Fast
	s.gemm16x6 = gemm16x6Fast
	s.siluMul = siluMulFast
	s.expSubSum = expSubSumFast
	s.maxF32 = maxF32Fast
	s.transpose16 = transpose16Fast
	s.quantizeQ8 = quantizeQ8Fast
	s.dotF16Rows = dotF16RowsFast
	s.quantizeQ8K = quantizeQ8KFast
	s.transpose16F16 = transpose16F16Fast
	s.axpyF32 = func(a float32, x, y []float32) {
		n := len(x) &^ 7
		if n > 0 {
			_ = y[len(x)-1]
			axpyF32AVX2(a, &x[0], &y[0], n)
		}
		axpyF32Generic(a, x[n:], y[n:len(x)])
	}
	s.axpyF16 = func(a float32, x []byte, y []float32) {
		n := len(y) &^ 7
		if n > 0 {
			_ = x[2*len(y)-1]
			axpyF16AVX2(a, &x[0], &y[0], n)
		}
		axpyF16Generic(a, x[2*n:], y[n:])
	}
	s.f16Row = func(src []float32, dst []byte) {
		n := len(src) &^ 7
		if n > 0 {
			_ = dst[2*len(src)-1]
			f32ToF16AVX2(&src[0], &dst[0], n)
		}
		f32ToF16RowGeneric(src[n:], dst[2*n:])
	}
	s.attnScoresF16 = func(q []float32, g int, k []byte, npos int, scale float32, out []float32, stride int) {
		hd := len(q) / max(g, 1)
		// A negative stride puts rows before out: the Go kernel's indexing
		// refuses it.
		if hd%16 != 0 || npos == 0 || g < 1 || g > 4 || stride < 0 {
			attnScoresF16Generic(q, g, k, npos, scale, out, stride)
			return
		}
		_, _ = k[npos*hd*2-1], out[(g-1)*stride+npos-1]
		attnScoresF16GAVX2(&q[0], g, &k[0], npos, hd, scale, &out[0], stride)
	}
	s.attnValuesF16 = func(w []float32, stride int, v []byte, npos int, out []float32, g int) {
		hd := len(out) / max(g, 1)
		if hd%16 != 0 || npos == 0 || g < 1 || g > 4 || stride < 0 {
			attnValuesF16Generic(w, stride, v, npos, out, g)
			return
		}
		_, _ = v[npos*hd*2-1], w[(g-1)*stride+npos-1]
		attnValuesF16GAVX2(&w[0], stride, &v[0], npos, hd, g, &out[0])
	}
	s.formats[quant.F32] = format{func(w []byte, x []float32) float32 {
		return dotF32Fast(bytesAsF32(w, len(x)), x)
	}, dequantF32, nil, nil}
	s.formats[quant.F16] = format{dotF16Fast, dequantF16Fast, nil, nil}
	s.formats[quant.BF16] = format{func(w []byte, x []float32) float32 {
		n := len(x) &^ 7
		var sum float32
		if n > 0 {
			_ = w[2*len(x)-1]
			sum = dotBF16AVX2(&w[0], &x[0], n)
		}
		if n < len(x) {
			sum += dotBF16Generic(w[2*n:], x[n:])
		}
		return sum
	}, func(w []byte, dst []float32) {
		n := len(dst) &^ 7
		if n > 0 {
			_ = w[2*len(dst)-1]
			bf16ToF32AVX2(&w[0], &dst[0], n)
		}
		dequantBF16(w[2*n:], dst[n:])
	}, nil, nil}
	s.formats[quant.Q8_0] = format{func(w []byte, x []float32) float32 {
		nb := len(x) / 32
		if nb == 0 {
			return 0
		}
		_ = w[34*nb-1]
		return dotQ8_0AVX2(&w[0], &x[0], nb)
	}, func(w []byte, dst []float32) {
		nb := len(dst) / 32
		if nb > 0 {
			_ = w[34*nb-1]
			dequantQ8_0AVX2(&w[0], &dst[0], nb)
		}
	}, nil, nil}
	s.formats[quant.Q4_0] = format{func(w []byte, x []float32) float32 {
		nb := len(x) / 32
		if nb == 0 {
			return 0
		}
		_ = w[18*nb-1]
		return dotQ4_0AVX2(&w[0], &x[0], nb)
	}, func(w []byte, dst []float32) {
		nb := len(dst) / 32
		if nb > 0 {
			_ = w[18*nb-1]
			dequantQ4_0AVX2(&w[0], &dst[0], nb)
		}
	}, nil, nil}
	q8 := s.formats[quant.Q8_0]
	q8.dotqRows = func(w []byte, a *q8Acts, dst []float32) {
		nb := len(a.d)
		if nb == 0 || len(dst) == 0 {
			clear(dst)
			return
		}
		_, _ = w[34*nb*len(dst)-1], a.q[32*nb-1]
		dotQ8_0Q8RowsAVX2(&w[0], &a.q[0], &a.d[0], nb, len(dst), &dst[0])
	}
	q8.dotq = oneRow(q8.dotqRows)
	s.formats[quant.Q8_0] = q8
	q4 := s.formats[quant.Q4_0]
	q4.dotqRows = func(w []byte, a *q8Acts, dst []float32) {
		nb := len(a.d)
		if nb == 0 || len(dst) == 0 {
			clear(dst)
			return
		}
		_, _ = w[18*nb*len(dst)-1], a.s[nb-1]
		if a.pairs != nil && nb%2 == 0 {
			_ = a.pairs[pairRecord*nb/2-1]
			dotQ4_0Q8PairsAVX2(&w[0], &a.pairs[0], &a.s[0], nb, len(dst), &dst[0])
			return
		}
		_ = a.q[32*nb-1]
		dotQ4_0Q8RowsAVX2(&w[0], &a.q[0], &a.d[0], &a.s[0], nb, len(dst), &dst[0])
	}
	q4.dotq = oneRow(q4.dotqRows)
	s.formats[quant.Q4_0] = q4
	for _, kq := range []struct {
		typ  quant.Type
		size int // bytes per block of 256
		rows func(w *byte, xq *int8, xd *float32, bsums *int16, nb, rows int, dst *float32)
	}{{quant.Q4_K, 144, dotQ4_KQ8KRowsAVX2}, {quant.Q6_K, 210, dotQ6_KQ8KRowsAVX2}} {
		f := s.formats[kq.typ]
		size, rows := kq.size, kq.rows
		f.dotqRows = func(w []byte, a *q8Acts, dst []float32) {
			k := &a.k
			nb := len(k.d)
			if nb == 0 || len(dst) == 0 {
				clear(dst)
				return
			}
			_, _, _ = w[size*nb*len(dst)-1], k.q[256*nb-1], k.bsums[16*nb-1]
			rows(&w[0], &k.q[0], &k.d[0], &k.bsums[0], nb, len(dst), &dst[0])
		}
		f.dotq = oneRow(f.dotqRows)
		s.formats[kq.typ] = f
	}
	return s
}

func dotF32Fast(a, b []float32) float32 {
	n := len(a) &^ 7
	var s float32
	if n > 0 {
		_ = b[len(a)-1]
		s = dotF32AVX2(&a[0], &b[0], n)
	}
	if n < len(a) {
		s += dotF32Generic(a[n:], b[n:len(a)])
	}
	return s
}

func dotF16Fast(w []byte, x []float32) float32 {
	n := len(x) &^ 7
	var s float32
	if n > 0 {
		_ = w[2*len(x)-1]
		s = dotF16AVX2(&w[0], &x[0], n)
	}
	if n < len(x) {
		s += dotF16Generic(w[2*n:], x[n:])
	}
	return s
}

func dequantF16Fast(w []byte, dst []float32) {
	n := len(dst) &^ 7
	if n > 0 {
		_ = w[2*len(dst)-1]
		f16ToF32AVX2(&w[0], &dst[0], n)
	}
	dequantF16Generic(w[2*n:], dst[n:])
}

// oneRow makes a one-row Q8 dot product of a many-rows kernel, so that the
// two can never disagree.
func oneRow(rows func(w []byte, a *q8Acts, dst []float32)) func(w []byte, a *q8Acts) float32 {
	return func(w []byte, a *q8Acts) float32 {
		var r [1]float32
		rows(w, a, r[:])
		return r[0]
	}
}
