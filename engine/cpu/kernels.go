package cpu

import (
	"fmt"
	"math"

	"github.com/phi4mac/phi4mac/engine/quant"
)

// format holds the row kernels of one weight format.
type format struct {
	// dot returns the dot product of a weight row (raw bytes holding
	// len(x) elements) with x.
	dot func(row []byte, x []float32) float32
	// dequant expands a weight row into len(dst) float32 values.
	dequant func(row []byte, dst []float32)
	// dotq returns the dot product of a weight row with activations
	// quantised to Q8 (nil for the float formats, which never use them).
	dotq func(row []byte, a *q8Acts) float32
	// dotqRows, when not nil, computes dst[r] = dotq of row r for
	// len(dst) consecutive rows starting at w, in one call.
	dotqRows func(w []byte, a *q8Acts, dst []float32)
}

// kernels is one complete set of kernels: the pure-Go set or a SIMD set.
type kernels struct {
	name    string
	formats map[quant.Type]format
	dotF32  func(a, b []float32) float32
	// dotF16Rows sets dst[r] to the dot product of the half-float row at
	// w[r·stride:] (len(x) values) with x, for len(dst) rows.
	dotF16Rows func(w []byte, stride int, x, dst []float32)
	// quantizeQ8 fills a with the Q8_0-block form of x (see q8Acts).
	quantizeQ8 func(x []float32, a *q8Acts)
	// quantizeQ8K fills a with the Q8_K form of x (see q8KActs).
	quantizeQ8K func(x []float32, a *q8KActs)
	axpyF32     func(a float32, x, y []float32)
	axpyF16     func(a float32, x []byte, y []float32)
	// f16Row converts float32 values to half floats (2 bytes each).
	f16Row func(src []float32, dst []byte)
	// gemm16x6 is the prefill micro-kernel (see gemm16x6Generic): w
	// holds at least 16·k values, x 6·k, each out[t] 16.
	gemm16x6 func(w, x []float32, k int, out *[gemmToks][]float32, acc bool)
	// interleave6 stores 6 rows of equal length k-major:
	// dst[6i+t] = src[t][i] (the micro-kernel's activation layout).
	interleave6 func(dst []float32, src *[gemmToks][]float32)
	// transpose16 stores 16 rows of equal length k-major:
	// dst[16i+r] = src[r][i].
	transpose16 func(dst []float32, src *[gemmPanel][]float32)
	// transpose16F16 is transpose16 for rows of half floats (2 bytes per
	// value), converting as it goes.
	transpose16F16 func(dst []float32, src *[gemmPanel][]byte)
	// siluMul sets o[i] = silu(g[i])·u[i] (all three of equal length).
	siluMul func(g, u, o []float32)
	// maxF32 returns the largest value of x (−∞ for none).
	maxF32 func(x []float32) float32
	// expSubSum sets x[i] = exp(x[i]-m) and returns the sum of the new
	// values (the softmax numerators and denominator).
	expSubSum func(x []float32, m float32) float32
	// attnScoresF16 sets out[h·stride+p] = scale·q_h·k_p for the g
	// queries of one KV group, q_h = q[h·hd:(h+1)·hd] with hd = len(q)/g,
	// and npos consecutive half-float key rows k_p of hd values.
	attnScoresF16 func(q []float32, g int, k []byte, npos int, scale float32, out []float32, stride int)
	// attnValuesF16 sets out[h·hd:(h+1)·hd] = Σ_p w[h·stride+p]·v_p for
	// the g queries of one KV group, hd = len(out)/g, over npos
	// consecutive half-float value rows v_p of hd values.
	attnValuesF16 func(w []float32, stride int, v []byte, npos int, out []float32, g int)
}

func attnScoresF16Generic(q []float32, g int, k []byte, npos int, scale float32, out []float32, stride int) {
	hd := len(q) / g
	for h := 0; h < g; h++ {
		qh := q[h*hd : (h+1)*hd]
		o := out[h*stride : h*stride+npos]
		for p := range o {
			o[p] = scale * dotF16Generic(k[2*hd*p:2*hd*(p+1)], qh)
		}
	}
}

func attnValuesF16Generic(w []float32, stride int, v []byte, npos int, out []float32, g int) {
	hd := len(out) / g
	for h := 0; h < g; h++ {
		o := out[h*hd : (h+1)*hd]
		clear(o)
		for p, a := range w[h*stride : h*stride+npos] {
			axpyF16Generic(a, v[2*hd*p:2*hd*(p+1)], o)
		}
	}
}

// genericKernels returns the pure-Go kernel set.
func genericKernels() *kernels {
	return &kernels{
		name: "go",
		formats: map[quant.Type]format{
			quant.F32: {func(w []byte, x []float32) float32 {
				return dotF32Generic(bytesAsF32(w, len(x)), x)
			}, dequantF32, nil, nil},
			quant.F16:  {dotF16Generic, dequantF16Generic, nil, nil},
			quant.BF16: {dotBF16Generic, dequantBF16, nil, nil},
			quant.Q8_0: {dotQ8_0Generic, dequantQ8_0, dotQ8_0Q8Generic, nil},
			quant.Q4_0: {dotQ4_0Generic, dequantQ4_0, dotQ4_0Q8Generic, nil},
			quant.Q5_0: {dotQ5_0Generic, dequantQ5_0, dotQ5_0Q8Generic, nil},
			quant.Q4_K: {dotQ4_KGeneric, dequantQ4_K, dotQ4_KQ8Generic, nil},
			quant.Q6_K: {dotQ6_KGeneric, dequantQ6_K, dotQ6_KQ8Generic, nil},
		},
		dotF32:         dotF32Generic,
		quantizeQ8:     quantizeQ8,
		dotF16Rows:     dotF16RowsGeneric,
		quantizeQ8K:    quantizeQ8K,
		gemm16x6:       gemm16x6Generic,
		interleave6:    interleave6Generic,
		siluMul:        siluMulGeneric,
		expSubSum:      expSubSumGeneric,
		maxF32:         maxF32Generic,
		transpose16:    transpose16Generic,
		transpose16F16: transpose16F16Generic,
		attnScoresF16:  attnScoresF16Generic,
		attnValuesF16:  attnValuesF16Generic,
		axpyF32:        axpyF32Generic,
		axpyF16:        axpyF16Generic,
		f16Row:         f32ToF16RowGeneric,
	}
}

// clone returns a copy of k whose format map can be changed.
func (k *kernels) clone(name string) *kernels {
	c := *k
	c.name = name
	c.formats = make(map[quant.Type]format, len(k.formats))
	for t, f := range k.formats {
		c.formats[t] = f
	}
	return &c
}

func (k *kernels) format(t quant.Type) (format, error) {
	f, ok := k.formats[t]
	if !ok {
		return format{}, fmt.Errorf("cpu backend: no kernels for tensor type %s", t)
	}
	return f, nil
}

func siluMulGeneric(g, u, o []float32) {
	u, o = u[:len(g)], o[:len(g)]
	for i, x := range g {
		o[i] = x / (1 + float32(math.Exp(float64(-x)))) * u[i]
	}
}

func dotF16RowsGeneric(w []byte, stride int, x, dst []float32) {
	for r := range dst {
		dst[r] = dotF16Generic(w[r*stride:r*stride+2*len(x)], x)
	}
}

func maxF32Generic(x []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range x {
		m = max(m, v)
	}
	return m
}

func expSubSumGeneric(x []float32, m float32) float32 {
	var sum float64
	for i, v := range x {
		e := float32(math.Exp(float64(v - m)))
		x[i] = e
		sum += float64(e)
	}
	return float32(sum)
}
