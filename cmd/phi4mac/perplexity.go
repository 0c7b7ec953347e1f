package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/tokenizer"
)

func newPerplexityCmd() *cobra.Command {
	var (
		mf   modelFlags
		sf   sessionFlags
		file string
	)
	cmd := &cobra.Command{
		Use:   "perplexity --model PATH -f text.txt [--ctx N]",
		Short: "Measure a model's perplexity on a text file",
		Long: `perplexity tokenizes the file, splits it into chunks of --ctx tokens and scores every
token of each chunk after the first from the tokens before it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			text, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			m, err := mf.open(ctx, false)
			if err != nil {
				return err
			}
			defer m.Close()
			tok := m.Tokenizer()
			if tok == nil {
				return errors.New("the model has no tokenizer")
			}
			ids := tok.Encode(string(text), tokenizer.EncodeOptions{AddBOS: tok.WantsBOS()})
			kv, err := engine.ParseKVType(sf.kv)
			if err != nil {
				return err
			}
			n := sf.ctx
			if n == 0 {
				n = min(m.Config().MaxContext, 512)
			}
			r, err := m.Perplexity(ctx, ids, n, kv)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d tokens scored in %d chunks of up to %d: mean NLL %.4f nats, perplexity %.4f\n",
				r.Tokens, r.Chunks, n, r.NLL, r.Perplexity)
			return nil
		},
	}
	mf.register(cmd, "model: a GGUF file or a Hugging Face folder")
	sf.register(cmd)
	cmd.Flags().StringVarP(&file, "file", "f", "", "text file to score")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}
