package main

import (
	"github.com/spf13/cobra"

	"github.com/phi4mac/phi4mac/tokenizer"
)

func newTokenizeCmd() *cobra.Command {
	var model string
	var special, jsonl bool
	cmd := &cobra.Command{
		Use:   "tokenize --model PATH [--special] [--jsonl]",
		Short: "Print the token ids of text read from standard input",
		Long: `tokenize reads text from standard input and prints its token ids as a JSON array.
PATH is a model folder, a tokenizer.json file or a .gguf file.

With --jsonl each input line is a JSON string and each gets one JSON array
of ids on its own output line, in order. With --special, added tokens such as
<|im_start|> written in the text become those tokens; without it they are
ordinary text.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := tokenizer.Load(model)
			if err != nil {
				return err
			}
			return tokenizer.WriteIDs(tok, cmd.InOrStdin(), cmd.OutOrStdout(), tokenizer.EncodeOptions{AllowSpecial: special}, jsonl)
		},
	}
	cmd.Flags().StringVar(&model, "model", "", "model folder, tokenizer.json or .gguf file")
	cmd.Flags().BoolVar(&special, "special", false, "encode added-token text such as <|im_end|> as those tokens")
	cmd.Flags().BoolVar(&jsonl, "jsonl", false, "read one JSON string per line, write one JSON array per line")
	cmd.MarkFlagRequired("model")
	return cmd
}

func newDetokenizeCmd() *cobra.Command {
	var model string
	var jsonl bool
	cmd := &cobra.Command{
		Use:   "detokenize --model PATH [--jsonl]",
		Short: "Print the text of token ids read from standard input",
		Long: `detokenize reads a JSON array of token ids from standard input and prints their
text as is. PATH is a model folder, a tokenizer.json file or a .gguf file.

With --jsonl each input line is a JSON array of ids and each gets its text
as a JSON string on its own output line, in order.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := tokenizer.Load(model)
			if err != nil {
				return err
			}
			return tokenizer.WriteText(tok, cmd.InOrStdin(), cmd.OutOrStdout(), jsonl)
		},
	}
	cmd.Flags().StringVar(&model, "model", "", "model folder, tokenizer.json or .gguf file")
	cmd.Flags().BoolVar(&jsonl, "jsonl", false, "read one JSON array per line, write one JSON string per line")
	cmd.MarkFlagRequired("model")
	return cmd
}
