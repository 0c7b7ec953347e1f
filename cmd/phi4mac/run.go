package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/demo"
	"github.com/phi4mac/phi4mac/tokenizer"
)

// modelFlags are the flags of every command that loads a model.
type modelFlags struct {
	model         string
	backend       string
	threads       int
	noMemoryCheck bool
}

func (f *modelFlags) register(cmd *cobra.Command, modelHelp string) {
	cmd.Flags().StringVar(&f.model, "model", "", modelHelp)
	addBackendFlag(cmd, &f.backend)
	cmd.Flags().IntVar(&f.threads, "threads", runtime.NumCPU(), "CPU threads")
	cmd.Flags().BoolVar(&f.noMemoryCheck, "no-memory-check", false, "load even if the model seems not to fit in available memory")
}

// newBackend returns the backend named by --backend.
func (f *modelFlags) newBackend(ctx context.Context) (engine.Backend, error) {
	return openBackend(ctx, f.backend, f.threads, nil)
}

// open loads --model, or the embedded demo model when --model is empty and
// allowDemo is set.
func (f *modelFlags) open(ctx context.Context, allowDemo bool) (*engine.Model, error) {
	b, err := f.newBackend(ctx)
	if err != nil {
		return nil, err
	}
	opts := engine.Options{Backend: b, SkipMemoryCheck: f.noMemoryCheck}
	if f.model == "" {
		if !allowDemo {
			b.Close()
			return nil, errors.New("--model is required (a GGUF file or a Hugging Face folder)")
		}
		fmt.Fprintf(os.Stderr, "phi4mac: no --model given; using the built-in demo model, %s, which only writes tiny children's stories\n", demo.Name)
		m, err := demo.Load(ctx, opts)
		if err != nil {
			b.Close()
			return nil, err
		}
		return m, nil
	}
	m, err := engine.Load(ctx, f.model, opts)
	if err != nil {
		b.Close()
		return nil, err
	}
	return m, nil
}

// sessionFlags configure a session.
type sessionFlags struct {
	ctx int
	kv  string
}

func (f *sessionFlags) register(cmd *cobra.Command) {
	cmd.Flags().IntVar(&f.ctx, "ctx", 0, "context length in tokens (0: the model's, at most 4096); for LongRoPE models > original context selects the long factors")
	cmd.Flags().StringVar(&f.kv, "kv", "f16", "KV cache type: f16 or f32")
}

func (f *sessionFlags) options() (engine.SessionOptions, error) {
	kv, err := engine.ParseKVType(f.kv)
	if err != nil {
		return engine.SessionOptions{}, err
	}
	return engine.SessionOptions{Ctx: f.ctx, KV: kv}, nil
}

func newRunCmd() *cobra.Command {
	var (
		mf        modelFlags
		sf        sessionFlags
		system    string
		raw       bool
		maxTokens int
		sampling  engine.Sampling
	)
	cmd := &cobra.Command{
		Use:   "run [--model PATH] PROMPT",
		Short: "Generate a reply to a prompt, streaming it to stdout",
		Long: `run sends PROMPT to the model (inside its chat template when it has one) and
streams the reply to stdout. Without --model it uses the small built-in demo model.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			m, err := mf.open(ctx, true)
			if err != nil {
				return err
			}
			defer m.Close()
			tok := m.Tokenizer()
			if tok == nil {
				return errors.New("the model has no tokenizer: run needs one to turn the prompt into tokens (use eval --tokens for raw ids)")
			}
			var ids []int
			if tok.HasChatTemplate() && !raw {
				var msgs []tokenizer.Message
				if system != "" {
					msgs = append(msgs, tokenizer.Message{Role: "system", Content: system})
				}
				msgs = append(msgs, tokenizer.Message{Role: "user", Content: args[0]})
				text, err := tok.ApplyChatTemplate(msgs, true)
				if err != nil {
					return err
				}
				ids = tok.Encode(text, tokenizer.EncodeOptions{AllowSpecial: true})
			} else {
				ids = tok.Encode(args[0], tokenizer.EncodeOptions{AddBOS: tok.WantsBOS()})
			}
			so, err := sf.options()
			if err != nil {
				return err
			}
			s, err := m.NewSession(so)
			if err != nil {
				return err
			}
			defer s.Close()
			out := cmd.OutOrStdout()
			if !tok.HasChatTemplate() || raw {
				fmt.Fprint(out, args[0])
			}
			res, err := s.Generate(ctx, engine.Request{Prompt: ids, MaxTokens: maxTokens, Sampling: sampling}, func(t engine.Token) error {
				_, err := fmt.Fprint(out, t.Text)
				return err
			})
			fmt.Fprintln(out)
			switch {
			case errors.Is(err, engine.ErrContextFull) && len(res.Tokens) > 0:
				// The reply filled the context: what was generated is the
				// answer, cut at the context length, and the user is told.
				fmt.Fprintf(cmd.ErrOrStderr(), "phi4mac: stopped after %d tokens: the %d-token context is full (raise it with --ctx)\n",
					len(res.Tokens), len(s.Tokens()))
			case err != nil:
				return err
			case res.Finish == engine.FinishLength:
				fmt.Fprintf(cmd.ErrOrStderr(), "phi4mac: stopped after --max-tokens %d tokens\n", maxTokens)
			}
			return nil
		},
	}
	mf.register(cmd, "model: a GGUF file or a Hugging Face folder (default: the built-in demo model)")
	sf.register(cmd)
	cmd.Flags().StringVar(&system, "system", "", "system message")
	cmd.Flags().BoolVar(&raw, "raw", false, "continue the prompt as plain text, without the chat template")
	cmd.Flags().IntVarP(&maxTokens, "max-tokens", "n", 512, "maximum tokens to generate (0: until the context is full)")
	cmd.Flags().Float64Var(&sampling.Temperature, "temperature", 0.7, "sampling temperature (0: greedy)")
	cmd.Flags().IntVar(&sampling.TopK, "top-k", 40, "keep the K most likely tokens (0: all)")
	cmd.Flags().Float64Var(&sampling.TopP, "top-p", 0.95, "nucleus sampling mass (1: off)")
	cmd.Flags().Float64Var(&sampling.MinP, "min-p", 0.05, "drop tokens less likely than this fraction of the best (0: off)")
	cmd.Flags().Float64Var(&sampling.RepeatPenalty, "repeat-penalty", 1.0, "penalty for recently seen tokens (1: off)")
	cmd.Flags().Float64Var(&sampling.PresencePenalty, "presence-penalty", 0, "subtracted from the logits of tokens already seen")
	cmd.Flags().Float64Var(&sampling.FrequencyPenalty, "frequency-penalty", 0, "subtracted per occurrence of tokens already seen")
	cmd.Flags().Uint64Var(&sampling.Seed, "seed", 0, "random seed for reproducible sampling (0: random)")
	return cmd
}
