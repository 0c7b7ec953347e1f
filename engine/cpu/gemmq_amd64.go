package cpu

//go:noescape
func gemmq16x6AVX2(w, a *byte, nb int, out *[qTile]float32)

// gemmq16x6Fast is the AVX2 form of gemmq16x6Generic.
func gemmq16x6Fast(w, a []byte, nb int, out *[qTile]float32) {
	if nb <= 0 {
		return
	}
	_ = w[nb*qPanelBlock-1]
	_ = a[nb*qActBlock-1]
	gemmq16x6AVX2(&w[0], &a[0], nb, out)
}

// gemmqKernel returns the int8 prefill micro-kernel of the kernel set k:
// the AVX2 one unless k is the pure-Go set.
func gemmqKernel(k *kernels) func(w, a []byte, nb int, out *[qTile]float32) {
	if k.name == "go" || !hasAVX2() {
		return gemmq16x6Generic
	}
	return gemmq16x6Fast
}

//go:noescape
func q8AbsMaxAVX2(x *float32, nb int, amax *float32)

//go:noescape
func q8ScaleRoundAVX2(x, scale *float32, nb int, dst *byte, sums *int32)

var q8BlocksAVX2 = q8BlockKernels{
	absMax: func(x, amax []float32) {
		if len(amax) > 0 {
			_ = x[32*len(amax)-1]
			q8AbsMaxAVX2(&x[0], len(amax), &amax[0])
		}
	},
	scaleRound: func(x, scale []float32, dst []byte, t int, sums []int32) {
		if nb := len(scale); nb > 0 {
			_ = x[32*nb-1]
			_ = sums[nb-1]
			_ = dst[(nb-1)*qActBlock+32*t+31]
			q8ScaleRoundAVX2(&x[0], &scale[0], nb, &dst[32*t], &sums[0])
		}
	},
}

// q8BlocksFor returns the activation quantisers of the kernel set k.
func q8BlocksFor(k *kernels) *q8BlockKernels {
	if k.name == "go" || !hasAVX2() {
		return &q8BlocksGeneric
	}
	return &q8BlocksAVX2
}
