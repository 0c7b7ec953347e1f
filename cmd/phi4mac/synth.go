package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/phi4mac/phi4mac/engine/synth"
	"github.com/phi4mac/phi4mac/engine/weights"
)

func newSynthCmd() *cobra.Command {
	var (
		preset, typeName, out, tokDir, pre, name string
		hidden, layers, heads, kvHeads, ffn      int
		vocab, ctx                               int
		seed                                     int64
		quiet                                    bool
	)
	cmd := &cobra.Command{
		Use:   "synth",
		Short: "Write a random-weight Phi-3-architecture model (for tests and benchmarks)",
		Long: `synth generates a model of any Phi-3 (phi-4 style) shape with random weights, exactly as
the reference generator make_tiny_phi3.py does (same values bit for bit), and writes it as a
GGUF file (--type f32, f16, bf16, q8_0, q4_0, q4_k_m or q5_0) or as a Hugging Face folder
(--type hf, BF16 safetensors). GGUF files are byte-identical to what llama.cpp's converter
(float types) and llama-quantize (quantized types, from the F16 file) produce. Presets: ` + strings.Join(synth.PresetNames(), ", ") + `; the flags below
override single dimensions.

--tokenizer copies a vocabulary: a Hugging Face folder (tokenizer files, e.g. the refs'
models/tiny/hf for the phi-4 vocabulary) or a GGUF file (its tokenizer.* metadata). Without
it the model has no tokenizer and can only be driven with token ids.`,
		Example: `  phi4mac synth --preset small --type q4_0 -o /tmp/small-q4_0.gguf --tokenizer ../shared/refs/models/tiny/hf
  phi4mac synth --preset tiny --type hf -o /tmp/tiny-hf --tokenizer ../shared/refs/models/tiny/hf`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ok := synth.Preset(preset)
			if !ok {
				return fmt.Errorf("unknown preset %q (have %s)", preset, strings.Join(synth.PresetNames(), ", "))
			}
			f := cmd.Flags()
			for _, o := range []struct {
				flag string
				dst  *int
				v    int
			}{{"hidden", &c.Hidden, hidden}, {"layers", &c.Layers, layers}, {"heads", &c.Heads, heads},
				{"kv-heads", &c.KVHeads, kvHeads}, {"ffn", &c.Intermediate, ffn}, {"vocab", &c.Vocab, vocab}, {"ctx", &c.Ctx, ctx}} {
				if f.Changed(o.flag) {
					*o.dst = o.v
				}
			}
			if f.Changed("seed") {
				c.Seed = seed
			}
			if f.Changed("name") {
				c.Name = name
			}
			if c.LongRoPE && f.Changed("ctx") {
				return fmt.Errorf("--ctx cannot change a LongRoPE preset")
			}
			if out == "" {
				return fmt.Errorf("-o is required")
			}
			errw := cmd.ErrOrStderr()
			var progress synth.Progress
			if !quiet {
				progress = func(done, total int, tensor string) {
					fmt.Fprintf(errw, "[%*d/%d] %s\n", len(fmt.Sprint(total)), done, total, tensor)
				}
			}
			start := time.Now()
			if strings.EqualFold(typeName, "hf") {
				if err := c.WriteHFContext(cmd.Context(), out, tokDir, progress); err != nil {
					return err
				}
			} else {
				scheme, err := weights.ParseScheme(typeName)
				if err != nil {
					return fmt.Errorf("--type: %w (or hf)", err)
				}
				if fi, err := os.Stat(out); err == nil && fi.IsDir() {
					return fmt.Errorf("-o %s is a folder; give a .gguf file name (or --type hf for a Hugging Face folder)", out)
				}
				tok, err := tokenizerKVs(tokDir, c.Vocab, pre)
				if err != nil {
					return err
				}
				write := func(w io.Writer) error { return c.WriteGGUFContext(cmd.Context(), w, scheme, tok, progress) }
				if err := weights.WriteFile(out, write); err != nil {
					return err
				}
			}
			if !quiet {
				fmt.Fprintf(errw, "wrote %s (%s, %d parameters) in %s\n", out, c.GGUFName(), c.Params(), time.Since(start).Round(time.Millisecond))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&preset, "preset", "tiny", "shape preset: "+strings.Join(synth.PresetNames(), ", "))
	f.StringVarP(&typeName, "type", "t", "f16", "output: f32, f16, bf16, q8_0, q4_0, q4_k_m, q5_0 (GGUF) or hf (Hugging Face folder)")
	f.StringVarP(&out, "output", "o", "", "output GGUF file or HF folder")
	f.StringVar(&tokDir, "tokenizer", "", "copy the tokenizer from this HF folder or GGUF file")
	f.StringVar(&pre, "tokenizer-pre", "dbrx", "tokenizer.ggml.pre when converting an HF tokenizer folder")
	f.StringVar(&name, "name", "", `model name (general.name becomes "Random Phi4 <Name>")`)
	f.IntVar(&hidden, "hidden", 0, "hidden size")
	f.IntVar(&layers, "layers", 0, "number of layers")
	f.IntVar(&heads, "heads", 0, "attention heads")
	f.IntVar(&kvHeads, "kv-heads", 0, "key/value heads")
	f.IntVar(&ffn, "ffn", 0, "feed-forward (intermediate) size")
	f.IntVar(&vocab, "vocab", 0, "vocabulary size")
	f.IntVar(&ctx, "ctx", 0, "context length")
	f.Int64Var(&seed, "seed", 1234, "weight seed")
	f.BoolVarP(&quiet, "quiet", "q", false, "do not print progress")
	return cmd
}

// tokenizerKVs loads tokenizer metadata from an HF folder or a GGUF file.
func tokenizerKVs(path string, vocab int, pre string) ([]weights.KV, error) {
	if path == "" {
		return nil, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("--tokenizer: %w", err)
	}
	if fi.IsDir() {
		return weights.HFTokenizerKVs(path, vocab, pre)
	}
	if strings.EqualFold(filepath.Ext(path), ".gguf") {
		g, err := weights.OpenGGUF(path)
		if err != nil {
			return nil, fmt.Errorf("--tokenizer: %w", err)
		}
		defer g.Close()
		return weights.TokenizerKVs(g), nil
	}
	return nil, fmt.Errorf("--tokenizer %s: want a Hugging Face folder or a .gguf file", path)
}
