// Package synth generates random-weight models of any Phi-3 (phi-4,
// phi-4-mini) shape, bit for bit as the reference generator
// ../shared/refs/tools/make_tiny_phi3.py (and make_micromini.py) does, so
// that the reference models can be regenerated and realistic sizes can be
// benchmarked without real weights.
//
// Weights: for a tensor with Hugging Face name NAME, s0 is the little-endian
// uint64 of the first 8 bytes of sha256("phi3-random-v1/<seed>/<NAME>");
// element i (row-major) draws z = splitmix64(s0 + (i+1)·0x9E3779B97F4A7C15),
// k = int(z>>40) − 2^23, u = k·2^-23 ∈ [−1, 1). Matrices hold u·2^-E, norms
// float32(1 + u·2^-3); every value is rounded to BF16 (nearest even) and
// values below 2^-14 in magnitude become +0, so BF16, F16 and F32 hold the
// same numbers. E = round(log2(sqrt(fan_in)/gain)) per tensor class.
package synth

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Gains are the per-class weight gains; a class's half-width exponent is
// E = round(log2(sqrt(fan_in)/gain)) (ties to even, as Python's round).
type Gains struct {
	QKV, O, GateUp, Down, LMHead float64
}

// DefaultGains returns make_tiny_phi3.py's gains.
func DefaultGains() Gains { return Gains{QKV: 2, O: 0.5, GateUp: 2, Down: 0.5, LMHead: 4} }

// MiniGains returns make_micromini.py's gains (stronger residual branches).
func MiniGains() Gains { return Gains{QKV: 2, O: 4, GateUp: 2, Down: 4, LMHead: 4} }

// embedExp is the fixed half-width exponent of the token embeddings.
const embedExp = 2

// Config describes a Phi-3-architecture model to generate.
type Config struct {
	// Name is the preset name; GGUF general.name is "Random Phi4 <Name>"
	// (title case). It must not make the name contain "phi3" or "phi-3".
	Name         string
	Hidden       int
	Layers       int
	Heads        int
	KVHeads      int
	Intermediate int
	Vocab        int
	Ctx          int // max_position_embeddings
	RopeTheta    float64
	RMSEps       float64
	Gains        Gains
	Seed         int64

	// Phi-4-mini features (micromini): LongRoPE factors drawn from the
	// weight stream, original context OrigCtx, partial rotary, tied
	// embeddings (no lm_head).
	LongRoPE      bool
	OrigCtx       int
	PartialRotary float64 // fraction of each head rotated; 0 means 1
	Tied          bool
}

// presets are the reference shapes: micro, tiny and small from
// make_tiny_phi3.py, micromini from make_micromini.py.
var presets = map[string]Config{
	"micro":     {Name: "micro", Hidden: 64, Layers: 2, Heads: 4, KVHeads: 1, Intermediate: 192, Vocab: 1024, Ctx: 512, RopeTheta: 250000, RMSEps: 1e-5, Gains: DefaultGains(), Seed: 1234},
	"tiny":      {Name: "tiny", Hidden: 256, Layers: 4, Heads: 8, KVHeads: 2, Intermediate: 768, Vocab: 100352, Ctx: 2048, RopeTheta: 250000, RMSEps: 1e-5, Gains: DefaultGains(), Seed: 1234},
	"small":     {Name: "small", Hidden: 2048, Layers: 16, Heads: 16, KVHeads: 4, Intermediate: 5632, Vocab: 100352, Ctx: 4096, RopeTheta: 250000, RMSEps: 1e-5, Gains: DefaultGains(), Seed: 1234},
	"micromini": {Name: "micromini", Hidden: 128, Layers: 2, Heads: 2, KVHeads: 1, Intermediate: 256, Vocab: 1024, Ctx: 4096, OrigCtx: 256, RopeTheta: 10000, RMSEps: 1e-5, Gains: MiniGains(), Seed: 1234, LongRoPE: true, PartialRotary: 0.75, Tied: true},
}

// Preset returns the named reference shape (micro, micromini, tiny,
// small).
func Preset(name string) (Config, bool) {
	c, ok := presets[name]
	return c, ok
}

// PresetNames returns the preset names, sorted.
func PresetNames() []string {
	var names []string
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Validate checks that the shape is consistent.
func (c Config) Validate() error {
	switch {
	case c.Hidden <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.KVHeads <= 0 || c.Intermediate <= 0 || c.Vocab <= 0 || c.Ctx <= 0:
		return fmt.Errorf("synth %s: all dimensions must be positive", c.Name)
	case c.Hidden%c.Heads != 0:
		return fmt.Errorf("synth %s: hidden %d is not a multiple of heads %d", c.Name, c.Hidden, c.Heads)
	case c.Heads%c.KVHeads != 0:
		return fmt.Errorf("synth %s: heads %d is not a multiple of kv heads %d", c.Name, c.Heads, c.KVHeads)
	case strings.Contains(strings.ToLower(c.GGUFName()), "phi3") || strings.Contains(strings.ToLower(c.GGUFName()), "phi-3"):
		return fmt.Errorf("synth %s: general.name %q would trigger llama.cpp's Phi-3 SentencePiece fix-ups", c.Name, c.GGUFName())
	}
	return nil
}

// HeadDim returns hidden/heads.
func (c Config) HeadDim() int { return c.Hidden / c.Heads }

// RotaryDim returns the number of rotated dimensions per head (llama.cpp's
// rope.dimension_count: int(partial·hidden)/heads).
func (c Config) RotaryDim() int {
	if c.PartialRotary == 0 || c.PartialRotary == 1 {
		return c.HeadDim()
	}
	return int(c.PartialRotary*float64(c.Hidden)) / c.Heads
}

// OriginalCtx returns original_max_position_embeddings.
func (c Config) OriginalCtx() int {
	if c.OrigCtx > 0 {
		return c.OrigCtx
	}
	return c.Ctx
}

// GGUFName returns the general.name written to GGUF files.
func (c Config) GGUFName() string {
	if c.LongRoPE && c.Tied {
		return "Random Phi4Mini " + title(c.Name)
	}
	return "Random Phi4 " + title(c.Name)
}

// title mimics Python's str.title for ASCII names.
func title(s string) string {
	b := []byte(s)
	prevLetter := false
	for i, ch := range b {
		isLetter := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z'
		switch {
		case isLetter && !prevLetter && ch >= 'a' && ch <= 'z':
			b[i] = ch - 32
		case isLetter && prevLetter && ch >= 'A' && ch <= 'Z':
			b[i] = ch + 32
		}
		prevLetter = isLetter
	}
	return string(b)
}

// HalfWidthExp returns round(log2(sqrt(fanIn)/gain)) with ties to even.
// It is computed as 0.5·log2(fanIn) − log2(gain), which is exact when both
// are powers of two (so ties are exact ties, as in the reference).
func HalfWidthExp(gain float64, fanIn int) int {
	return int(math.RoundToEven(float64(0.5*math.Log2(float64(fanIn))) - math.Log2(gain)))
}

// TensorKind distinguishes weight matrices from norm vectors.
type TensorKind int

// Tensor kinds.
const (
	Matrix TensorKind = iota
	Norm
)

// TensorSpec is one generated tensor.
type TensorSpec struct {
	HFName   string
	GGUFName string
	Shape    []int // outermost first, HF layout
	Kind     TensorKind
	Exp      int // half-width exponent E for matrices
}

// Elements returns the number of elements.
func (s TensorSpec) Elements() int {
	n := 1
	for _, d := range s.Shape {
		n *= d
	}
	return n
}

// Tensors returns the model's tensors in the reference generator's order.
func (c Config) Tensors() []TensorSpec {
	H, I, V := c.Hidden, c.Intermediate, c.Vocab
	kvd := c.KVHeads * c.HeadDim()
	g := c.Gains
	out := []TensorSpec{{"model.embed_tokens.weight", "token_embd.weight", []int{V, H}, Matrix, embedExp}}
	for l := range c.Layers {
		p := fmt.Sprintf("model.layers.%d.", l)
		b := fmt.Sprintf("blk.%d.", l)
		out = append(out,
			TensorSpec{p + "input_layernorm.weight", b + "attn_norm.weight", []int{H}, Norm, 0},
			TensorSpec{p + "self_attn.qkv_proj.weight", b + "attn_qkv.weight", []int{H + 2*kvd, H}, Matrix, HalfWidthExp(g.QKV, H)},
			TensorSpec{p + "self_attn.o_proj.weight", b + "attn_output.weight", []int{H, H}, Matrix, HalfWidthExp(g.O, H)},
			TensorSpec{p + "post_attention_layernorm.weight", b + "ffn_norm.weight", []int{H}, Norm, 0},
			TensorSpec{p + "mlp.gate_up_proj.weight", b + "ffn_up.weight", []int{2 * I, H}, Matrix, HalfWidthExp(g.GateUp, H)},
			TensorSpec{p + "mlp.down_proj.weight", b + "ffn_down.weight", []int{H, I}, Matrix, HalfWidthExp(g.Down, I)},
		)
	}
	out = append(out, TensorSpec{"model.norm.weight", "output_norm.weight", []int{H}, Norm, 0})
	if !c.Tied {
		out = append(out, TensorSpec{"lm_head.weight", "output.weight", []int{V, H}, Matrix, HalfWidthExp(g.LMHead, H)})
	}
	return out
}

// Params returns the number of weight parameters (LongRoPE factors excluded).
func (c Config) Params() int {
	n := 0
	for _, t := range c.Tensors() {
		n += t.Elements()
	}
	return n
}

// TensorSeed returns the stream seed of the tensor (or pseudo-tensor) name.
func TensorSeed(seed int64, name string) uint64 {
	h := sha256.Sum256([]byte(fmt.Sprintf("phi3-random-v1/%d/%s", seed, name)))
	return binary.LittleEndian.Uint64(h[:8])
}

// splitmix returns the integer k ∈ [−2^23, 2^23) of element i of the
// stream seeded with s0.
func splitmix(s0 uint64, i int) int32 {
	z := s0 + uint64(i+1)*0x9E3779B97F4A7C15
	z ^= z >> 30
	z *= 0xBF58476D1CE4E5B9
	z ^= z >> 27
	z *= 0x94D049BB133111EB
	z ^= z >> 31
	return int32(z>>40) - 1<<23
}

// bf16 rounds f to BF16 bits, nearest even (no NaNs occur here).
func bf16(f float32) uint16 {
	b := math.Float32bits(f)
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// GenerateBF16 fills dst with the BF16 bits of elements start..start+len(dst)
// of the tensor.
func GenerateBF16(seed int64, t TensorSpec, start int, dst []uint16) {
	s0 := TensorSeed(seed, t.HFName)
	scale := float32(math.Ldexp(1, -t.Exp))
	for j := range dst {
		u := float32(splitmix(s0, start+j)) * (1.0 / (1 << 23))
		var w float32
		if t.Kind == Norm {
			w = 1 + float32(u*0.125)
		} else {
			w = u * scale
		}
		h := bf16(w)
		if (h>>7)&0xff < 127-14 {
			h = 0
		}
		dst[j] = h
	}
}

// RopeFactors returns the LongRoPE short and long factors (rotary_dim/2
// each) drawn from the pseudo-tensors "rope_scaling.short_factor" and
// "rope_scaling.long_factor": 1 + span·u′ with u′ = (k + 2^23)/2^24,
// rounded to a multiple of 1/1024 (span 0.5 and 19).
func (c Config) RopeFactors() (short, long []float32) {
	one := func(name string, span float64) []float32 {
		s0 := TensorSeed(c.Seed, name)
		out := make([]float32, c.RotaryDim()/2)
		for i := range out {
			u := float64(int64(splitmix(s0, i))+1<<23) / (1 << 24)
			out[i] = float32(math.RoundToEven((1+float64(span*u))*1024) / 1024)
		}
		return out
	}
	return one("rope_scaling.short_factor", 0.5), one("rope_scaling.long_factor", 19)
}

// AttnFactor returns the LongRoPE magnitude factor
// sqrt(1 + ln(ctx/orig)/ln(orig)).
func (c Config) AttnFactor() float64 {
	scale := float64(c.Ctx) / float64(c.OriginalCtx())
	return math.Sqrt(1 + math.Log(scale)/math.Log(float64(c.OriginalCtx())))
}
