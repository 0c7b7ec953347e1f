//go:build !amd64 || amd64.v3

package quant

// mul returns a*b rounded to float32 on its own. Go may fuse a float32
// multiply and a following add into one FMA (it does on arm64 and
// amd64/v3, even through an explicit float32() conversion of the product);
// GGML's reference rounds the product first. The product of two float32
// values is exact in float64, so converting it back rounds exactly once,
// and that conversion cannot be fused.
func mul(a, b float32) float32 { return float32(float64(a) * float64(b)) }
