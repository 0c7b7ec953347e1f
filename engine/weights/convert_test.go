package weights

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/engine/quant"
	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// TestConvertHFReproducesConverter converts the reference HF folders and
// expects the exact bytes llama.cpp's convert_hf_to_gguf.py wrote (float
// formats) or llama-quantize then wrote from its F16 file (quantized).
func TestConvertHFReproducesConverter(t *testing.T) {
	for _, tc := range []struct {
		hf, name, pre, out string
		scheme             string
	}{
		{"models/micro/hf", "Random Phi4 Micro", "", "models/micro/phi3-random-micro-F32.gguf", "F32"},
		{"models/micro/hf", "Random Phi4 Micro", "", "models/micro/phi3-random-micro-F16.gguf", "F16"},
		{"models/micro/hf/model.safetensors", "Random Phi4 Micro", "", "models/micro/phi3-random-micro-BF16.gguf", "BF16"},
		{"models/micromini/hf", "Random Phi4Mini Micromini", "gpt-4o", "models/micromini/phi4mini-random-micromini-F32.gguf", "F32"},
		{"models/micromini/hf", "Random Phi4Mini Micromini", "gpt-4o", "models/micromini/phi4mini-random-micromini-F16.gguf", "F16"},
		// Quantized: as llama-quantize writes the converter's F16 file.
		{"models/micro/hf", "Random Phi4 Micro", "", "models/micro/phi3-random-micro-Q8_0.gguf", "Q8_0"},
		{"models/micro/hf", "Random Phi4 Micro", "", "models/micro/phi3-random-micro-Q4_0.gguf", "Q4_0"},
		{"models/micro/hf", "Random Phi4 Micro", "", "models/micro/phi3-random-micro-Q4_K_M.gguf", "Q4_K_M"},
		{"models/micromini/hf", "Random Phi4Mini Micromini", "gpt-4o", "models/micromini/phi4mini-random-micromini-Q8_0.gguf", "Q8_0"},
	} {
		var buf bytes.Buffer
		err := ConvertToGGUF(context.Background(), testrefs.Path(t, tc.hf), &buf, ConvertOptions{Scheme: mustScheme(t, tc.scheme), Name: tc.name, TokenizerPre: tc.pre})
		if err != nil {
			t.Fatal(err)
		}
		if want := mustRead(t, testrefs.Path(t, tc.out)); !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s -> %s: differs from %s at byte %d", tc.hf, tc.scheme, tc.out, firstDiffBytes(buf.Bytes(), want))
		}
	}
}

func mustScheme(t *testing.T, name string) Scheme {
	t.Helper()
	s, err := ParseScheme(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConvertGGUFMatchesLlamaQuantize quantizes the F16 micro and micromini
// GGUFs and expects the exact files llama-quantize wrote.
func TestConvertGGUFMatchesLlamaQuantize(t *testing.T) {
	for _, tc := range []struct{ in, scheme, out string }{
		{"models/micro/phi3-random-micro-F16.gguf", "Q8_0", "models/micro/phi3-random-micro-Q8_0.gguf"},
		{"models/micro/phi3-random-micro-F16.gguf", "Q4_0", "models/micro/phi3-random-micro-Q4_0.gguf"},
		{"models/micro/phi3-random-micro-F16.gguf", "Q4_K_M", "models/micro/phi3-random-micro-Q4_K_M.gguf"},
		{"models/micromini/phi4mini-random-micromini-F16.gguf", "Q8_0", "models/micromini/phi4mini-random-micromini-Q8_0.gguf"},
	} {
		var buf bytes.Buffer
		var progress []string
		opts := ConvertOptions{Scheme: mustScheme(t, tc.scheme), Progress: func(done, total int, name string, from, to quant.Type) {
			progress = append(progress, name)
		}}
		if err := ConvertToGGUF(context.Background(), testrefs.Path(t, tc.in), &buf, opts); err != nil {
			t.Fatal(err)
		}
		want := mustRead(t, testrefs.Path(t, tc.out))
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s -> %s differs from llama-quantize's %s at byte %d", tc.in, tc.scheme, tc.out, firstDiffBytes(buf.Bytes(), want))
		}
		if len(progress) < 15 {
			t.Errorf("progress called %d times", len(progress))
		}
	}
}

func TestConvertErrors(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	q8 := mustScheme(t, "q8_0")
	if err := ConvertToGGUF(ctx, testrefs.Path(t, "models/micro/hf"), &buf, ConvertOptions{}); err == nil {
		t.Error("no scheme: no error")
	}
	if _, err := ParseScheme("q6_k"); err == nil {
		t.Error("q6_k scheme accepted")
	}
	if err := ConvertToGGUF(ctx, filepath.Join(t.TempDir(), "nope"), &buf, ConvertOptions{Scheme: q8}); err == nil {
		t.Error("missing input: no error")
	}
	// stories260K is Llama, not Phi-3: an HF-style folder is required for
	// metadata, so a GGUF input converts (metadata copied) ...
	if err := ConvertToGGUF(ctx, testrefs.Path(t, "models/stories260K/stories260K.gguf"), &buf, ConvertOptions{Scheme: q8, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Errorf("stories260K GGUF: %v", err)
	}
	// ... and a cancelled context stops the work.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := ConvertToGGUF(cctx, testrefs.Path(t, "models/micro/phi3-random-micro-F16.gguf"), &buf, ConvertOptions{Scheme: q8}); err == nil {
		t.Error("cancelled: no error")
	}
	// A folder without config.json fails with a clear error.
	if err := ConvertToGGUF(ctx, t.TempDir(), &buf, ConvertOptions{Scheme: q8}); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("empty folder: %v", err)
	}
}

// TestConvertShardedHF splits the micro HF folder's weights into two shards
// with an index and expects the same F16 GGUF as from the single file.
func TestConvertShardedHF(t *testing.T) {
	src := testrefs.Path(t, "models/micro/hf")
	dir := t.TempDir()
	for _, f := range []string{"config.json", "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "added_tokens.json", "special_tokens_map.json", "generation_config.json"} {
		if err := os.WriteFile(filepath.Join(dir, f), mustRead(t, filepath.Join(src, f)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st, err := OpenSafetensors(src)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	all := st.Tensors()
	weightMap := map[string]string{}
	for i, part := range [][]*Tensor{all[:5], all[5:]} {
		name := fmt.Sprintf("model-%05d-of-00002.safetensors", i+1)
		var buf bytes.Buffer
		if err := WriteSafetensors(&buf, part, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, tt := range part {
			weightMap[tt.Name] = name
		}
	}
	index, _ := json.Marshal(map[string]any{"metadata": map[string]any{}, "weight_map": weightMap})
	if err := os.WriteFile(filepath.Join(dir, IndexFile), index, 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	opts := ConvertOptions{Scheme: mustScheme(t, "F16"), Name: "Random Phi4 Micro"}
	if err := ConvertToGGUF(context.Background(), dir, &buf, opts); err != nil {
		t.Fatal(err)
	}
	if want := mustRead(t, testrefs.Path(t, "models/micro/phi3-random-micro-F16.gguf")); !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("sharded conversion differs at byte %d", firstDiffBytes(buf.Bytes(), want))
	}
}

// TestConvertFileProtectsInput checks that quantize's file-level entry
// point refuses outputs that would destroy its input, before doing any
// work, and rejects inputs that are no model with a clear message.
func TestConvertFileProtectsInput(t *testing.T) {
	ctx := context.Background()
	opts := ConvertOptions{Scheme: mustScheme(t, "q8_0"), Logger: slog.New(slog.DiscardHandler)}
	dir := t.TempDir()
	in := filepath.Join(dir, "micro-F16.gguf")
	orig := mustRead(t, testrefs.Path(t, "models/micro/phi3-random-micro-F16.gguf"))
	if err := os.WriteFile(in, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	hf := t.TempDir()
	src := testrefs.Path(t, "models/micro/hf")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.WriteFile(filepath.Join(hf, e.Name()), mustRead(t, filepath.Join(src, e.Name())), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	notModel := filepath.Join(dir, "notes.txt")
	os.WriteFile(notModel, []byte("hello"), 0o644)
	tests := []struct {
		name, in, out, want string
	}{
		{"same file", in, in, "is the input file"},
		{"same file, other spelling", in, filepath.Join(dir, ".", "micro-F16.gguf"), "is the input file"},
		{"output is a folder", in, dir, "is a folder"},
		{"HF weights", hf, filepath.Join(hf, "model.safetensors"), "would replace a file of the input model folder"},
		{"HF config", filepath.Join(hf, "model.safetensors"), filepath.Join(hf, "config.json"), "would replace a file of the input model folder"},
		{"not a model", notModel, filepath.Join(dir, "out.gguf"), "neither a GGUF file nor a Hugging Face model"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ConvertFile(ctx, tc.in, tc.out, opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if !bytes.Equal(mustRead(t, in), orig) {
		t.Fatal("input changed")
	}
	if !bytes.Equal(mustRead(t, filepath.Join(hf, "model.safetensors")), mustRead(t, filepath.Join(src, "model.safetensors"))) {
		t.Fatal("HF input changed")
	}
	// A GGUF output inside the HF folder is fine, and so is a new file.
	if err := ConvertFile(ctx, hf, filepath.Join(hf, "micro-Q8_0.gguf"), opts); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "micro-Q8_0.gguf")
	if err := ConvertFile(ctx, in, out, opts); err != nil {
		t.Fatal(err)
	}
	if want := mustRead(t, testrefs.Path(t, "models/micro/phi3-random-micro-Q8_0.gguf")); !bytes.Equal(mustRead(t, out), want) {
		t.Fatal("output differs from llama-quantize's")
	}
}

// TestConvertFileCancelled cancels a conversion after its first tensor
// (as Ctrl-C does through the command's context) and expects
// context.Canceled, no output file and no temporary file left; recode
// also stops between the row chunks of one large tensor.
func TestConvertFileCancelled(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.gguf")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := ConvertOptions{Scheme: mustScheme(t, "q4_0"), Logger: slog.New(slog.DiscardHandler),
		Progress: func(done, total int, name string, from, to quant.Type) { cancel() }}
	err := ConvertFile(ctx, testrefs.Path(t, "models/micro/phi3-random-micro-F32.gguf"), out, opts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}

	big := &Tensor{Name: "big", Type: quant.F32, Shape: []int{4096, 256}, Data: make([]byte, 4096*256*4)}
	cctx, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := recode(cctx, big, quant.Q8_0, io.Discard); !errors.Is(err, context.Canceled) {
		t.Fatalf("recode: err = %v, want context.Canceled", err)
	}
}

// TestEncodeRows checks EncodeRows against quantizing everything at once,
// for row counts around the chunk and worker boundaries, and that fill
// errors and empty inputs are handled.
func TestEncodeRows(t *testing.T) {
	const row = 256
	for _, rows := range []int{0, 1, 1023, 1024, 1025, 3*1024 + 7} {
		src := make([]float32, rows*row)
		for i := range src {
			src[i] = float32(i%977) - 488
		}
		want := make([]byte, rows*row/32*34)
		if err := quant.Quantize(quant.Q8_0, src, want); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		err := EncodeRows(context.Background(), &got, quant.Q8_0, rows, row, func(_, start int, dst []float32) error {
			copy(dst, src[start*row:])
			return nil
		})
		if err != nil || !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%d rows: err %v, output equal %v", rows, err, bytes.Equal(got.Bytes(), want))
		}
	}
	boom := errors.New("boom")
	err := EncodeRows(context.Background(), io.Discard, quant.Q8_0, 10, row, func(int, int, []float32) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("fill error: %v", err)
	}
	if err := EncodeRows(context.Background(), io.Discard, quant.Q8_0, 1, 33, nil); err == nil {
		t.Error("row of 33 for Q8_0: no error")
	}
}
