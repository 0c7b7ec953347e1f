package weights

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Phi3Params are the hyperparameters of a Phi3ForCausalLM model (phi-4,
// phi-4-mini) as GGUF stores them.
type Phi3Params struct {
	Name          string // general.name; must not contain "phi3" or "phi-3"
	SizeLabel     string // general.size_label, e.g. "15B"
	Ctx           int    // max_position_embeddings
	OrigCtx       int    // original_max_position_embeddings
	Hidden        int
	FFN           int
	Layers        int
	Heads         int
	KVHeads       int
	RotaryDim     int // rotated dims per head
	RMSEps        float64
	RopeTheta     float64
	SlidingWindow int
	AttnFactor    float64 // LongRoPE magnitude factor; 0 when not LongRoPE
	FileType      uint32  // llama.cpp's general.file_type
	Vocab         int
	Tied          bool
	ShortFactor   []float32 // LongRoPE factors (RotaryDim/2 each) or nil
	LongFactor    []float32
}

// CheckGGUFName reports an error for a general.name that makes llama.cpp
// apply its Phi-3 SentencePiece fix-ups (which fail on GPT-2 vocabularies).
func CheckGGUFName(name string) error {
	l := strings.ToLower(name)
	if strings.Contains(l, "phi3") || strings.Contains(l, "phi-3") {
		return fmt.Errorf("general.name %q contains \"phi3\"/\"phi-3\", which makes llama.cpp mis-handle the vocabulary", name)
	}
	return nil
}

// Metadata returns the model metadata in the order llama.cpp's
// convert_hf_to_gguf.py writes it (tokenizer metadata not included).
func (p Phi3Params) Metadata() []KV {
	u := func(n int) Value { return Uint32Value(uint32(n)) }
	kvs := []KV{{"general.architecture", StringValue("phi3")}}
	if p.AttnFactor != 0 {
		kvs = append(kvs, KV{"phi3.rope.scaling.attn_factor", Float32Value(float32(p.AttnFactor))})
	}
	return append(kvs,
		KV{"general.type", StringValue("model")},
		KV{"general.name", StringValue(p.Name)},
		KV{"general.size_label", StringValue(p.SizeLabel)},
		KV{"phi3.context_length", u(p.Ctx)},
		KV{"phi3.rope.scaling.original_context_length", u(p.OrigCtx)},
		KV{"phi3.embedding_length", u(p.Hidden)},
		KV{"phi3.feed_forward_length", u(p.FFN)},
		KV{"phi3.block_count", u(p.Layers)},
		KV{"phi3.attention.head_count", u(p.Heads)},
		KV{"phi3.attention.head_count_kv", u(p.KVHeads)},
		KV{"phi3.attention.layer_norm_rms_epsilon", Float32Value(float32(p.RMSEps))},
		KV{"phi3.rope.dimension_count", u(p.RotaryDim)},
		KV{"phi3.rope.freq_base", Float32Value(float32(p.RopeTheta))},
		KV{"general.file_type", Uint32Value(p.FileType)},
		KV{"phi3.attention.sliding_window", u(p.SlidingWindow)},
		KV{"general.quantization_version", Uint32Value(2)},
	)
}

// SizeLabel returns gguf-py's size label for a parameter count ("226K",
// "54M", "1.1B", "15B").
func SizeLabel(params int) string {
	n := float64(params)
	var scaled float64
	var suffix string
	switch {
	case n > 1e12:
		scaled, suffix = n*1e-12, "T"
	case n > 1e9:
		scaled, suffix = n*1e-9, "B"
	case n > 1e6:
		scaled, suffix = n*1e-6, "M"
	default:
		scaled, suffix = n*1e-3, "K"
	}
	digits := strings.TrimLeft(fmt.Sprint(int64(math.RoundToEven(scaled))), "0")
	fix := max(2-len(digits), 0)
	return fmt.Sprintf("%.*f%s", fix, scaled, suffix)
}

// hfPhi3Config is the part of a Phi-3 config.json the converter reads.
type hfPhi3Config struct {
	Architectures       []string `json:"architectures"`
	HiddenSize          int      `json:"hidden_size"`
	IntermediateSize    int      `json:"intermediate_size"`
	NumHiddenLayers     int      `json:"num_hidden_layers"`
	NumAttentionHeads   int      `json:"num_attention_heads"`
	NumKeyValueHeads    int      `json:"num_key_value_heads"`
	RMSNormEps          float64  `json:"rms_norm_eps"`
	MaxPosition         int      `json:"max_position_embeddings"`
	OrigMaxPosition     int      `json:"original_max_position_embeddings"`
	RopeTheta           float64  `json:"rope_theta"`
	PartialRotaryFactor float64  `json:"partial_rotary_factor"`
	SlidingWindow       *int     `json:"sliding_window"`
	VocabSize           int      `json:"vocab_size"`
	TieWordEmbeddings   bool     `json:"tie_word_embeddings"`
	RopeScaling         *struct {
		Type        string    `json:"type"`
		RopeType    string    `json:"rope_type"`
		ShortFactor []float64 `json:"short_factor"`
		LongFactor  []float64 `json:"long_factor"`
		ShortMscale *float64  `json:"short_mscale"`
		LongMscale  *float64  `json:"long_mscale"`
	} `json:"rope_scaling"`
}

var phi3NameFix = regexp.MustCompile(`(?i)phi-?3`)

// ReadPhi3Config reads config.json of a Hugging Face Phi3ForCausalLM
// folder. name becomes general.name (default: the folder's name, with any
// "phi3"/"phi-3" spelled "Phi 3" so llama.cpp loads the file).
func ReadPhi3Config(dir, name string) (Phi3Params, error) {
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return Phi3Params{}, fmt.Errorf("read model config: %w", err)
	}
	var c hfPhi3Config
	if err := json.Unmarshal(b, &c); err != nil {
		return Phi3Params{}, fmt.Errorf("%s: %w", path, err)
	}
	if len(c.Architectures) != 1 || c.Architectures[0] != "Phi3ForCausalLM" {
		return Phi3Params{}, fmt.Errorf("%s: architectures %v: only Phi3ForCausalLM (phi-4, phi-4-mini) is supported", path, c.Architectures)
	}
	if c.HiddenSize <= 0 || c.NumAttentionHeads <= 0 || c.NumHiddenLayers <= 0 || c.IntermediateSize <= 0 ||
		c.HiddenSize%c.NumAttentionHeads != 0 || c.VocabSize <= 0 || c.MaxPosition <= 0 {
		return Phi3Params{}, fmt.Errorf("%s: inconsistent or missing sizes", path)
	}
	if c.NumKeyValueHeads == 0 {
		c.NumKeyValueHeads = c.NumAttentionHeads
	}
	if c.OrigMaxPosition == 0 {
		c.OrigMaxPosition = c.MaxPosition
	}
	if c.RopeTheta == 0 {
		c.RopeTheta = 10000
	}
	if c.RMSNormEps == 0 {
		c.RMSNormEps = 1e-5
	}
	if name == "" {
		name = filepath.Base(filepath.Clean(dir))
	}
	name = phi3NameFix.ReplaceAllString(name, "Phi 3")
	p := Phi3Params{
		Name: name, Ctx: c.MaxPosition, OrigCtx: c.OrigMaxPosition, Hidden: c.HiddenSize,
		FFN: c.IntermediateSize, Layers: c.NumHiddenLayers, Heads: c.NumAttentionHeads,
		KVHeads: c.NumKeyValueHeads, RotaryDim: c.HiddenSize / c.NumAttentionHeads,
		RMSEps: c.RMSNormEps, RopeTheta: c.RopeTheta, Vocab: c.VocabSize, Tied: c.TieWordEmbeddings,
	}
	if c.PartialRotaryFactor != 0 {
		p.RotaryDim = int(c.PartialRotaryFactor*float64(c.HiddenSize)) / c.NumAttentionHeads
	}
	if c.SlidingWindow != nil {
		p.SlidingWindow = *c.SlidingWindow
	}
	if rs := c.RopeScaling; rs != nil {
		typ := rs.Type
		if typ == "" {
			typ = rs.RopeType
		}
		if typ != "longrope" && typ != "su" {
			return Phi3Params{}, fmt.Errorf("%s: rope_scaling type %q is not supported (want longrope)", path, typ)
		}
		if len(rs.ShortFactor) != p.RotaryDim/2 || len(rs.LongFactor) != p.RotaryDim/2 {
			return Phi3Params{}, fmt.Errorf("%s: LongRoPE factors have %d/%d entries, want %d", path, len(rs.ShortFactor), len(rs.LongFactor), p.RotaryDim/2)
		}
		for i := range rs.ShortFactor {
			p.ShortFactor = append(p.ShortFactor, float32(rs.ShortFactor[i]))
			p.LongFactor = append(p.LongFactor, float32(rs.LongFactor[i]))
		}
		scale := float64(p.Ctx) / float64(p.OrigCtx)
		p.AttnFactor = 1
		if scale > 1 {
			p.AttnFactor = math.Sqrt(1 + math.Log(scale)/math.Log(float64(p.OrigCtx)))
		}
		if rs.LongMscale != nil {
			p.AttnFactor = *rs.LongMscale
		}
	}
	return p, nil
}

// Phi3GGUFName maps a Hugging Face Phi-3 tensor name to llama.cpp's GGUF
// name, or reports false for names the converter does not know.
func Phi3GGUFName(hf string) (string, bool) {
	switch hf {
	case "model.embed_tokens.weight":
		return "token_embd.weight", true
	case "model.norm.weight":
		return "output_norm.weight", true
	case "lm_head.weight":
		return "output.weight", true
	}
	rest, ok := strings.CutPrefix(hf, "model.layers.")
	if !ok {
		return "", false
	}
	layer, suffix, ok := strings.Cut(rest, ".")
	if !ok || layer == "" || strings.Trim(layer, "0123456789") != "" {
		return "", false
	}
	m := map[string]string{
		"input_layernorm.weight":          "attn_norm.weight",
		"self_attn.qkv_proj.weight":       "attn_qkv.weight",
		"self_attn.o_proj.weight":         "attn_output.weight",
		"post_attention_layernorm.weight": "ffn_norm.weight",
		"mlp.gate_up_proj.weight":         "ffn_up.weight",
		"mlp.down_proj.weight":            "ffn_down.weight",
	}
	g, ok := m[suffix]
	if !ok {
		return "", false
	}
	return "blk." + layer + "." + g, true
}
