// Package weights reads model weight files — GGUF (v2, v3) and safetensors
// (single file or sharded with model.safetensors.index.json) — over mmap,
// without copying tensor data on load.
package weights

import "github.com/phi4mac/phi4mac/engine/quant"

// Tensor is one named weight tensor. Data aliases the mapped file and must be
// treated as read-only; it stays valid until the Source it came from is closed.
type Tensor struct {
	Name string
	Type quant.Type
	// Shape lists dimensions outermost first, as numpy and Hugging Face do:
	// a linear layer's weight is [out, in] and each row is contiguous. (GGUF
	// stores dimensions innermost first; the GGUF reader reverses them.)
	Shape []int
	// Data holds the raw bytes of the tensor in its on-disk format.
	Data []byte
}

// Elements returns the number of elements in the tensor.
func (t *Tensor) Elements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}
