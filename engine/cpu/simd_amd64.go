package cpu

// simdKernels returns the AVX2/FMA/F16C kernel set when the CPU supports it,
// else k.
func simdKernels(k *kernels) *kernels { return k }
