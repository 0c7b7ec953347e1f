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
