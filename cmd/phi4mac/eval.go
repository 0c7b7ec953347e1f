package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/phi4mac/phi4mac/engine"
)

// parseIDs parses "1,2,3" (spaces allowed).
func parseIDs(s string) ([]int, error) {
	var ids []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		id, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("--tokens: %q is not a token id", f)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("--tokens: no token ids")
	}
	return ids, nil
}

func newEvalCmd() *cobra.Command {
	var (
		mf     modelFlags
		sf     sessionFlags
		tokens string
		out    string
		greedy int
	)
	cmd := &cobra.Command{
		Use:   "eval --model PATH --tokens 1,2,3",
		Short: "Run token ids through a model: write the last logits, print greedy ids",
		Long: `eval runs the token ids through the model in one batched pass, writes the last
position's logits (float32 little-endian) to --out, then decodes --greedy tokens one at a
time and prints them as a JSON array.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			ids, err := parseIDs(tokens)
			if err != nil {
				return err
			}
			m, err := mf.open(ctx, false)
			if err != nil {
				return err
			}
			defer m.Close()
			so, err := sf.options()
			if err != nil {
				return err
			}
			s, err := m.NewSession(so)
			if err != nil {
				return err
			}
			defer s.Close()
			logits, err := s.Forward(ctx, ids, false)
			if err != nil {
				return err
			}
			if out != "" {
				buf := make([]byte, 4*len(logits))
				for i, v := range logits {
					binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
				}
				if err := os.WriteFile(out, buf, 0o644); err != nil {
					return err
				}
			}
			gen := []int{}
			if greedy > 0 {
				res, err := s.Generate(ctx, engine.Request{Prompt: ids, MaxTokens: greedy, StopIDs: []int{}}, nil)
				if err != nil {
					return err
				}
				gen = res.Tokens
			}
			js, _ := json.Marshal(gen)
			fmt.Fprintln(cmd.OutOrStdout(), string(js))
			return nil
		},
	}
	mf.register(cmd, "model: a GGUF file or a Hugging Face folder")
	sf.register(cmd)
	cmd.Flags().StringVar(&tokens, "tokens", "", "prompt token ids, comma-separated")
	cmd.Flags().StringVar(&out, "out", "", "write the last position's logits here (float32 little-endian)")
	cmd.Flags().IntVar(&greedy, "greedy", 0, "greedy tokens to generate and print as JSON")
	_ = cmd.MarkFlagRequired("tokens")
	return cmd
}
