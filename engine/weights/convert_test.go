package weights

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/engine/quant"
	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// TestConvertHFReproducesConverter converts the reference HF folders and
// expects the exact bytes llama.cpp's convert_hf_to_gguf.py wrote.
func TestConvertHFReproducesConverter(t *testing.T) {
	for _, tc := range []struct {
		hf, name, pre, out string
		typ                quant.Type
	}{
		{"models/micro/hf", "Random Phi4 Micro", "", "models/micro/phi3-random-micro-F32.gguf", quant.F32},
		{"models/micro/hf", "Random Phi4 Micro", "", "models/micro/phi3-random-micro-F16.gguf", quant.F16},
		{"models/micro/hf/model.safetensors", "Random Phi4 Micro", "", "models/micro/phi3-random-micro-BF16.gguf", quant.BF16},
		{"models/micromini/hf", "Random Phi4Mini Micromini", "gpt-4o", "models/micromini/phi4mini-random-micromini-F32.gguf", quant.F32},
		{"models/micromini/hf", "Random Phi4Mini Micromini", "gpt-4o", "models/micromini/phi4mini-random-micromini-F16.gguf", quant.F16},
	} {
		var buf bytes.Buffer
		err := ConvertToGGUF(context.Background(), testrefs.Path(t, tc.hf), &buf, ConvertOptions{Type: tc.typ, Name: tc.name, TokenizerPre: tc.pre})
		if err != nil {
			t.Fatal(err)
		}
		if want := mustRead(t, testrefs.Path(t, tc.out)); !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s -> %s: differs from %s at byte %d", tc.hf, tc.typ, tc.out, firstDiffBytes(buf.Bytes(), want))
		}
	}
}

// TestConvertGGUFMatchesLlamaQuantize quantizes the F16 micro GGUF and
// compares tensors with llama-quantize's output.
func TestConvertGGUFMatchesLlamaQuantize(t *testing.T) {
	for _, typ := range []quant.Type{quant.Q8_0, quant.Q4_0} {
		var buf bytes.Buffer
		var progress []string
		opts := ConvertOptions{Type: typ, Progress: func(done, total int, name string, from, to quant.Type) {
			progress = append(progress, name)
		}}
		if err := ConvertToGGUF(context.Background(), testrefs.Path(t, "models/micro/phi3-random-micro-F16.gguf"), &buf, opts); err != nil {
			t.Fatal(err)
		}
		ours, err := OpenGGUFBytes(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if len(progress) != 15 {
			t.Errorf("progress called %d times", len(progress))
		}
		ref, err := OpenGGUF(testrefs.Path(t, "models/micro/phi3-random-micro-"+typ.String()+".gguf"))
		if err != nil {
			t.Fatal(err)
		}
		defer ref.Close()
		for _, rt := range ref.Tensors() {
			ot, _ := ours.Tensor(rt.Name)
			if rt.Type != typ && rt.Type != quant.F32 {
				if ot.Type != typ {
					t.Errorf("%s: type %s, want %s", ot.Name, ot.Type, typ)
				}
				continue
			}
			if ot.Type != rt.Type || !bytes.Equal(ot.Data, rt.Data) {
				t.Errorf("%s %s differs from llama-quantize", typ, rt.Name)
			}
		}
		if ft, _ := ours.Uint("general.file_type"); ft != map[quant.Type]uint64{quant.Q8_0: 7, quant.Q4_0: 2}[typ] {
			t.Errorf("file type %d", ft)
		}
		// Everything else in the metadata is kept.
		src, _ := OpenGGUF(testrefs.Path(t, "models/micro/phi3-random-micro-F16.gguf"))
		if len(src.Keys()) != len(ours.Keys()) {
			t.Errorf("%d keys, source has %d", len(ours.Keys()), len(src.Keys()))
		}
		src.Close()
	}
}

func TestConvertErrors(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	if err := ConvertToGGUF(ctx, testrefs.Path(t, "models/micro/hf"), &buf, ConvertOptions{Type: quant.Q6_K}); err == nil {
		t.Error("Q6_K target: no error")
	}
	if err := ConvertToGGUF(ctx, filepath.Join(t.TempDir(), "nope"), &buf, ConvertOptions{Type: quant.Q8_0}); err == nil {
		t.Error("missing input: no error")
	}
	// stories260K is Llama, not Phi-3: an HF-style folder is required for
	// metadata, so a GGUF input converts (metadata copied) ...
	if err := ConvertToGGUF(ctx, testrefs.Path(t, "models/stories260K/stories260K.gguf"), &buf, ConvertOptions{Type: quant.Q8_0, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Errorf("stories260K GGUF: %v", err)
	}
	// ... and a cancelled context stops the work.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := ConvertToGGUF(cctx, testrefs.Path(t, "models/micro/phi3-random-micro-F16.gguf"), &buf, ConvertOptions{Type: quant.Q8_0}); err == nil {
		t.Error("cancelled: no error")
	}
	// A folder without config.json fails with a clear error.
	if err := ConvertToGGUF(ctx, t.TempDir(), &buf, ConvertOptions{Type: quant.Q8_0}); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("empty folder: %v", err)
	}
}
