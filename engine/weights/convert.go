package weights

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/phi4mac/phi4mac/engine/quant"
)

// ConvertOptions configure ConvertToGGUF.
type ConvertOptions struct {
	// Type is the format of the 2-D weight matrices: F32, F16, BF16, Q8_0,
	// Q4_0 or Q5_0. 1-D tensors (norms, LongRoPE factors) are written as
	// F32; matrices whose rows are not a multiple of Type's block size are
	// written as F16.
	Type quant.Type
	// Name overrides general.name for Hugging Face input.
	Name string
	// TokenizerPre is tokenizer.ggml.pre for Hugging Face input; empty
	// chooses "gpt-4o" for vocabularies of 200000 tokens or more (phi-4-mini)
	// and "dbrx" otherwise (phi-4).
	TokenizerPre string
	// Progress, if set, is called after each tensor.
	Progress func(done, total int, name string, from, to quant.Type)
	// Logger receives warnings (nil: slog.Default()).
	Logger *slog.Logger
}

// ConvertToGGUF reads a model — a GGUF file, or a Hugging Face folder (or
// .safetensors file) of a Phi3ForCausalLM model in F32/F16/BF16 — and
// writes it to w as GGUF with its matrices in opts.Type. GGUF metadata is
// kept (general.file_type is updated); for Hugging Face input the phi3.*
// model metadata and the tokenizer metadata are derived from config.json
// and the tokenizer files as llama.cpp's converter does. Tensors are
// processed one at a time in row chunks, so memory stays small.
func ConvertToGGUF(ctx context.Context, in string, w io.Writer, opts ConvertOptions) error {
	if !quant.CanQuantize(opts.Type) {
		return fmt.Errorf("convert: cannot write %s (choose F32, F16, BF16, Q8_0, Q4_0 or Q5_0)", opts.Type)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	fi, err := os.Stat(in)
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	var (
		src     Source
		meta    []KV
		tensors []srcTensor
	)
	if fi.IsDir() || !isGGUFFile(in) {
		src, meta, tensors, err = openHFForConvert(in, opts)
	} else {
		src, meta, tensors, err = openGGUFForConvert(in, opts)
	}
	if err != nil {
		return err
	}
	defer src.Close()

	gw := NewGGUFWriter(w)
	for _, kv := range meta {
		if err := gw.SetMeta(kv.Key, kv.Value); err != nil {
			return fmt.Errorf("convert %s: %w", in, err)
		}
	}
	for i := range tensors {
		st := &tensors[i]
		st.to = targetType(st.t, opts.Type)
		if err := gw.AddTensor(st.name, st.to, st.t.Shape); err != nil {
			return fmt.Errorf("convert %s: %w", in, err)
		}
	}
	for i, st := range tensors {
		if err := ctx.Err(); err != nil {
			return err
		}
		if st.t.Type.Quantized() && st.t.Type != st.to {
			opts.Logger.Warn("requantizing an already quantized tensor loses precision", "tensor", st.t.Name, "from", st.t.Type, "to", st.to)
		}
		if err := gw.WriteTensorStream(st.name, func(w io.Writer) error { return recode(st.t, st.to, w) }); err != nil {
			return fmt.Errorf("convert %s: %w", in, err)
		}
		if opts.Progress != nil {
			opts.Progress(i+1, len(tensors), st.name, st.t.Type, st.to)
		}
	}
	if err := gw.Close(); err != nil {
		return fmt.Errorf("convert %s: %w", in, err)
	}
	return nil
}

type srcTensor struct {
	name string // output (GGUF) name
	t    *Tensor
	to   quant.Type
}

func isGGUFFile(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var magic [4]byte
	_, err = io.ReadFull(f, magic[:])
	return err == nil && string(magic[:]) == GGUFMagic
}

// targetType picks the output type of a tensor.
func targetType(t *Tensor, want quant.Type) quant.Type {
	if len(t.Shape) < 2 {
		return quant.F32
	}
	if t.Type == want {
		return want
	}
	if t.Shape[len(t.Shape)-1]%want.BlockSize() != 0 {
		return quant.F16
	}
	return want
}

// recode writes t's data converted to type to, row chunk by row chunk.
func recode(t *Tensor, to quant.Type, w io.Writer) error {
	if t.Type == to {
		_, err := w.Write(t.Data)
		return err
	}
	row := t.Shape[len(t.Shape)-1]
	if len(t.Shape) == 1 {
		row = t.Elements()
	}
	rows := 1
	if row > 0 {
		rows = t.Elements() / row
	}
	inRow, err := t.Type.RowBytes(row)
	if err != nil {
		return err
	}
	outRow, err := to.RowBytes(row)
	if err != nil {
		return err
	}
	chunk := max(1, (1<<20)/max(row, 1))
	f32 := make([]float32, chunk*row)
	out := make([]byte, chunk*outRow)
	for r := 0; r < rows; r += chunk {
		m := min(chunk, rows-r)
		if err := quant.Dequantize(t.Type, t.Data[r*inRow:(r+m)*inRow], f32[:m*row]); err != nil {
			return err
		}
		if err := quant.Quantize(to, f32[:m*row], out[:m*outRow]); err != nil {
			return err
		}
		if _, err := w.Write(out[:m*outRow]); err != nil {
			return err
		}
	}
	return nil
}

func openGGUFForConvert(in string, opts ConvertOptions) (Source, []KV, []srcTensor, error) {
	g, err := OpenGGUF(in)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("convert: %w", err)
	}
	meta := g.KVs()
	ft, ok := fileTypeOf(opts.Type)
	if !ok {
		g.Close()
		return nil, nil, nil, fmt.Errorf("convert: no GGUF file type for %s", opts.Type)
	}
	replaced := false
	for i := range meta {
		if meta[i].Key == "general.file_type" {
			meta[i].Value = Uint32Value(ft)
			replaced = true
		}
	}
	if !replaced {
		meta = append(meta, KV{"general.file_type", Uint32Value(ft)})
	}
	if !slices.ContainsFunc(meta, func(kv KV) bool { return kv.Key == "general.quantization_version" }) {
		meta = append(meta, KV{"general.quantization_version", Uint32Value(2)})
	}
	var ts []srcTensor
	for _, t := range g.Tensors() {
		ts = append(ts, srcTensor{name: t.Name, t: t})
	}
	return g, meta, ts, nil
}

func openHFForConvert(in string, opts ConvertOptions) (Source, []KV, []srcTensor, error) {
	dir := in
	if fi, err := os.Stat(in); err == nil && !fi.IsDir() {
		dir = filepath.Dir(in)
	}
	p, err := ReadPhi3Config(dir, opts.Name)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("convert: %w", err)
	}
	if err := CheckGGUFName(p.Name); err != nil {
		return nil, nil, nil, fmt.Errorf("convert: %w", err)
	}
	st, err := OpenSafetensors(in)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("convert: %w", err)
	}
	fail := func(err error) (Source, []KV, []srcTensor, error) {
		st.Close()
		return nil, nil, nil, fmt.Errorf("convert %s: %w", in, err)
	}
	var ts []srcTensor
	params := 0
	for _, t := range st.Tensors() {
		name, ok := Phi3GGUFName(t.Name)
		if !ok {
			return fail(fmt.Errorf("tensor %q is not a Phi3ForCausalLM weight", t.Name))
		}
		ts = append(ts, srcTensor{name: name, t: t})
		params += t.Elements()
	}
	// The converter writes tensors in Hugging Face name order.
	sort.Slice(ts, func(i, j int) bool { return ts[i].t.Name < ts[j].t.Name })
	if p.LongFactor != nil {
		long := &Tensor{Name: "rope_factors_long.weight", Type: quant.F32, Shape: []int{len(p.LongFactor)}, Data: f32Bytes(p.LongFactor)}
		short := &Tensor{Name: "rope_factors_short.weight", Type: quant.F32, Shape: []int{len(p.ShortFactor)}, Data: f32Bytes(p.ShortFactor)}
		ts = append([]srcTensor{{name: long.Name, t: long}, {name: short.Name, t: short}}, ts...)
	}
	ft, ok := fileTypeOf(opts.Type)
	if !ok {
		return fail(fmt.Errorf("no GGUF file type for %s", opts.Type))
	}
	p.FileType = ft
	p.SizeLabel = SizeLabel(params)
	pre := opts.TokenizerPre
	if pre == "" {
		pre = "dbrx"
		if p.Vocab >= 200000 {
			pre = "gpt-4o"
		}
	}
	tok, err := HFTokenizerKVs(dir, p.Vocab, pre)
	if err != nil {
		return fail(err)
	}
	return st, append(p.Metadata(), tok...), ts, nil
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	quant.Quantize(quant.F32, v, b) // F32 encoding cannot fail
	return b
}

// fileTypeOf returns llama.cpp's general.file_type for a model whose
// matrices are typ.
func fileTypeOf(typ quant.Type) (uint32, bool) {
	switch typ {
	case quant.F32:
		return 0, true
	case quant.F16:
		return 1, true
	case quant.Q4_0:
		return 2, true
	case quant.Q8_0:
		return 7, true
	case quant.Q5_0:
		return 8, true
	case quant.BF16:
		return 32, true
	}
	return 0, false
}

// FileType returns llama.cpp's general.file_type for a model whose
// matrices are typ (F32 0, F16 1, Q4_0 2, Q8_0 7, Q5_0 8, BF16 32).
func FileType(typ quant.Type) (uint32, bool) { return fileTypeOf(typ) }
