package synth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"

	"github.com/phi4mac/phi4mac/engine/quant"
	"github.com/phi4mac/phi4mac/engine/weights"
)

// chunkElems bounds the scratch buffers used while generating a tensor.
const chunkElems = 1 << 20

// Progress is called after each tensor is generated: done of total
// tensors, and the name of the tensor just finished.
type Progress func(done, total int, name string)

// BF16 returns the tensor's BF16 data (little-endian bytes).
func (c Config) BF16(t TensorSpec) []byte {
	n := t.Elements()
	out := make([]byte, 2*n)
	buf := make([]uint16, min(n, chunkElems))
	for start := 0; start < n; start += len(buf) {
		m := min(len(buf), n-start)
		GenerateBF16(c.Seed, t, start, buf[:m])
		for j, h := range buf[:m] {
			out[2*(start+j)], out[2*(start+j)+1] = byte(h), byte(h>>8)
		}
	}
	return out
}

// Encode returns the tensor's data encoded as typ (F32, F16, BF16 exactly;
// Q8_0, Q4_0, Q5_0, Q4_K, Q6_K with GGML's reference quantizers, row by
// row).
func (c Config) Encode(t TensorSpec, typ quant.Type) ([]byte, error) {
	var b bytes.Buffer
	if err := c.encodeTo(context.Background(), &b, t, typ); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// encodeTo writes the tensor's data encoded as typ to w, a bounded number
// of rows at a time (see weights.EncodeRows); ctx is checked between them.
func (c Config) encodeTo(ctx context.Context, w io.Writer, t TensorSpec, typ quant.Type) error {
	row := t.Shape[len(t.Shape)-1]
	if !quant.CanQuantize(typ) {
		return fmt.Errorf("tensor %s: no encoder for %s", t.GGUFName, typ)
	}
	bits := make([][]uint16, runtime.GOMAXPROCS(0))
	err := weights.EncodeRows(ctx, w, typ, t.Elements()/row, row, func(worker, start int, dst []float32) error {
		if len(bits[worker]) < len(dst) {
			bits[worker] = make([]uint16, len(dst))
		}
		b := bits[worker][:len(dst)]
		GenerateBF16(c.Seed, t, start*row, b)
		for j, h := range b {
			dst[j] = math.Float32frombits(uint32(h) << 16)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("tensor %s: %w", t.GGUFName, err)
	}
	return nil
}

// WriteSafetensors writes the model as a BF16 model.safetensors with Hugging
// Face names, tensors sorted by name, as the reference generator does.
func (c Config) WriteSafetensors(w io.Writer, progress Progress) error {
	return c.WriteSafetensorsContext(context.Background(), w, progress)
}

// WriteSafetensorsContext is WriteSafetensors, stopping with ctx's error
// (between tensors) when ctx is cancelled.
func (c Config) WriteSafetensorsContext(ctx context.Context, w io.Writer, progress Progress) error {
	if err := c.Validate(); err != nil {
		return err
	}
	specs := c.Tensors()
	sort.Slice(specs, func(i, j int) bool { return specs[i].HFName < specs[j].HFName })
	tensors := make([]*weights.Tensor, len(specs))
	bySpec := map[*weights.Tensor]TensorSpec{}
	for i, s := range specs {
		tensors[i] = &weights.Tensor{Name: s.HFName, Type: quant.BF16, Shape: s.Shape}
		bySpec[tensors[i]] = s
	}
	done := 0
	return weights.WriteSafetensorsFunc(w, tensors, map[string]string{"format": "pt"}, func(t *weights.Tensor) ([]byte, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b := c.BF16(bySpec[t])
		done++
		if progress != nil {
			progress(done, len(tensors), t.Name)
		}
		return b, nil
	})
}

// GGUFMetadata returns the model metadata (everything but the tokenizer)
// in the order llama.cpp's convert_hf_to_gguf.py writes it for a
// Phi3ForCausalLM checkpoint with the given general.file_type.
func (c Config) GGUFMetadata(ft uint32) []weights.KV {
	p := weights.Phi3Params{
		Name: c.GGUFName(), SizeLabel: weights.SizeLabel(c.Params()), Ctx: c.Ctx, OrigCtx: c.OriginalCtx(),
		Hidden: c.Hidden, FFN: c.Intermediate, Layers: c.Layers, Heads: c.Heads, KVHeads: c.KVHeads,
		RotaryDim: c.RotaryDim(), RMSEps: c.RMSEps, RopeTheta: c.RopeTheta, FileType: ft,
	}
	if c.LongRoPE {
		p.AttnFactor = c.AttnFactor()
		p.SlidingWindow = 262144 // phi-4-mini's config value (llama.cpp ignores it)
	}
	return p.Metadata()
}

// WriteGGUF writes the model as GGUF in the weight format scheme, followed
// by the given tokenizer metadata (see weights.HFTokenizerKVs /
// weights.TokenizerKVs; nil for a model without a vocabulary).
//
// F32, F16 and BF16 files are byte-identical to what llama.cpp's
// convert_hf_to_gguf.py writes from the generated HF folder (1-D norms F32,
// tensors in Hugging Face name order with llama.cpp names, LongRoPE factors
// first). Quantized files are byte-identical to what llama-quantize (no
// importance matrix) writes from that F16 file: its tensor order, metadata
// order and per-tensor types (e.g. output.weight Q6_K).
func (c Config) WriteGGUF(w io.Writer, scheme weights.Scheme, tokenizer []weights.KV, progress Progress) error {
	return c.WriteGGUFContext(context.Background(), w, scheme, tokenizer, progress)
}

// WriteGGUFContext is WriteGGUF, stopping with ctx's error when ctx is
// cancelled (checked between row chunks).
func (c Config) WriteGGUFContext(ctx context.Context, w io.Writer, scheme weights.Scheme, tokenizer []weights.KV, progress Progress) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if err := checkTokenizer(tokenizer, c.Vocab); err != nil {
		return err
	}
	type item struct {
		name  string
		shape []int
		spec  *TensorSpec // nil for LongRoPE factors
		data  []float32   // LongRoPE factors
		typ   quant.Type
	}
	var items []item
	if c.LongRoPE {
		short, long := c.RopeFactors()
		items = append(items,
			item{name: "rope_factors_long.weight", shape: []int{len(long)}, data: long},
			item{name: "rope_factors_short.weight", shape: []int{len(short)}, data: short})
	}
	specs := c.Tensors()
	sort.Slice(specs, func(i, j int) bool { return specs[i].HFName < specs[j].HFName })
	for i := range specs {
		items = append(items, item{name: specs[i].GGUFName, shape: specs[i].Shape, spec: &specs[i]})
	}
	var meta []weights.KV
	if scheme.Base.Quantized() {
		// llama-quantize applied to the converter's F16 file.
		meta = scheme.LlamaQuantizeMetadata(append(c.GGUFMetadata(1), tokenizer...))
		infos := make([]weights.TensorInfo, len(items))
		for i, it := range items {
			infos[i] = weights.TensorInfo{Name: it.name, Shape: it.shape}
		}
		weights.SortLlamaQuantize(infos)
		byName := map[string]item{}
		for _, it := range items {
			byName[it.name] = it
		}
		for i, info := range infos {
			items[i] = byName[info.Name]
		}
	} else {
		meta = append(c.GGUFMetadata(scheme.FileType), tokenizer...)
	}
	infos := make([]weights.TensorInfo, len(items))
	for i, it := range items {
		infos[i] = weights.TensorInfo{Name: it.name, Shape: it.shape}
	}
	sorted := append([]weights.TensorInfo(nil), infos...)
	weights.SortLlamaQuantize(sorted)
	sortedTypes := scheme.TensorTypes(sorted)
	typeOf := map[string]quant.Type{}
	for i, info := range sorted {
		typeOf[info.Name] = sortedTypes[i]
	}
	gw := weights.NewGGUFWriter(w)
	for _, kv := range meta {
		if err := gw.SetMeta(kv.Key, kv.Value); err != nil {
			return err
		}
	}
	for i := range items {
		items[i].typ = typeOf[items[i].name]
		if err := gw.AddTensor(items[i].name, items[i].typ, items[i].shape); err != nil {
			return err
		}
	}
	for i, it := range items {
		var err error
		if it.spec != nil {
			err = gw.WriteTensorStream(it.name, func(w io.Writer) error { return c.encodeTo(ctx, w, *it.spec, it.typ) })
		} else {
			data := make([]byte, 4*len(it.data))
			if err = quant.Quantize(quant.F32, it.data, data); err == nil {
				err = gw.WriteTensor(it.name, data)
			}
		}
		if err != nil {
			return err
		}
		if progress != nil {
			progress(i+1, len(items), it.name)
		}
	}
	return gw.Close()
}

// checkTokenizer checks that tokenizer metadata fits a vocabulary of
// vocab rows.
func checkTokenizer(kvs []weights.KV, vocab int) error {
	for _, kv := range kvs {
		if kv.Key == "tokenizer.ggml.tokens" && kv.Value.Len() != vocab {
			return fmt.Errorf("synth: tokenizer has %d tokens but the model's vocabulary is %d (use --vocab %d)", kv.Value.Len(), vocab, kv.Value.Len())
		}
	}
	return nil
}

// hfConfig is config.json of a generated model (Phi3ForCausalLM).
type hfConfig struct {
	Architectures         []string       `json:"architectures"`
	AttentionBias         bool           `json:"attention_bias"`
	AttentionDropout      float64        `json:"attention_dropout"`
	BOSTokenID            *int           `json:"bos_token_id"`
	EmbdPdrop             float64        `json:"embd_pdrop"`
	EOSTokenID            *int           `json:"eos_token_id"`
	HiddenAct             string         `json:"hidden_act"`
	HiddenSize            int            `json:"hidden_size"`
	InitializerRange      float64        `json:"initializer_range"`
	IntermediateSize      int            `json:"intermediate_size"`
	MaxPositionEmbeddings int            `json:"max_position_embeddings"`
	ModelType             string         `json:"model_type"`
	NumAttentionHeads     int            `json:"num_attention_heads"`
	NumHiddenLayers       int            `json:"num_hidden_layers"`
	NumKeyValueHeads      int            `json:"num_key_value_heads"`
	OrigMaxPosition       int            `json:"original_max_position_embeddings"`
	PadTokenID            *int           `json:"pad_token_id"`
	PartialRotaryFactor   *float64       `json:"partial_rotary_factor,omitempty"`
	ResidPdrop            float64        `json:"resid_pdrop"`
	RMSNormEps            float64        `json:"rms_norm_eps"`
	RopeScaling           map[string]any `json:"rope_scaling"`
	RopeTheta             float64        `json:"rope_theta"`
	SlidingWindow         *int           `json:"sliding_window"`
	TieWordEmbeddings     bool           `json:"tie_word_embeddings"`
	TorchDType            string         `json:"torch_dtype"`
	UseCache              bool           `json:"use_cache"`
	VocabSize             int            `json:"vocab_size"`
}

// tokenizerFiles are copied from a tokenizer source folder into a generated
// HF folder.
var tokenizerFiles = []string{"tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json",
	"added_tokens.json", "special_tokens_map.json", "generation_config.json"}

// WriteHF writes a Hugging Face model folder: config.json, model.safetensors
// (BF16) and, when tokenizerDir is not empty, the tokenizer files copied
// from it (their special token ids go into config.json).
func (c Config) WriteHF(dir, tokenizerDir string, progress Progress) error {
	return c.WriteHFContext(context.Background(), dir, tokenizerDir, progress)
}

// WriteHFContext is WriteHF, stopping with ctx's error when ctx is
// cancelled. A new folder is built under a temporary name beside dir and
// renamed into place when complete, so an error or a cancellation leaves
// nothing behind. An existing folder is written in place, model.safetensors
// last and atomically (see weights.WriteFile): after an error it holds no
// weights file.
func (c Config) WriteHFContext(ctx context.Context, dir, tokenizerDir string, progress Progress) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		return c.writeHF(ctx, dir, tokenizerDir, progress)
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp*")
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	if err := c.writeHF(ctx, tmp, tokenizerDir, progress); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	return nil
}

// writeHF writes the files of WriteHFContext into the folder dir.
func (c Config) writeHF(ctx context.Context, dir, tokenizerDir string, progress Progress) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	cfg := hfConfig{
		Architectures: []string{"Phi3ForCausalLM"}, HiddenAct: "silu", HiddenSize: c.Hidden,
		InitializerRange: 0.02, IntermediateSize: c.Intermediate, MaxPositionEmbeddings: c.Ctx,
		ModelType: "phi3", NumAttentionHeads: c.Heads, NumHiddenLayers: c.Layers,
		NumKeyValueHeads: c.KVHeads, OrigMaxPosition: c.OriginalCtx(), RMSNormEps: c.RMSEps,
		RopeTheta: c.RopeTheta, TieWordEmbeddings: c.Tied, TorchDType: "bfloat16", UseCache: true,
		VocabSize: c.Vocab,
	}
	if c.RotaryDim() != c.HeadDim() {
		p := c.PartialRotary
		cfg.PartialRotaryFactor = &p
	}
	if c.LongRoPE {
		short, long := c.RopeFactors()
		cfg.RopeScaling = map[string]any{"type": "longrope", "short_factor": short, "long_factor": long}
		sw := 262144
		cfg.SlidingWindow = &sw
	}
	if tokenizerDir != "" {
		kvs, err := weights.HFTokenizerKVs(tokenizerDir, 0, "dbrx")
		if err != nil {
			return fmt.Errorf("synth: %w", err)
		}
		if err := checkTokenizer(kvs, c.Vocab); err != nil {
			return err
		}
		for _, kv := range kvs {
			id, ok := kv.Value.V.(uint32)
			if !ok {
				continue
			}
			v := int(id)
			switch kv.Key {
			case "tokenizer.ggml.bos_token_id":
				cfg.BOSTokenID = &v
			case "tokenizer.ggml.eos_token_id":
				cfg.EOSTokenID = &v
			case "tokenizer.ggml.padding_token_id":
				cfg.PadTokenID = &v
			}
		}
		for _, name := range tokenizerFiles {
			if err := copyFile(filepath.Join(tokenizerDir, name), filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("synth: copy tokenizer: %w", err)
			}
		}
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	return weights.WriteFile(filepath.Join(dir, "model.safetensors"), func(w io.Writer) error {
		return c.WriteSafetensorsContext(ctx, w, progress)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return weights.WriteFile(dst, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}
