package weights

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/phi4mac/phi4mac/engine/quant"
)

// Scheme is a whole-model weight format, as llama-quantize names them: the
// type of ordinary weight matrices plus llama-quantize's rules for the
// tensors that get a different type (e.g. Q4_K_M keeps output.weight and
// some attention/FFN-down matrices at Q6_K).
type Scheme struct {
	Name     string     // "Q8_0", "Q4_K_M", ...
	Base     quant.Type // type of ordinary matrices
	FileType uint32     // llama.cpp's general.file_type
}

// schemes lists the supported schemes.
var schemes = []Scheme{
	{"F32", quant.F32, 0},
	{"F16", quant.F16, 1},
	{"BF16", quant.BF16, 32},
	{"Q8_0", quant.Q8_0, 7},
	{"Q4_0", quant.Q4_0, 2},
	{"Q5_0", quant.Q5_0, 8},
	{"Q4_K_M", quant.Q4_K, 15},
}

// ParseScheme returns the scheme called s (case-insensitive).
func ParseScheme(s string) (Scheme, error) {
	var names []string
	for _, sc := range schemes {
		if strings.EqualFold(sc.Name, s) {
			return sc, nil
		}
		names = append(names, strings.ToLower(sc.Name))
	}
	return Scheme{}, fmt.Errorf("unknown weight format %q (want one of %s)", s, strings.Join(names, ", "))
}

// SchemeFor returns the scheme whose ordinary matrices are t.
func SchemeFor(t quant.Type) (Scheme, bool) {
	for _, sc := range schemes {
		if sc.Base == t && sc.Name != "Q4_K_M" {
			return sc, true
		}
	}
	return Scheme{}, false
}

// TensorInfo is a tensor's name and shape (outermost first).
type TensorInfo struct {
	Name  string
	Shape []int
}

// layerOf returns N for "blk.N.*" names, or -1.
func layerOf(name string) int {
	rest, ok := strings.CutPrefix(name, "blk.")
	if !ok {
		return -1
	}
	n, _, _ := strings.Cut(rest, ".")
	i, err := strconv.Atoi(n)
	if err != nil {
		return -1
	}
	return i
}

// SortLlamaQuantize sorts tensors as llama-quantize writes them: tensors
// outside the layers first, then layer by layer (numerically), by name
// within each group.
func SortLlamaQuantize(ts []TensorInfo) {
	sort.SliceStable(ts, func(i, j int) bool {
		li, lj := layerOf(ts[i].Name), layerOf(ts[j].Name)
		if li != lj {
			return li < lj
		}
		return ts[i].Name < ts[j].Name
	})
}

// useMoreBits is llama.cpp's rule for which of n layers get more bits.
func useMoreBits(i, n int) bool {
	return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2
}

// TensorTypes returns the type llama-quantize (without an importance
// matrix) gives each tensor under the scheme; ts must be in
// SortLlamaQuantize order. 1-D tensors keep F32. For quantized schemes
// output.weight (token_embd.weight when there is no output.weight) becomes
// Q6_K unless the scheme is Q8_0, and Q4_K_M raises attention V/QKV and
// FFN-down matrices of the layers chosen by llama.cpp's use_more_bits to
// Q6_K. K-quant rows that are not a multiple of 256 fall back as
// llama-quantize does (Q4_K→Q5_0, Q6_K→Q8_0); other rows that do not fit
// the block size fall back to F16.
func (s Scheme) TensorTypes(ts []TensorInfo) []quant.Type {
	hasOutput := false
	nLayer, nAttnV := 0, 0
	for _, t := range ts {
		if t.Name == "output.weight" {
			hasOutput = true
		}
		nLayer = max(nLayer, layerOf(t.Name)+1)
		if strings.Contains(t.Name, "attn_v.weight") || strings.Contains(t.Name, "attn_qkv.weight") {
			nAttnV++
		}
	}
	out := make([]quant.Type, len(ts))
	iAttnV, iFFNDown := 0, 0
	for k, t := range ts {
		if len(t.Shape) < 2 {
			out[k] = quant.F32
			continue
		}
		typ := s.Base
		if s.Base.Quantized() {
			nx := t.Shape[len(t.Shape)-1]
			switch {
			case t.Name == "output.weight" || (!hasOutput && t.Name == "token_embd.weight"):
				if nx%256 != 0 {
					typ = quant.Q8_0
				} else if typ != quant.Q8_0 {
					typ = quant.Q6_K
				}
			case strings.Contains(t.Name, "attn_v.weight") || strings.Contains(t.Name, "attn_qkv.weight"):
				if s.Name == "Q4_K_M" && useMoreBits(iAttnV, nAttnV) {
					typ = quant.Q6_K
				}
				iAttnV++
			case strings.Contains(t.Name, "ffn_down"):
				if s.Name == "Q4_K_M" && useMoreBits(iFFNDown, nLayer) {
					typ = quant.Q6_K
				}
				iFFNDown++
			}
			if nx%typ.BlockSize() != 0 {
				switch typ {
				case quant.Q4_K:
					typ = quant.Q5_0
				case quant.Q6_K:
					typ = quant.Q8_0
				}
			}
		}
		if t.Shape[len(t.Shape)-1]%typ.BlockSize() != 0 {
			typ = quant.F16
		}
		out[k] = typ
	}
	return out
}

// LlamaQuantizeMetadata returns the metadata llama-quantize writes for a
// source file's metadata: everything in order, except that
// general.quantization_version and general.file_type move to the end (with
// the scheme's file type).
func (s Scheme) LlamaQuantizeMetadata(src []KV) []KV {
	out := make([]KV, 0, len(src)+2)
	for _, kv := range src {
		if kv.Key != "general.quantization_version" && kv.Key != "general.file_type" {
			out = append(out, kv)
		}
	}
	return append(out,
		KV{"general.quantization_version", Uint32Value(2)},
		KV{"general.file_type", Uint32Value(s.FileType)})
}
