package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/phi4mac/phi4mac/engine/quant"
	"github.com/phi4mac/phi4mac/engine/weights"
)

func newQuantizeCmd() *cobra.Command {
	var (
		typeName string
		name     string
		pre      string
		quiet    bool
	)
	cmd := &cobra.Command{
		Use:   "quantize IN OUT",
		Short: "Convert a GGUF file or Hugging Face folder to a GGUF with Q8_0, Q4_0, Q4_K_M (or float) weights",
		Long: `quantize reads a model — a GGUF file, or a Hugging Face Phi3ForCausalLM folder with
F32/F16/BF16 safetensors (single or sharded) — and writes a GGUF in the chosen weight format.
1-D tensors (norms, LongRoPE factors) stay F32. It follows llama.cpp exactly: a GGUF input
gives the file llama-quantize (without an importance matrix) writes, byte for byte — the same
per-tensor types (e.g. output.weight Q6_K in q4_0 and q4_k_m files) and GGML's reference
quantizers; a Hugging Face folder gives what convert_hf_to_gguf.py writes (float formats), or
what llama-quantize then makes of its F16 file. GGUF metadata is kept; for a Hugging Face
folder the phi3 model metadata and the tokenizer metadata are derived as the converter does.

The output is written to a temporary file beside OUT and renamed into place when complete,
so an error or Ctrl-C leaves no partial file; OUT may not be the input itself.`,
		Example: `  phi4mac quantize ~/models/phi-4 phi-4-Q8_0.gguf --type q8_0
  phi4mac quantize phi-4-F16.gguf phi-4-Q4_K_M.gguf --type q4_k_m`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			scheme, err := weights.ParseScheme(typeName)
			if err != nil {
				return fmt.Errorf("--type: %w", err)
			}
			in, out := args[0], args[1]
			start := time.Now()
			errw := cmd.ErrOrStderr()
			opts := weights.ConvertOptions{Scheme: scheme, Name: name, TokenizerPre: pre}
			if !quiet {
				opts.Progress = func(done, total int, tensor string, from, to quant.Type) {
					fmt.Fprintf(errw, "[%*d/%d] %-32s %-5s -> %s\n", len(fmt.Sprint(total)), done, total, tensor, from, to)
				}
			}
			if err := weights.ConvertFile(cmd.Context(), in, out, opts); err != nil {
				return err
			}
			if !quiet {
				fmt.Fprintf(errw, "wrote %s in %s\n", out, time.Since(start).Round(time.Millisecond))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&typeName, "type", "t", "q8_0", "weight format: q8_0, q4_0, q4_k_m, q5_0, f16, bf16 or f32")
	cmd.Flags().StringVar(&name, "name", "", "general.name for Hugging Face input (default: the folder name)")
	cmd.Flags().StringVar(&pre, "tokenizer-pre", "", `tokenizer.ggml.pre for Hugging Face input (default: "dbrx" for phi-4, "gpt-4o" for vocabularies of 200k+)`)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "do not print progress")
	return cmd
}
