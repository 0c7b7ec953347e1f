package cpu

import "github.com/phi4mac/phi4mac/engine/quant"

//go:noescape
func gemmq16x6AVX2(w, a *byte, nb int, out *[qTile]float32)

// gemmq16x6Fast is the AVX2 form of gemmq16x6Generic.
func gemmq16x6Fast(w, a, _ []byte, nb int, out *[qTile]float32) {
	if nb <= 0 {
		return
	}
	_ = w[nb*qPanelBlock-1]
	_ = a[nb*qActBlock-1]
	gemmq16x6AVX2(&w[0], &a[0], nb, out)
}

// gemmqKernel returns the int8 prefill micro-kernel of the kernel set k:
// the AVX2 one unless k is the pure-Go set.
func gemmqKernel(k *kernels) gemmqKernelFunc {
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

//go:noescape
func packQ4_0QuadsAVX2(rows *[gemmPanel]*byte, nb int, dst *byte)

//go:noescape
func packQ4_KQuadsAVX2(rows *[gemmPanel]*byte, nsb int, dst *byte)

//go:noescape
func packQ6_KQuadsAVX2(rows *[gemmPanel]*byte, nsb int, dst *byte)

// fastPacker returns the AVX2 panel packer for t, nil if there is none:
// the quads in assembly, the scales in Go.
func fastPacker(t quant.Type, k *kernels) gemmqPacker {
	if k.name == "go" || !hasAVX2() {
		return nil
	}
	var scales func(row []byte, nb int, panel []byte, r int)
	per, unitBytes, panelBlock := 1, 18, qPanelBlock // panel blocks and row bytes per unit of quads
	switch t {
	case quant.Q4_0:
		scales = packQ4_0Scales
	case quant.Q4_K:
		scales, per, unitBytes = packQ4_KScales, 8, 144
	case quant.Q6_K:
		scales, per, unitBytes, panelBlock = packQ6_KScales, 8, 210, q6PanelBlock
	default:
		return nil
	}
	return func(rows *[gemmPanel][]byte, nb int, panel []byte) {
		units := nb / per
		if units == 0 {
			return
		}
		_ = panel[nb*panelBlock-1]
		var ptrs [gemmPanel]*byte
		for r, row := range rows {
			_ = row[units*unitBytes-1]
			ptrs[r] = &row[0]
			scales(row, nb, panel, r)
		}
		// Direct calls, so that ptrs stays on the stack (noescape).
		switch t {
		case quant.Q4_0:
			packQ4_0QuadsAVX2(&ptrs, units, &panel[0])
		case quant.Q4_K:
			packQ4_KQuadsAVX2(&ptrs, units, &panel[0])
		case quant.Q6_K:
			packQ6_KQuadsAVX2(&ptrs, units, &panel[0])
		}
	}
}

//go:noescape
func gemmq6x8x6AVX2(w, a, bs *byte, nsb int, out *float32)

// gemmq6Fast is the AVX2 form of gemmq6Generic.
func gemmq6Fast(w, a, bs []byte, nb int, out *[qTile]float32) {
	nsb := nb / 8
	if nsb <= 0 {
		return
	}
	_ = w[nb*q6PanelBlock-1]
	_ = a[nb*qActBlock-1]
	_ = bs[nb*qBsBlock-1]
	gemmq6x8x6AVX2(&w[0], &a[0], &bs[0], nsb, &out[0])
	gemmq6x8x6AVX2(&w[32], &a[0], &bs[0], nsb, &out[8])
}

// gemmq6Kernel returns the Q6_K micro-kernel of the kernel set k.
func gemmq6Kernel(k *kernels) gemmqKernelFunc {
	if k.name == "go" || !hasAVX2() {
		return gemmq6Generic
	}
	return gemmq6Fast
}
