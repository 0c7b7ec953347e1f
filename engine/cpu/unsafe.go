package cpu

import "unsafe"

// bytesAsF32 reinterprets the first 4·n bytes of b as n float32 values
// (little-endian hosts only; b must be 4-byte aligned, which GGUF's
// 32-byte alignment and our own allocations guarantee).
func bytesAsF32(b []byte, n int) []float32 {
	if n == 0 {
		return nil
	}
	_ = b[4*n-1]
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
}

// f32AsBytes reinterprets f as its raw bytes.
func f32AsBytes(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*len(f))
}
