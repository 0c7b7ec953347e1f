package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/phi4mac/phi4mac/engine/quant"
	"github.com/phi4mac/phi4mac/engine/weights"
	"github.com/phi4mac/phi4mac/tokenizer"
)

// Options configures Load.
type Options struct {
	// Backend runs the forward pass (for example cpu.New). Required.
	Backend Backend
	// Logger receives load-time notes; nil means slog.Default().
	Logger *slog.Logger
	// SkipMemoryCheck loads even when the weights do not fit in the
	// memory the OS reports as available.
	SkipMemoryCheck bool
	// NoTokenizer skips loading the tokenizer (Model.Tokenizer is nil).
	NoTokenizer bool
	// Tokenizer, when set, is used instead of loading one from the model
	// files (for models opened from memory).
	Tokenizer *tokenizer.Tokenizer
}

// Model is a loaded model: its configuration, its weights held by a backend
// and its tokenizer. It is safe for concurrent use; forward passes of its
// sessions run one at a time.
type Model struct {
	cfg     Config
	info    Info
	backend Backend
	src     weights.Source
	w       modelWeights
	tok     *tokenizer.Tokenizer
	mu      sync.Mutex // serialises forward passes on the backend
	log     *slog.Logger
	closed  bool
}

// Info describes a loaded model file.
type Info struct {
	Path        string             // file or folder the model came from
	Format      string             // "gguf" or "safetensors"
	WeightBytes int64              // bytes of all tensors as stored
	TypeCounts  map[quant.Type]int // number of tensors per storage type
	TypeBytes   map[quant.Type]int64
	Params      int64 // number of weight values
	// DecodeBytes is the weight bytes one decode step reads: every matrix
	// except the token embedding (only one row of it is read).
	DecodeBytes int64
}

// QuantMix summarises TypeCounts, e.g. "Q4_K×13 Q6_K×5 F32×9".
func (i Info) QuantMix() string {
	types := make([]quant.Type, 0, len(i.TypeCounts))
	for t := range i.TypeCounts {
		types = append(types, t)
	}
	sort.Slice(types, func(a, b int) bool { return i.TypeBytes[types[a]] > i.TypeBytes[types[b]] })
	var parts []string
	for _, t := range types {
		parts = append(parts, fmt.Sprintf("%s×%d", t, i.TypeCounts[t]))
	}
	return strings.Join(parts, " ")
}

// layerWeights are one transformer block's tensors.
type layerWeights struct {
	attnNorm, qkv, out, ffnNorm, gateUp, down Weight
}

type modelWeights struct {
	embed, outNorm, output Weight
	layers                 []layerWeights
}

// Config returns the model's hyper-parameters.
func (m *Model) Config() Config { return m.cfg }

// Info returns facts about the loaded file.
func (m *Model) Info() Info { return m.info }

// Backend returns the backend the model runs on.
func (m *Model) Backend() Backend { return m.backend }

// Close releases the backend's hold on the weights and unmaps the file. The
// model and its sessions must not be used afterwards.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	err := m.backend.Close()
	if m.src != nil {
		err = errors.Join(err, m.src.Close())
	}
	return err
}

// Load opens the model at path: a GGUF file, or a Hugging Face folder
// (config.json with model.safetensors or a sharded
// model.safetensors.index.json).
func Load(ctx context.Context, path string, opts Options) (*Model, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	if fi.IsDir() {
		return loadHF(ctx, path, opts)
	}
	if strings.HasSuffix(path, ".safetensors") || strings.HasSuffix(path, ".json") {
		return loadHF(ctx, filepath.Dir(path), opts)
	}
	g, err := weights.OpenGGUF(path)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	m, err := LoadGGUF(ctx, g, opts)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	return m, nil
}

// LoadGGUF builds a model from an opened GGUF file (for example one parsed
// from memory with weights.OpenGGUFBytes). The model owns g from then on and
// closes it, also when LoadGGUF fails.
func LoadGGUF(ctx context.Context, g *weights.GGUF, opts Options) (m *Model, err error) {
	defer func() {
		if err != nil {
			g.Close()
		}
	}()
	embedRows := 0
	if e, ok := g.Tensor("token_embd.weight"); ok && len(e.Shape) == 2 {
		embedRows = e.Shape[0]
	}
	cfg, err := configFromGGUF(g, embedRows, func(name string) ([]float64, error) {
		t, ok := g.Tensor(name)
		if !ok {
			return nil, nil
		}
		return vectorF64(t)
	})
	if err != nil {
		return nil, err
	}
	if _, ok := g.Tensor("output.weight"); !ok {
		cfg.TiedEmbeddings = true
	}
	ts, err := ggufTensors(g, cfg)
	if err != nil {
		return nil, err
	}
	m, err = newModel(ctx, cfg, g, ts, g.Path(), "gguf", opts)
	if err != nil {
		return nil, err
	}
	m.tok = opts.Tokenizer
	if m.tok == nil && !opts.NoTokenizer && g.Path() != "<memory>" {
		if m.tok, err = loadTokenizer(g.Path()); err != nil {
			m.log.Warn("model has no usable tokenizer", "model", g.Path(), "err", err)
			err = nil
		}
	}
	return m, nil
}

// ggufTensors returns the model's tensors under the engine's canonical
// (GGUF) names; Llama's separate q/k/v and gate/up are fused.
func ggufTensors(src weights.Source, cfg *Config) (map[string]*weights.Tensor, error) {
	ts := make(map[string]*weights.Tensor)
	get := func(name string) (*weights.Tensor, error) {
		t, ok := src.Tensor(name)
		if !ok {
			return nil, missingTensor(src, name, cfg)
		}
		return t, nil
	}
	for _, name := range []string{"token_embd.weight", "output_norm.weight"} {
		t, err := get(name)
		if err != nil {
			return nil, err
		}
		ts[name] = t
	}
	if t, ok := src.Tensor("output.weight"); ok {
		ts["output.weight"] = t
	}
	for l := 0; l < cfg.Layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		names := []string{"attn_norm.weight", "attn_output.weight", "ffn_norm.weight", "ffn_down.weight"}
		for _, n := range names {
			t, err := get(p + n)
			if err != nil {
				return nil, err
			}
			ts[p+n] = t
		}
		if t, ok := src.Tensor(p + "attn_qkv.weight"); ok {
			ts[p+"attn_qkv.weight"] = t
		} else {
			if _, ok := src.Tensor(p + "attn_q.weight"); !ok && cfg.Architecture == ArchPhi3 {
				return nil, missingTensor(src, p+"attn_qkv.weight", cfg)
			}
			t, err := fuseRows(src, p+"attn_qkv.weight", p+"attn_q.weight", p+"attn_k.weight", p+"attn_v.weight")
			if err != nil {
				return nil, err
			}
			ts[p+"attn_qkv.weight"] = t
		}
		if _, ok := src.Tensor(p + "ffn_gate.weight"); ok {
			t, err := fuseRows(src, p+"ffn_gate_up.weight", p+"ffn_gate.weight", p+"ffn_up.weight")
			if err != nil {
				return nil, err
			}
			ts[p+"ffn_gate_up.weight"] = t
		} else {
			t, err := get(p + "ffn_up.weight") // phi3: gate and up fused, gate first
			if err != nil {
				return nil, err
			}
			ts[p+"ffn_gate_up.weight"] = t
		}
	}
	return ts, nil
}

// missingTensor reports a tensor the model needs but src lacks, under the
// name it would have in src.
func missingTensor(src weights.Source, name string, cfg *Config) error {
	return fmt.Errorf("tensor %s missing: the file is not a complete %s model (%d layers); re-download or re-convert it", sourceName(src, name), cfg.Architecture, cfg.Layers)
}

// sourceName returns the name the canonical tensor name has in src (its
// Hugging Face name in a folder).
func sourceName(src weights.Source, name string) string {
	if r, ok := src.(interface{ sourceName(string) string }); ok {
		return r.sourceName(name)
	}
	return name
}

// fuseRows concatenates the rows of several [out_i, in] tensors of one type
// into a new [Σout_i, in] tensor (a copy).
func fuseRows(src weights.Source, name string, parts ...string) (*weights.Tensor, error) {
	var data []byte
	var typ quant.Type
	rows, in := 0, -1
	for i, n := range parts {
		t, ok := src.Tensor(n)
		if !ok {
			return nil, fmt.Errorf("tensor %s missing: the file is not a complete model; re-download or re-convert it", sourceName(src, n))
		}
		if len(t.Shape) != 2 {
			return nil, fmt.Errorf("tensor %s: shape %v, want a matrix", n, t.Shape)
		}
		if i == 0 {
			typ, in = t.Type, t.Shape[1]
		} else if t.Type != typ || t.Shape[1] != in {
			return nil, fmt.Errorf("tensor %s: %s %v cannot be fused with %s (%s, %d columns)", n, t.Type, t.Shape, parts[0], typ, in)
		}
		data = append(data, t.Data...)
		rows += t.Shape[0]
	}
	return &weights.Tensor{Name: name, Type: typ, Shape: []int{rows, in}, Data: data}, nil
}

// newModel checks the tensors against cfg and hands them to the backend.
func newModel(ctx context.Context, cfg *Config, src weights.Source, ts map[string]*weights.Tensor, path, format string, opts Options) (*Model, error) {
	if opts.Backend == nil {
		return nil, errors.New("engine: Options.Backend is nil (use cpu.New)")
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := checkShapes(cfg, ts); err != nil {
		return nil, err
	}
	// Norm vectors are small: the backend gets them as F32.
	for name, t := range ts {
		if len(t.Shape) == 1 && t.Type != quant.F32 {
			f, err := vectorF64(t)
			if err != nil {
				return nil, err
			}
			ts[name] = f32Tensor(name, f)
		}
	}
	info := Info{Path: path, Format: format, TypeCounts: map[quant.Type]int{}, TypeBytes: map[quant.Type]int64{}}
	for _, t := range src.Tensors() {
		info.WeightBytes += int64(len(t.Data))
		info.TypeCounts[t.Type]++
		info.TypeBytes[t.Type] += int64(len(t.Data))
		info.Params += int64(t.Elements())
	}
	for name, t := range ts {
		if name != "token_embd.weight" || cfg.TiedEmbeddings {
			info.DecodeBytes += int64(len(t.Data))
		}
	}
	if !opts.SkipMemoryCheck {
		if err := checkMemory(info.WeightBytes, path); err != nil {
			return nil, err
		}
	}
	order := []string{"token_embd.weight", "output_norm.weight"}
	if !cfg.TiedEmbeddings {
		order = append(order, "output.weight")
	}
	for l := 0; l < cfg.Layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		for _, n := range []string{"attn_norm", "attn_qkv", "attn_output", "ffn_norm", "ffn_gate_up", "ffn_down"} {
			order = append(order, p+n+".weight")
		}
	}
	list := make([]*weights.Tensor, len(order))
	for i, n := range order {
		list[i] = ts[n]
	}
	hs, err := opts.Backend.LoadWeights(ctx, list)
	if err != nil {
		return nil, fmt.Errorf("%s backend: %w", opts.Backend.Name(), err)
	}
	m := &Model{cfg: *cfg, info: info, backend: opts.Backend, src: src, log: log}
	m.w.embed, m.w.outNorm = hs[0], hs[1]
	i := 2
	m.w.output = m.w.embed
	if !cfg.TiedEmbeddings {
		m.w.output = hs[2]
		i = 3
	}
	for l := 0; l < cfg.Layers; l++ {
		m.w.layers = append(m.w.layers, layerWeights{hs[i], hs[i+1], hs[i+2], hs[i+3], hs[i+4], hs[i+5]})
		i += 6
	}
	return m, nil
}

// checkShapes verifies every tensor's shape against the configuration.
func checkShapes(cfg *Config, ts map[string]*weights.Tensor) error {
	h, qd, kvd := cfg.Hidden, cfg.Heads*cfg.HeadDim, cfg.KVHeads*cfg.HeadDim
	want := map[string][]int{
		"token_embd.weight":  {cfg.Vocab, h},
		"output_norm.weight": {h},
	}
	if !cfg.TiedEmbeddings {
		want["output.weight"] = []int{cfg.Vocab, h}
	}
	for l := 0; l < cfg.Layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		want[p+"attn_norm.weight"] = []int{h}
		want[p+"attn_qkv.weight"] = []int{qd + 2*kvd, h}
		want[p+"attn_output.weight"] = []int{h, qd}
		want[p+"ffn_norm.weight"] = []int{h}
		want[p+"ffn_gate_up.weight"] = []int{2 * cfg.FFN, h}
		want[p+"ffn_down.weight"] = []int{h, cfg.FFN}
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t, ok := ts[n]
		if !ok {
			return fmt.Errorf("tensor %s missing: the file is not a complete %s model", n, cfg.Architecture)
		}
		w := want[n]
		if !slices.Equal(t.Shape, w) {
			return fmt.Errorf("tensor %s has shape %v, but the model config (%s) needs %v: the weights do not belong to this config, or the file is corrupt; re-download or re-convert the model",
				t.Name, t.Shape, cfg.String(), w)
		}
		if !t.Type.Known() {
			return fmt.Errorf("tensor %s: %w: tensor type %s; re-quantize to F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K or Q6_K", t.Name, ErrUnsupported, t.Type)
		}
		if len(t.Shape) == 2 {
			if _, err := t.Type.RowBytes(t.Shape[1]); err != nil {
				return fmt.Errorf("tensor %s: %w", t.Name, err)
			}
		}
	}
	return nil
}

// vectorF64 returns the values of a small float tensor (F32, F16 or BF16).
func vectorF64(t *weights.Tensor) ([]float64, error) {
	n := t.Elements()
	out := make([]float64, n)
	switch t.Type {
	case quant.F32:
		if len(t.Data) < 4*n {
			return nil, fmt.Errorf("tensor %s: truncated", t.Name)
		}
		for i := range out {
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:])))
		}
	case quant.F16, quant.BF16:
		if len(t.Data) < 2*n {
			return nil, fmt.Errorf("tensor %s: truncated", t.Name)
		}
		for i := range out {
			h := binary.LittleEndian.Uint16(t.Data[2*i:])
			if t.Type == quant.BF16 {
				out[i] = float64(quant.BF16ToF32(h))
			} else {
				out[i] = float64(quant.F16ToF32(h))
			}
		}
	default:
		return nil, fmt.Errorf("tensor %s: %w: vector of type %s (want F32, F16 or BF16)", t.Name, ErrUnsupported, t.Type)
	}
	return out, nil
}

func f32Tensor(name string, v []float64) *weights.Tensor {
	data := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(float32(x)))
	}
	return &weights.Tensor{Name: name, Type: quant.F32, Shape: []int{len(v)}, Data: data}
}
