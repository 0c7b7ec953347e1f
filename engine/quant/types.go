// Package quant defines the tensor element and block formats phi4mac reads
// (F32, F16, BF16 and GGML's Q8_0, Q4_0, Q5_0, Q4_K, Q6_K) and their
// reference (de)quantisation in plain Go. Every backend's kernels are tested
// against this package.
package quant

import (
	"fmt"
	"strings"
)

// Type is a tensor element format. The numeric values are GGML's type ids, so
// a Type read from a GGUF tensor table converts directly.
type Type uint32

// The formats phi4mac understands.
const (
	F32  Type = 0
	F16  Type = 1
	Q4_0 Type = 2
	Q5_0 Type = 6
	Q8_0 Type = 8
	Q4_K Type = 12
	Q6_K Type = 14
	BF16 Type = 30
)

type typeInfo struct {
	name       string
	blockSize  int // elements per block
	blockBytes int // bytes per block
}

var typeTable = map[Type]typeInfo{
	F32:  {"F32", 1, 4},
	F16:  {"F16", 1, 2},
	BF16: {"BF16", 1, 2},
	Q8_0: {"Q8_0", 32, 34},
	Q4_0: {"Q4_0", 32, 18},
	Q5_0: {"Q5_0", 32, 22},
	Q4_K: {"Q4_K", 256, 144},
	Q6_K: {"Q6_K", 256, 210},
}

// Known reports whether phi4mac can read tensors of type t.
func (t Type) Known() bool {
	_, ok := typeTable[t]
	return ok
}

// String returns the GGML name of the type, e.g. "Q4_K".
func (t Type) String() string {
	if info, ok := typeTable[t]; ok {
		return info.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockSize returns the number of elements in one block (1 for float types).
func (t Type) BlockSize() int { return typeTable[t].blockSize }

// BlockBytes returns the size in bytes of one block.
func (t Type) BlockBytes() int { return typeTable[t].blockBytes }

// Quantized reports whether t is a block-quantised format.
func (t Type) Quantized() bool { return t.BlockSize() > 1 }

// RowBytes returns the number of bytes n consecutive elements occupy. n must
// be a multiple of the block size.
func (t Type) RowBytes(n int) (int, error) {
	info, ok := typeTable[t]
	if !ok {
		return 0, fmt.Errorf("unsupported tensor type %s", t)
	}
	if n < 0 || n%info.blockSize != 0 {
		return 0, fmt.Errorf("%s: row of %d elements is not a multiple of the block size %d", t, n, info.blockSize)
	}
	return n / info.blockSize * info.blockBytes, nil
}

// ParseType returns the Type named s (case-insensitive GGML name).
func ParseType(s string) (Type, error) {
	for t, info := range typeTable {
		if strings.EqualFold(info.name, s) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown tensor type %q (want one of F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K)", s)
}
