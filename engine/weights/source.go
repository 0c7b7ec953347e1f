package weights

// Source is a set of named tensors backed by an open file (or files).
// Tensor data stays valid until Close.
type Source interface {
	// Tensors returns all tensors in file order.
	Tensors() []*Tensor
	// Tensor returns the tensor called name.
	Tensor(name string) (*Tensor, bool)
	// Close releases the mapping; tensor Data must not be used afterwards.
	Close() error
}

var (
	_ Source = (*GGUF)(nil)
	_ Source = (*Safetensors)(nil)
)
