package weights

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/phi4mac/phi4mac/engine/quant"
)

// ConvertOptions configure ConvertToGGUF.
type ConvertOptions struct {
	// Scheme is the weight format (see Scheme.TensorTypes for which tensor
	// gets which type). 1-D tensors (norms, LongRoPE factors) stay F32.
	Scheme Scheme
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
// writes it to w as GGUF in the weight format opts.Scheme.
//
// GGUF input is written exactly as llama-quantize (without an importance
// matrix) writes it: same metadata (general.file_type updated, it and
// general.quantization_version moved last), tensors sorted by layer, the
// same per-tensor types and bit-identical quantized blocks. Hugging Face
// input is written as llama.cpp's convert_hf_to_gguf.py writes it (phi3.*
// and tokenizer metadata derived from config.json and the tokenizer files,
// tensors in name order) for float formats, and for quantized formats as
// llama-quantize then writes that converted file. Tensors are processed one
// at a time in row chunks, so memory stays small.
func ConvertToGGUF(ctx context.Context, in string, w io.Writer, opts ConvertOptions) error {
	if opts.Scheme.Name == "" {
		return errors.New("convert: no weight format given")
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
	switch {
	case !fi.IsDir() && isGGUFFile(in):
		src, meta, tensors, err = openGGUFForConvert(in, opts)
	case fi.IsDir() || isHFWeightsFile(in):
		src, meta, tensors, err = openHFForConvert(in, opts)
	default:
		return fmt.Errorf("convert: %s is neither a GGUF file nor a Hugging Face model (a folder with config.json and safetensors, a .safetensors file or %s)", in, IndexFile)
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
	assignTypes(tensors, opts.Scheme)
	for i := range tensors {
		st := &tensors[i]
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
		if err := gw.WriteTensorStream(st.name, func(w io.Writer) error { return recode(ctx, st.t, st.to, w) }); err != nil {
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

// ConvertFile converts the model at in (see ConvertToGGUF) into a GGUF
// file at out, written atomically (see WriteFile): on an error or a
// cancelled ctx no file appears at out. It refuses, before any work, an
// output that is a folder, the input file itself, or one of the files of an
// input Hugging Face folder other than a .gguf file.
func ConvertFile(ctx context.Context, in, out string, opts ConvertOptions) error {
	if err := checkConvertOutput(in, out); err != nil {
		return err
	}
	return WriteFile(out, func(w io.Writer) error { return ConvertToGGUF(ctx, in, w, opts) })
}

// checkConvertOutput checks that writing out cannot destroy the input in.
func checkConvertOutput(in, out string) error {
	inInfo, err := os.Stat(in)
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	outInfo, err := os.Stat(out)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("convert: output: %w", err)
	}
	if outInfo.IsDir() {
		return fmt.Errorf("convert: output %s is a folder; give a file name such as %s", out, filepath.Join(out, "model.gguf"))
	}
	if os.SameFile(inInfo, outInfo) {
		return fmt.Errorf("convert: output %s is the input file; choose another output name", out)
	}
	if inInfo.IsDir() || !isGGUFFile(in) {
		// A Hugging Face folder: its config, tokenizer and weight files
		// are all read; a .gguf file beside them is not.
		dir := in
		if !inInfo.IsDir() {
			dir = filepath.Dir(in)
		}
		dirInfo, err1 := os.Stat(dir)
		outDir, err2 := os.Stat(filepath.Dir(out))
		if err1 == nil && err2 == nil && os.SameFile(dirInfo, outDir) && !strings.EqualFold(filepath.Ext(out), ".gguf") {
			return fmt.Errorf("convert: output %s would replace a file of the input model folder %s; choose another output name", out, dir)
		}
	}
	return nil
}

// isHFWeightsFile reports whether path names a safetensors file or shard
// index, which ConvertToGGUF reads with the folder it lies in.
func isHFWeightsFile(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	return ext == ".safetensors" || ext == ".json"
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

// assignTypes sets each tensor's output type by the scheme's rules, which
// count layers in llama-quantize's order.
func assignTypes(ts []srcTensor, s Scheme) {
	infos := make([]TensorInfo, len(ts))
	for i, t := range ts {
		infos[i] = TensorInfo{Name: t.name, Shape: t.t.Shape}
	}
	SortLlamaQuantize(infos)
	types := s.TensorTypes(infos)
	byName := make(map[string]quant.Type, len(ts))
	for i, info := range infos {
		byName[info.Name] = types[i]
	}
	for i := range ts {
		ts[i].to = byName[ts[i].name]
	}
}

// recode writes t's data converted to type to, row chunk by row chunk,
// stopping early when ctx is cancelled.
func recode(ctx context.Context, t *Tensor, to quant.Type, w io.Writer) error {
	if t.Type == to {
		_, err := w.Write(t.Data)
		return err
	}
	row := t.Shape[len(t.Shape)-1]
	if len(t.Shape) == 1 {
		row = t.Elements()
	}
	rows := 0
	if row > 0 {
		rows = t.Elements() / row
	}
	inRow, err := t.Type.RowBytes(row)
	if err != nil {
		return err
	}
	return EncodeRows(ctx, w, to, rows, row, func(_, start int, dst []float32) error {
		return quant.Dequantize(t.Type, t.Data[start*inRow:(start+len(dst)/row)*inRow], dst)
	})
}

// EncodeRows writes rows rows of row elements each to w, encoded as type
// to. fill produces the float32 values of the rows from start on (as many
// rows as dst holds); it is called concurrently for different rows, with
// worker numbering the calling goroutine (0 to GOMAXPROCS-1) for scratch
// buffers of its own. Rounds of row chunks are filled and encoded in
// parallel and written in order, so memory stays bounded (a few MB) for
// any tensor size. ctx is checked before each round.
func EncodeRows(ctx context.Context, w io.Writer, to quant.Type, rows, row int, fill func(worker, start int, dst []float32) error) error {
	outRow, err := to.RowBytes(row)
	if err != nil {
		return err
	}
	if rows <= 0 || row <= 0 {
		return nil
	}
	chunk := max(1, min(rows, (1<<18)/row))
	workers := max(1, min(runtime.GOMAXPROCS(0), (rows+chunk-1)/chunk))
	f32 := make([]float32, workers*chunk*row)
	out := make([]byte, workers*chunk*outRow)
	errs := make([]error, workers)
	for r0 := 0; r0 < rows; r0 += workers * chunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		var wg sync.WaitGroup
		for k := range workers {
			start := r0 + k*chunk
			if start >= rows {
				break
			}
			m := min(chunk, rows-start)
			wg.Add(1)
			go func() {
				defer wg.Done()
				x := f32[k*chunk*row : (k*chunk+m)*row]
				if errs[k] = fill(k, start, x); errs[k] == nil {
					errs[k] = quant.Quantize(to, x, out[k*chunk*outRow:(k*chunk+m)*outRow])
				}
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		m := min(workers*chunk, rows-r0)
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
	meta := opts.Scheme.LlamaQuantizeMetadata(g.KVs())
	infos := make([]TensorInfo, len(g.Tensors()))
	for i, t := range g.Tensors() {
		infos[i] = TensorInfo{Name: t.Name, Shape: t.Shape}
	}
	SortLlamaQuantize(infos)
	ts := make([]srcTensor, len(infos))
	for i, info := range infos {
		t, _ := g.Tensor(info.Name)
		ts[i] = srcTensor{name: t.Name, t: t}
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
	p.FileType = opts.Scheme.FileType
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
	meta := append(p.Metadata(), tok...)
	if opts.Scheme.Base.Quantized() {
		// As llama-quantize would write it from the converter's file.
		meta = opts.Scheme.LlamaQuantizeMetadata(meta)
		infos := make([]TensorInfo, len(ts))
		byName := map[string]srcTensor{}
		for i, t := range ts {
			infos[i] = TensorInfo{Name: t.name, Shape: t.t.Shape}
			byName[t.name] = t
		}
		SortLlamaQuantize(infos)
		for i, info := range infos {
			ts[i] = byName[info.Name]
		}
	}
	return st, meta, ts, nil
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	quant.Quantize(quant.F32, v, b) // F32 encoding cannot fail
	return b
}
