package engine

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/phi4mac/phi4mac/engine/weights"
)

// hfToGGUF maps a Hugging Face tensor name to the engine's canonical name
// (llama.cpp's GGUF name), or "" for tensors the engine does not use.
func hfToGGUF(name string) string {
	for _, n := range hfModelNames {
		if n.hf == name {
			return n.gguf
		}
	}
	rest, ok := strings.CutPrefix(name, "model.layers.")
	if !ok {
		return ""
	}
	num, sub, ok := strings.Cut(rest, ".")
	if !ok {
		return ""
	}
	if _, err := strconv.Atoi(num); err != nil {
		return ""
	}
	for _, n := range hfLayerNames {
		if n.hf == sub {
			return "blk." + num + "." + n.gguf
		}
	}
	return ""
}

// hfModelNames pairs the Hugging Face and GGUF names of the tensors outside
// the layers.
var hfModelNames = [...]struct{ hf, gguf string }{
	{"model.embed_tokens.weight", "token_embd.weight"},
	{"model.norm.weight", "output_norm.weight"},
	{"lm_head.weight", "output.weight"},
}

// hfLayerNames pairs the Hugging Face and GGUF names of a layer's tensors.
// Phi-3's fused gate_up_proj (gate first) takes the place of ffn_up.
var hfLayerNames = [...]struct{ hf, gguf string }{
	{"input_layernorm.weight", "attn_norm.weight"},
	{"post_attention_layernorm.weight", "ffn_norm.weight"},
	{"self_attn.qkv_proj.weight", "attn_qkv.weight"},
	{"self_attn.q_proj.weight", "attn_q.weight"},
	{"self_attn.k_proj.weight", "attn_k.weight"},
	{"self_attn.v_proj.weight", "attn_v.weight"},
	{"self_attn.o_proj.weight", "attn_output.weight"},
	{"mlp.gate_up_proj.weight", "ffn_up.weight"},
	{"mlp.gate_proj.weight", "ffn_gate.weight"},
	{"mlp.up_proj.weight", "ffn_up.weight"},
	{"mlp.down_proj.weight", "ffn_down.weight"},
}

// ggufToHF returns the Hugging Face name of a canonical tensor name, for
// error messages about a folder (ffn_up is Phi-3's gate_up_proj, Llama's
// up_proj), or name itself when it has none.
func ggufToHF(name string, arch Architecture) string {
	for _, n := range hfModelNames {
		if n.gguf == name {
			return n.hf
		}
	}
	rest, ok := strings.CutPrefix(name, "blk.")
	if !ok {
		return name
	}
	num, sub, ok := strings.Cut(rest, ".")
	if !ok {
		return name
	}
	for _, n := range hfLayerNames {
		if n.gguf == sub && (sub != "ffn_up.weight" || (n.hf == "mlp.gate_up_proj.weight") == (arch == ArchPhi3)) {
			return "model.layers." + num + "." + n.hf
		}
	}
	return name
}

// renamed presents a Source under canonical tensor names.
type renamed struct {
	weights.Source
	byName map[string]*weights.Tensor
	arch   Architecture
}

// sourceName returns the name a canonical tensor has in the folder.
func (r *renamed) sourceName(name string) string { return ggufToHF(name, r.arch) }

func (r *renamed) Tensor(name string) (*weights.Tensor, bool) {
	t, ok := r.byName[name]
	return t, ok
}

// loadHF loads a Hugging Face folder: config.json and safetensors weights.
func loadHF(ctx context.Context, dir string, opts Options) (m *Model, err error) {
	cfg, err := ReadHFConfig(dir)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", dir, err)
	}
	st, err := weights.OpenSafetensors(dir)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	r := &renamed{Source: st, byName: make(map[string]*weights.Tensor), arch: cfg.Architecture}
	for _, t := range st.Tensors() {
		if g := hfToGGUF(t.Name); g != "" {
			r.byName[g] = t
		}
	}
	if _, ok := r.byName["output.weight"]; !ok {
		cfg.TiedEmbeddings = true
	}
	ts, err := ggufTensors(r, cfg)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", dir, err)
	}
	m, err = newModel(ctx, cfg, st, ts, dir, "safetensors", opts)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", dir, err)
	}
	m.tok = opts.Tokenizer
	if m.tok == nil && !opts.NoTokenizer {
		if m.tok, err = loadTokenizer(dir); err != nil {
			m.log.Warn("no tokenizer", "model", dir, "err", err)
			err = nil
		}
	}
	return m, nil
}
