package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/tokenizer"
)

func newPerplexityCmd() *cobra.Command {
	var (
		mf       modelFlags
		sf       sessionFlags
		file     string
		batch    int
		scoreAll bool
		jsonOut  bool
	)
	cmd := &cobra.Command{
		Use:   "perplexity --model PATH -f text.txt [--ctx N] [--score-all] [--json]",
		Short: "Measure a model's perplexity on a text file",
		Long: `perplexity tokenizes the file and scores it the way llama.cpp's llama-perplexity does,
so the numbers compare: the text is cut into chunks of exactly --ctx tokens (the tokens after
the last full chunk are not scored), each chunk is evaluated from an empty cache with its
first token replaced by BOS when the model adds BOS, and only the second half of each chunk
is scored (tokens ctx/2+1 … ctx-1), so that every scored token has at least ctx/2 tokens of
context. The text needs at least --ctx tokens (llama.cpp asks for 2×ctx).

--score-all instead scores every token of each chunk after its first, last partial chunk
included (phi4mac's earlier method; higher perplexity, not comparable with llama.cpp).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			text, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			kv, err := engine.ParseKVType(sf.kv)
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
			o := engine.PerplexityOptions{Ctx: sf.ctx, KV: kv, Batch: batch}
			if o.Ctx == 0 {
				o.Ctx = min(m.Config().MaxContext, 512)
			}
			if scoreAll {
				o.Method = engine.PerplexityAll
			}
			if !jsonOut {
				o.Progress = func(done, total int, ppl float64) {
					fmt.Fprintf(cmd.ErrOrStderr(), "[%d/%d] %.4f\n", done, total, ppl)
				}
			}
			r, err := m.Perplexity(ctx, ids, o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if jsonOut {
				js, err := json.MarshalIndent(r, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(out, "%s\n", js)
				return err
			}
			if r.Method == engine.PerplexityLlamaCpp.String() {
				fmt.Fprintf(out, "method llama.cpp: %d chunks of %d tokens, second half scored (tokens %d-%d of each), BOS at chunk start: %v, %d tokens after the last chunk not scored\n",
					r.Chunks, r.Ctx, r.First+1, r.Ctx-1, r.BOS, r.Unscored)
			} else {
				fmt.Fprintf(out, "method all: %d chunks of up to %d tokens, every token after a chunk's first scored\n", r.Chunks, r.Ctx)
			}
			_, err = fmt.Fprintf(out, "%d tokens scored: mean NLL %.4f nats, perplexity %.4f +/- %.5f\n",
				r.Tokens, r.NLL, r.Perplexity, r.PerplexityErr)
			return err
		},
	}
	mf.register(cmd, "model: a GGUF file or a Hugging Face folder")
	sf.register(cmd)
	cmd.Flags().StringVarP(&file, "file", "f", "", "text file to score")
	cmd.Flags().IntVarP(&batch, "batch", "b", 0, "tokens per forward pass (0: 512, at most --ctx)")
	cmd.Flags().BoolVar(&scoreAll, "score-all", false, "score every token of each chunk after its first (not llama.cpp's method)")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the result as JSON")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}
