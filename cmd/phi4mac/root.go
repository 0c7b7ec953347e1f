package main

import (
	"github.com/spf13/cobra"
)

// newRootCmd builds the whole command tree. Each subcommand lives in its own
// file as a newXxxCmd constructor; this is the one place they are wired.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "phi4mac",
		Short: "Run Microsoft's Phi-4 models privately on your Mac",
		Long: `phi4mac runs Microsoft's Phi-4 family (phi-4, phi-4-mini, phi-4-reasoning) locally,
from Hugging Face safetensors or GGUF files, on Apple Silicon through Metal or on the CPU.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newVersionCmd(),
		newQuantizeCmd(),
		newSynthCmd(),
		newRunCmd(),
		newEvalCmd(),
		newBenchCmd(),
		newPerplexityCmd(),
		newInfoCmd(),
		newTokenizeCmd(),
		newDetokenizeCmd(),
		newSelftestCmd(),
		newServeCmd(),
		newModelsCmd(),
		newRmCmd(),
		newAskCmd(),
		newChatCmd(),
		newPullCmd(),
		newOpenURLCmd(),
		newConfigCmd(),
	)
	return root
}
