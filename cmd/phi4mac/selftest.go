package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/phi4mac/phi4mac/engine/gpu/selftest"
)

func newSelftestCmd() *cobra.Command {
	var opts selftest.Options
	cmd := &cobra.Command{
		Use:   "selftest",
		Short: "Check the GPU kernels against the CPU backend and print a report to paste into an issue",
		Long: `selftest compiles every Metal kernel, compares each operation of the GPU
backend with the CPU backend on small inputs, then runs a model (the embedded
demo model unless --model is given) on both and compares logits, greedy tokens
and speed. On Linux, --backend emu runs the same checks on the Metal emulator.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := selftest.Run(cmd.Context(), opts, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if !rep.OK() {
				return errors.New("selftest: some checks failed (see the report)")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Device, "backend", "auto", "GPU device: metal, emu (Linux emulator) or auto")
	cmd.Flags().StringVar(&opts.Model, "model", "", "model to compare (GGUF or Hugging Face folder); default: the embedded demo model")
	cmd.Flags().IntVar(&opts.Tokens, "tokens", 32, "greedy tokens to compare")
	return cmd
}
