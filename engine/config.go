package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// Architecture names a supported model family.
type Architecture string

// The supported architectures.
const (
	// ArchPhi3 is Hugging Face's Phi3ForCausalLM (phi-4, phi-4-mini).
	ArchPhi3 Architecture = "phi3"
	// ArchLlama is LlamaForCausalLM (used by the stories260K demo model).
	ArchLlama Architecture = "llama"
)

// ErrUnsupported reports a model the engine cannot run (unknown
// architecture, feature or tensor format).
var ErrUnsupported = errors.New("unsupported model")

// Config is a model's hyper-parameters, read from a Hugging Face config.json
// or from GGUF metadata.
type Config struct {
	Architecture Architecture
	Name         string // human-readable model name, when known

	Hidden  int // embedding width (hidden_size)
	Layers  int // transformer blocks
	Heads   int // query heads
	KVHeads int // key/value heads (grouped-query attention)
	HeadDim int // dimension of one head
	FFN     int // feed-forward width (intermediate_size)
	Vocab   int // vocabulary size (rows of the embedding table)

	RMSEps float64 // RMSNorm epsilon

	RopeTheta float64  // RoPE base frequency
	RotaryDim int      // rotated dimensions per head (partial rotary: < HeadDim)
	RopeMode  RopeMode // which dimensions rotate together

	// MaxContext is the longest context the model was built for
	// (max_position_embeddings / GGUF context_length).
	MaxContext int
	// LongRoPE (phi-4-mini). RopeShort and RopeLong hold RotaryDim/2
	// factors each; both are nil for plain RoPE.
	OriginalContext int       // original_max_position_embeddings
	RopeShort       []float64 // factors for contexts ≤ OriginalContext
	RopeLong        []float64 // factors for longer contexts
	RopeAttnFactor  float64   // cos/sin scale (mscale); 1 for plain RoPE

	// TiedEmbeddings is true when the output projection reuses the token
	// embedding matrix.
	TiedEmbeddings bool

	BOS, EOS int // token ids; -1 when unknown
}

// LongRoPE reports whether the model uses LongRoPE factor sets.
func (c *Config) LongRoPE() bool { return c.RopeShort != nil }

// Validate checks that the configuration is self-consistent.
func (c *Config) Validate() error {
	switch {
	case c.Architecture != ArchPhi3 && c.Architecture != ArchLlama:
		return fmt.Errorf("%w: architecture %q (want phi3 or llama)", ErrUnsupported, c.Architecture)
	case c.Hidden <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.KVHeads <= 0 || c.FFN <= 0 || c.Vocab <= 0:
		return fmt.Errorf("invalid config: hidden %d, layers %d, heads %d, kv heads %d, ffn %d, vocab %d must all be positive",
			c.Hidden, c.Layers, c.Heads, c.KVHeads, c.FFN, c.Vocab)
	case c.Heads%c.KVHeads != 0:
		return fmt.Errorf("invalid config: %d heads is not a multiple of %d kv heads", c.Heads, c.KVHeads)
	case c.HeadDim <= 0 || c.HeadDim%2 != 0:
		return fmt.Errorf("invalid config: head dimension %d must be positive and even", c.HeadDim)
	case c.RotaryDim <= 0 || c.RotaryDim > c.HeadDim || c.RotaryDim%2 != 0:
		return fmt.Errorf("invalid config: rotary dimension %d must be even and in (0, %d]", c.RotaryDim, c.HeadDim)
	case c.RopeTheta <= 0:
		return fmt.Errorf("invalid config: rope theta %g", c.RopeTheta)
	case c.MaxContext <= 0:
		return fmt.Errorf("invalid config: context length %d", c.MaxContext)
	case !(c.RMSEps > 0) || math.IsInf(c.RMSEps, 0):
		return fmt.Errorf("invalid config: RMSNorm epsilon %g must be positive", c.RMSEps)
	case c.Hidden > 1<<20 || c.Layers > 1<<12 || c.Heads > 1<<12 || c.HeadDim > 1<<16 || c.FFN > 1<<22 || c.Vocab > 1<<24 || c.MaxContext > 1<<26:
		return fmt.Errorf("invalid config: implausibly large dimensions (hidden %d, layers %d, heads %d, head dim %d, ffn %d, vocab %d, context %d)",
			c.Hidden, c.Layers, c.Heads, c.HeadDim, c.FFN, c.Vocab, c.MaxContext)
	}
	if c.RopeShort != nil || c.RopeLong != nil {
		if len(c.RopeShort) != c.RotaryDim/2 || len(c.RopeLong) != c.RotaryDim/2 {
			return fmt.Errorf("invalid config: LongRoPE needs %d short and long factors, have %d and %d",
				c.RotaryDim/2, len(c.RopeShort), len(c.RopeLong))
		}
		if c.OriginalContext <= 0 {
			return errors.New("invalid config: LongRoPE without original_max_position_embeddings")
		}
		for i, f := range append(append([]float64(nil), c.RopeShort...), c.RopeLong...) {
			if !(f > 0) || math.IsInf(f, 0) {
				return fmt.Errorf("invalid config: LongRoPE factor %d is %g, want a positive number", i, f)
			}
		}
		if !(c.RopeAttnFactor > 0) || math.IsInf(c.RopeAttnFactor, 0) {
			return fmt.Errorf("invalid config: LongRoPE attention factor %g, want a positive number", c.RopeAttnFactor)
		}
	}
	return nil
}

// LongFactors reports which LongRoPE factor set a session with a context of
// ctx positions uses. Like llama.cpp, the choice is made once per session
// from its configured context length: the long factors iff ctx exceeds the
// original context length. (llama.cpp first rounds ctx up to a multiple of
// 256; for phi-4-mini's 4096 and micromini's 256 that rounding never changes
// the answer.) Hugging Face transformers instead decides per forward call
// from the current sequence length, so a cached generation switches factor
// sets mid-way while its cached keys keep the old rotation; choosing once
// keeps every key in the cache rotated the same way.
func (c *Config) LongFactors(ctx int) bool {
	return c.LongRoPE() && ctx > c.OriginalContext
}

// Rope returns the rotary embedding a session with ctx positions uses.
func (c *Config) Rope(ctx int) *Rope {
	half := c.RotaryDim / 2
	r := &Rope{Mode: c.RopeMode, Heads: c.Heads, KVHeads: c.KVHeads, HeadDim: c.HeadDim,
		InvFreq: make([]float64, half), Scale: 1}
	factors := c.RopeShort
	if c.LongFactors(ctx) {
		factors = c.RopeLong
	}
	for i := range r.InvFreq {
		f := 1 / math.Pow(c.RopeTheta, float64(2*i)/float64(c.RotaryDim))
		if factors != nil {
			f /= factors[i]
		}
		r.InvFreq[i] = f
	}
	if c.LongRoPE() {
		r.Scale = c.RopeAttnFactor
	}
	return r
}

// hfConfig is the part of a Hugging Face config.json the engine reads.
type hfConfig struct {
	Architectures        []string `json:"architectures"`
	ModelType            string   `json:"model_type"`
	NameOrPath           string   `json:"_name_or_path"`
	HiddenSize           int      `json:"hidden_size"`
	NumHiddenLayers      int      `json:"num_hidden_layers"`
	NumAttentionHeads    int      `json:"num_attention_heads"`
	NumKeyValueHeads     int      `json:"num_key_value_heads"`
	HeadDim              int      `json:"head_dim"`
	IntermediateSize     int      `json:"intermediate_size"`
	VocabSize            int      `json:"vocab_size"`
	RMSNormEps           float64  `json:"rms_norm_eps"`
	RopeTheta            float64  `json:"rope_theta"`
	PartialRotaryFactor  *float64 `json:"partial_rotary_factor"`
	MaxPositionEmbedding int      `json:"max_position_embeddings"`
	OriginalMaxPosition  int      `json:"original_max_position_embeddings"`
	TieWordEmbeddings    bool     `json:"tie_word_embeddings"`
	HiddenAct            string   `json:"hidden_act"`
	BOSTokenID           any      `json:"bos_token_id"`
	EOSTokenID           any      `json:"eos_token_id"`
	RopeScaling          *struct {
		Type            string    `json:"type"`
		RopeType        string    `json:"rope_type"`
		ShortFactor     []float64 `json:"short_factor"`
		LongFactor      []float64 `json:"long_factor"`
		AttentionFactor *float64  `json:"attention_factor"`
	} `json:"rope_scaling"`
}

// ReadHFConfig reads a Hugging Face config.json (the file, or the folder
// holding it).
func ReadHFConfig(path string) (*Config, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "config.json")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read model config: %w", err)
	}
	c, err := parseHFConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func parseHFConfig(data []byte) (*Config, error) {
	var h hfConfig
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("parse config.json: %w", err)
	}
	c := &Config{Name: h.NameOrPath, BOS: firstID(h.BOSTokenID), EOS: firstID(h.EOSTokenID)}
	arch := ""
	if len(h.Architectures) > 0 {
		arch = h.Architectures[0]
	}
	switch {
	case arch == "Phi3ForCausalLM" || (arch == "" && h.ModelType == "phi3"):
		c.Architecture = ArchPhi3
	case arch == "LlamaForCausalLM" || (arch == "" && h.ModelType == "llama"):
		c.Architecture = ArchLlama
	default:
		return nil, fmt.Errorf("%w: architecture %q (model_type %q); phi4mac runs Phi3ForCausalLM (phi-4, phi-4-mini) and LlamaForCausalLM",
			ErrUnsupported, arch, h.ModelType)
	}
	if h.HiddenAct != "" && h.HiddenAct != "silu" {
		return nil, fmt.Errorf("%w: hidden_act %q (only silu)", ErrUnsupported, h.HiddenAct)
	}
	c.Hidden, c.Layers, c.Heads = h.HiddenSize, h.NumHiddenLayers, h.NumAttentionHeads
	c.KVHeads = h.NumKeyValueHeads
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	c.HeadDim = h.HeadDim
	if c.HeadDim == 0 && c.Heads > 0 {
		if c.Hidden%c.Heads != 0 {
			return nil, fmt.Errorf("invalid config: hidden size %d is not a multiple of %d heads and no head_dim is given", c.Hidden, c.Heads)
		}
		c.HeadDim = c.Hidden / c.Heads
	}
	c.FFN, c.Vocab = h.IntermediateSize, h.VocabSize
	c.RMSEps = h.RMSNormEps
	if c.RMSEps == 0 {
		c.RMSEps = 1e-5
	}
	c.RopeTheta = h.RopeTheta
	if c.RopeTheta == 0 {
		c.RopeTheta = 10000
	}
	c.RotaryDim = c.HeadDim
	if h.PartialRotaryFactor != nil {
		// HF: int(head_dim * partial_rotary_factor).
		c.RotaryDim = int(float64(c.HeadDim) * *h.PartialRotaryFactor)
	}
	c.RopeMode = RopeNeox // HF checkpoints are laid out for rotate_half
	c.MaxContext = h.MaxPositionEmbedding
	c.TiedEmbeddings = h.TieWordEmbeddings
	if rs := h.RopeScaling; rs != nil {
		typ := rs.Type
		if typ == "" {
			typ = rs.RopeType
		}
		switch typ {
		case "longrope", "su":
			c.RopeShort, c.RopeLong = rs.ShortFactor, rs.LongFactor
			c.OriginalContext = h.OriginalMaxPosition
			if c.OriginalContext > 0 && c.MaxContext > 0 {
				c.RopeAttnFactor = longRopeMscale(c.MaxContext, c.OriginalContext)
			}
			if rs.AttentionFactor != nil {
				c.RopeAttnFactor = *rs.AttentionFactor
			}
		case "", "default":
		default:
			return nil, fmt.Errorf("%w: rope_scaling type %q (phi4mac supports longrope)", ErrUnsupported, typ)
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// longRopeMscale is HF's and llama.cpp's LongRoPE attention factor:
// sqrt(1 + ln(max/orig)/ln(orig)), or 1 when max ≤ orig.
func longRopeMscale(maxCtx, orig int) float64 {
	s := float64(maxCtx) / float64(orig)
	if s <= 1 {
		return 1
	}
	return math.Sqrt(1 + math.Log(s)/math.Log(float64(orig)))
}

// firstID reads a token id that config.json may give as a number or a list.
func firstID(v any) int {
	switch x := v.(type) {
	case float64:
		return int(x)
	case []any:
		if len(x) > 0 {
			if f, ok := x[0].(float64); ok {
				return int(f)
			}
		}
	}
	return -1
}

// ggufMeta is the metadata interface of a GGUF file (satisfied by
// *weights.GGUF).
type ggufMeta interface {
	String(key string) (string, bool)
	Uint(key string) (uint64, bool)
	Float(key string) (float64, bool)
	Strings(key string) ([]string, bool)
}

// configFromGGUF builds a Config from GGUF metadata. factors returns the
// LongRoPE factor tensors' values (short, long), or nil when absent.
// embedRows is the number of rows of token_embd.weight (the vocabulary
// size), or 0 if unknown.
func configFromGGUF(g ggufMeta, embedRows int, factors func(name string) ([]float64, error)) (*Config, error) {
	arch, ok := g.String("general.architecture")
	if !ok {
		return nil, errors.New("GGUF has no general.architecture")
	}
	c := &Config{BOS: -1, EOS: -1}
	c.Name, _ = g.String("general.name")
	switch arch {
	case "phi3":
		c.Architecture, c.RopeMode = ArchPhi3, RopeNeox
	case "llama":
		// llama.cpp's converters permute Llama's q/k rows so that
		// adjacent dimensions form the rotated pairs (rope type NORM).
		c.Architecture, c.RopeMode = ArchLlama, RopeNorm
	default:
		return nil, fmt.Errorf("%w: GGUF architecture %q (phi4mac runs phi3 and llama)", ErrUnsupported, arch)
	}
	u := func(key string) int {
		v, _ := g.Uint(arch + "." + key)
		return int(v)
	}
	c.Hidden = u("embedding_length")
	c.Layers = u("block_count")
	c.Heads = u("attention.head_count")
	c.KVHeads = u("attention.head_count_kv")
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	c.FFN = u("feed_forward_length")
	c.MaxContext = u("context_length")
	if kl := u("attention.key_length"); kl > 0 {
		c.HeadDim = kl
	} else if c.Heads > 0 {
		if c.Hidden%c.Heads != 0 {
			return nil, fmt.Errorf("invalid config: embedding length %d is not a multiple of %d heads and no %s.attention.key_length is given", c.Hidden, c.Heads, arch)
		}
		c.HeadDim = c.Hidden / c.Heads
	}
	c.RotaryDim = u("rope.dimension_count")
	if c.RotaryDim == 0 {
		c.RotaryDim = c.HeadDim
	}
	c.RMSEps, _ = g.Float(arch + ".attention.layer_norm_rms_epsilon")
	if c.RMSEps == 0 {
		c.RMSEps = 1e-5
	}
	c.RopeTheta, _ = g.Float(arch + ".rope.freq_base")
	if c.RopeTheta == 0 {
		c.RopeTheta = 10000
	}
	if embedRows > 0 {
		c.Vocab = embedRows
	} else if v, ok := g.Uint(arch + ".vocab_size"); ok {
		c.Vocab = int(v)
	} else if toks, ok := g.Strings("tokenizer.ggml.tokens"); ok {
		c.Vocab = len(toks)
	}
	if v, ok := g.Uint("tokenizer.ggml.bos_token_id"); ok {
		c.BOS = int(v)
	}
	if v, ok := g.Uint("tokenizer.ggml.eos_token_id"); ok {
		c.EOS = int(v)
	}
	short, err := factors("rope_factors_short.weight")
	if err != nil {
		return nil, err
	}
	long, err := factors("rope_factors_long.weight")
	if err != nil {
		return nil, err
	}
	if short != nil || long != nil {
		c.RopeShort, c.RopeLong = short, long
		c.OriginalContext = u("rope.scaling.original_context_length")
		c.RopeAttnFactor, ok = g.Float(arch + ".rope.scaling.attn_factor")
		if !ok && c.OriginalContext > 0 {
			c.RopeAttnFactor = longRopeMscale(c.MaxContext, c.OriginalContext)
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// String summarises the configuration on one line.
func (c *Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: hidden %d, %d layers, %d/%d heads of %d, ffn %d, vocab %d, rope theta %g",
		c.Architecture, c.Hidden, c.Layers, c.Heads, c.KVHeads, c.HeadDim, c.FFN, c.Vocab, c.RopeTheta)
	if c.RotaryDim != c.HeadDim {
		fmt.Fprintf(&b, " on %d dims", c.RotaryDim)
	}
	if c.LongRoPE() {
		fmt.Fprintf(&b, ", LongRoPE (original context %d, attention factor %.4f)", c.OriginalContext, c.RopeAttnFactor)
	}
	fmt.Fprintf(&b, ", context %d", c.MaxContext)
	if c.TiedEmbeddings {
		b.WriteString(", tied embeddings")
	}
	return b.String()
}
