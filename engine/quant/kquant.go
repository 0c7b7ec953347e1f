package quant

import "math"

// K-quant reference quantizers: GGML's quantize_row_q4_K_ref and
// quantize_row_q6_K_ref (what llama-quantize writes for Q4_K/Q6_K tensors
// when no importance matrix is given), restated in Go with the same float32
// arithmetic.

// groupMaxEps is GGML's threshold below which a group counts as all zero.
const groupMaxEps = 1e-15

// nearestInt rounds to the nearest integer, ties to even, as GGML's
// nearest_int (valid for |f| < 2^22, which the callers guarantee). Callers
// pass products through mul so that no FMA skips their rounding.
func nearestInt(f float32) int32 {
	v := f + 12582912
	return int32(math.Float32bits(v)&0x007fffff) - 0x00400000
}

// makeQKX2Quants is GGML's make_qkx2_quants with use_mad = false: it picks
// a scale and a (non-positive) minimum for n values so that
// x ≈ scale·L + min with L in [0, nmax], minimising the weighted squared
// error over nstep+1 candidate scales. It returns scale and −min.
func makeQKX2Quants(nmax int32, x, weights []float32, L, Laux []uint8, rmin, rdelta float32, nstep int) (scale, negMin float32) {
	n := len(x)
	minV, maxV := x[0], x[0]
	sumW := weights[0]
	sumX := mul(sumW, x[0])
	for i := 1; i < n; i++ {
		if x[i] < minV {
			minV = x[i]
		}
		if x[i] > maxV {
			maxV = x[i]
		}
		w := weights[i]
		sumW += w
		sumX += mul(w, x[i])
	}
	if minV > 0 {
		minV = 0
	}
	if maxV == minV {
		for i := range L[:n] {
			L[i] = 0
		}
		return 0, -minV
	}
	iscale := float32(nmax) / (maxV - minV)
	scale = 1 / iscale
	var bestError float32
	for i := range n {
		l := nearestInt(mul(iscale, x[i]-minV))
		L[i] = uint8(max(0, min(nmax, l)))
		diff := mul(scale, float32(L[i])) + minV - x[i]
		bestError += mul(weights[i], mul(diff, diff))
	}
	for is := 0; is <= nstep; is++ {
		iscale = (rmin + mul(rdelta, float32(is)) + float32(nmax)) / (maxV - minV)
		var sumL, sumL2, sumXL float32
		for i := range n {
			l := max(0, min(nmax, nearestInt(mul(iscale, x[i]-minV))))
			Laux[i] = uint8(l)
			w := weights[i]
			fl := float32(l)
			sumL += mul(w, fl)
			sumL2 += mul(mul(w, fl), fl)
			sumXL += mul(mul(w, fl), x[i])
		}
		D := mul(sumW, sumL2) - mul(sumL, sumL)
		if D > 0 {
			thisScale := (mul(sumW, sumXL) - mul(sumX, sumL)) / D
			thisMin := (mul(sumL2, sumX) - mul(sumL, sumXL)) / D
			if thisMin > 0 {
				thisMin = 0
				thisScale = sumXL / sumL2
			}
			var curError float32
			for i := range n {
				diff := mul(thisScale, float32(Laux[i])) + thisMin - x[i]
				curError += mul(weights[i], mul(diff, diff))
			}
			if curError < bestError {
				copy(L[:n], Laux[:n])
				bestError = curError
				scale = thisScale
				minV = thisMin
			}
		}
	}
	return scale, -minV
}

// QuantizeBlockQ4_K encodes 256 values as one Q4_K super-block with the
// arithmetic of GGML's quantize_row_q4_K_ref.
func QuantizeBlockQ4_K(x *[256]float32, b *[144]byte) {
	var (
		L       [256]uint8
		Laux    [32]uint8
		weights [32]float32
		mins    [8]float32
		scales  [8]float32
	)
	var maxScale, maxMin float32
	for j := range 8 {
		xs := x[32*j : 32*j+32]
		var sumX2 float32
		for _, v := range xs {
			sumX2 += mul(v, v)
		}
		avX := float32(math.Sqrt(float64(sumX2 / 32)))
		for l, v := range xs {
			weights[l] = avX + abs32(v)
		}
		scales[j], mins[j] = makeQKX2Quants(15, xs, weights[:], L[32*j:32*j+32], Laux[:], -1, 0.1, 20)
		if scales[j] > maxScale {
			maxScale = scales[j]
		}
		if mins[j] > maxMin {
			maxMin = mins[j]
		}
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	sc := (*[12]byte)(b[4:16])
	*sc = [12]byte{}
	for j := range 8 {
		ls := min(63, uint8(nearestInt(mul(invScale, scales[j]))))
		lm := min(63, uint8(nearestInt(mul(invMin, mins[j]))))
		if j < 4 {
			sc[j] = ls
			sc[j+4] = lm
		} else {
			sc[j+4] = ls&0x0f | (lm&0x0f)<<4
			sc[j-4] |= (ls >> 4) << 6
			sc[j] |= (lm >> 4) << 6
		}
	}
	putHalf(b[0:], maxScale/63)
	putHalf(b[2:], maxMin/63)
	d, dmin := halfAt(b[0:]), halfAt(b[2:])
	for j := range 8 {
		s, m := ScaleMinK4(j, sc)
		dj := d * float32(s)
		if dj == 0 {
			continue
		}
		dm := mul(dmin, float32(m))
		for ii := range 32 {
			l := nearestInt((x[32*j+ii] + dm) / dj)
			L[32*j+ii] = uint8(max(0, min(15, l)))
		}
	}
	q := b[16:144]
	for j := 0; j < 256; j += 64 {
		for l := range 32 {
			q[j/2+l] = L[j+l] | L[j+l+32]<<4
		}
	}
}

// makeQXQuants is GGML's make_qx_quants with rmse_type 1 and no importance
// weights (w = x²): a symmetric scale for L in [−nmax, nmax−1], refined
// over 18 candidate scales. L receives l + nmax.
func makeQXQuants(nmax int32, x []float32, L []int8) float32 {
	var maxV, amax float32
	for _, v := range x {
		if ax := abs32(v); ax > amax {
			amax, maxV = ax, v
		}
	}
	if amax < groupMaxEps {
		for i := range L[:len(x)] {
			L[i] = 0
		}
		return 0
	}
	iscale := float32(-nmax) / maxV
	var sumLX, sumL2 float32
	for i, v := range x {
		l := max(-nmax, min(nmax-1, nearestInt(mul(iscale, v))))
		L[i] = int8(l + nmax)
		w := mul(v, v)
		fl := float32(l)
		sumLX += mul(mul(w, v), fl)
		sumL2 += mul(mul(w, fl), fl)
	}
	var scale float32
	if sumL2 != 0 {
		scale = sumLX / sumL2
	}
	best := scale * sumLX
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(float32(nmax) + mul(0.1, float32(is))) / maxV
		sumLX, sumL2 = 0, 0
		for _, v := range x {
			l := max(-nmax, min(nmax-1, nearestInt(mul(iscale, v))))
			w := mul(v, v)
			fl := float32(l)
			sumLX += mul(mul(w, v), fl)
			sumL2 += mul(mul(w, fl), fl)
		}
		if sumL2 > 0 && mul(sumLX, sumLX) > mul(best, sumL2) {
			for i, v := range x {
				l := max(-nmax, min(nmax-1, nearestInt(mul(iscale, v))))
				L[i] = int8(nmax + l)
			}
			scale = sumLX / sumL2
			best = scale * sumLX
		}
	}
	return scale
}

// QuantizeBlockQ6_K encodes 256 values as one Q6_K super-block with the
// arithmetic of GGML's quantize_row_q6_K_ref.
func QuantizeBlockQ6_K(x *[256]float32, b *[210]byte) {
	var (
		L      [256]int8
		scales [16]float32
	)
	var maxScale, maxAbsScale float32
	for ib := range 16 {
		s := makeQXQuants(32, x[16*ib:16*ib+16], L[16*ib:16*ib+16])
		scales[ib] = s
		if a := abs32(s); a > maxAbsScale {
			maxAbsScale, maxScale = a, s
		}
	}
	if maxAbsScale < groupMaxEps {
		*b = [210]byte{}
		return
	}
	iscale := -128 / maxScale
	putHalf(b[208:], 1/iscale)
	sc := b[192:208]
	for ib := range 16 {
		sc[ib] = byte(int8(min(127, nearestInt(mul(iscale, scales[ib])))))
	}
	d := halfAt(b[208:])
	for j := range 16 {
		dj := d * float32(int8(sc[j]))
		if dj == 0 {
			continue
		}
		for ii := range 16 {
			l := max(-32, min(31, nearestInt(x[16*j+ii]/dj)))
			L[16*j+ii] = int8(l + 32)
		}
	}
	ql, qh := b[0:128], b[128:192]
	for j := 0; j < 256; j += 128 {
		for l := range 32 {
			q1 := uint8(L[j+l]) & 0x0f
			q2 := uint8(L[j+l+32]) & 0x0f
			q3 := uint8(L[j+l+64]) & 0x0f
			q4 := uint8(L[j+l+96]) & 0x0f
			ql[j/2+l] = q1 | q3<<4
			ql[j/2+l+32] = q2 | q4<<4
			qh[j/4+l] = uint8(L[j+l])>>4 | (uint8(L[j+l+32])>>4)<<2 | (uint8(L[j+l+64])>>4)<<4 | (uint8(L[j+l+96])>>4)<<6
		}
	}
}
