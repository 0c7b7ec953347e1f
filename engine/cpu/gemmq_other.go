//go:build !amd64

package cpu

import "github.com/phi4mac/phi4mac/engine/quant"

// gemmqKernel returns the int8 prefill micro-kernel: the pure-Go one.
func gemmqKernel(*kernels) gemmqKernelFunc { return gemmq16x6Generic }

// gemmq6Kernel returns the Q6_K micro-kernel: the pure-Go one.
func gemmq6Kernel(*kernels) gemmqKernelFunc { return gemmq6Generic }

// q8BlocksFor returns the activation quantisers: the pure-Go ones.
func q8BlocksFor(*kernels) *q8BlockKernels { return &q8BlocksGeneric }

// fastPacker returns nil: there are only the pure-Go panel packers.
func fastPacker(quant.Type, *kernels) gemmqPacker { return nil }
