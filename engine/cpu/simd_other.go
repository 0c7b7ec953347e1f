//go:build !amd64

package cpu

// simdKernels returns k: there are no SIMD kernels for this architecture
// yet, so the pure-Go set runs.
func simdKernels(k *kernels) *kernels { return k }
