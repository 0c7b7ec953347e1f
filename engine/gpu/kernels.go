package gpu

import (
	"fmt"

	"github.com/phi4mac/phi4mac/engine/quant"
)

// Threadgroup shapes the kernels are written for (see the .metal files).
const (
	gemvThreads     = 64 // 2 simdgroups
	gemvRowsPerTG   = 8  // 2 simdgroups x ROWS (4)
	normThreads     = 256
	argmaxThreads   = 256
	elementThreads  = 256
	laneThreads     = 32  // one simdgroup: rope, kv append, attention, embed
	gemmThreads     = 128 // 4 simdgroups
	gemmRowsPerTG   = 32
	gemmTokensPerTG = 16
	defaultGemmMin  = 4 // batches of at least this many tokens use the GEMM
	attnMaxHeadDim  = 256
	defaultAttnSpan = 256 // positions per attention split
	// attnParallelGroups is the number of (head, token) threadgroups from
	// which attention does not split the sequence (prefill batches).
	attnParallelGroups = 1024
)

// gemvKernel returns the matrix-vector kernel for weights of type t.
func gemvKernel(t quant.Type) (string, error) {
	switch t {
	case quant.F32:
		return "gemv_f32", nil
	case quant.F16:
		return "gemv_f16", nil
	case quant.Q8_0:
		return "gemv_q8_0", nil
	case quant.Q4_0:
		return "gemv_q4_0", nil
	case quant.Q5_0:
		return "gemv_q5_0", nil
	case quant.Q4_K:
		return "gemv_q4_k", nil
	case quant.Q6_K:
		return "gemv_q6_k", nil
	}
	return "", fmt.Errorf("gpu: no matmul kernel for %s", t)
}

// gemmKernel returns the matrix-matrix (prefill) kernel for weights of
// type t: the GEMV name with the gemm_ prefix.
func gemmKernel(t quant.Type) (string, error) {
	k, err := gemvKernel(t)
	if err != nil {
		return "", err
	}
	return "gemm_" + k[len("gemv_"):], nil
}

// embedKernel returns the embedding-row kernel for a table of type t.
func embedKernel(t quant.Type) (string, error) {
	switch t {
	case quant.F32:
		return "embed_f32", nil
	case quant.F16:
		return "embed_f16", nil
	case quant.Q8_0:
		return "embed_q8_0", nil
	case quant.Q4_0:
		return "embed_q4_0", nil
	case quant.Q5_0:
		return "embed_q5_0", nil
	case quant.Q4_K:
		return "embed_q4_k", nil
	case quant.Q6_K:
		return "embed_q6_k", nil
	}
	return "", fmt.Errorf("gpu: no embedding kernel for %s", t)
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// groupThreads returns the threadgroup size for a reduction over n
// elements: a multiple of 32, at most max.
func groupThreads(n, max int) int {
	t := ceilDiv(n, 32) * 32
	if t > max {
		t = max
	}
	if t < 32 {
		t = 32
	}
	return t
}
