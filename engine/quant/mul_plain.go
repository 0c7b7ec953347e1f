//go:build amd64 && !amd64.v3

package quant

// mul returns a*b rounded to float32. Below GOAMD64=v3 there is no FMA
// instruction, so a plain multiply is never fused with a following add
// (see mul_fused.go for the other targets).
func mul(a, b float32) float32 { return a * b }
