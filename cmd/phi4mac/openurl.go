package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/phi4mac/phi4mac/app/chat"
	"github.com/phi4mac/phi4mac/app/config"
	"github.com/phi4mac/phi4mac/app/llm"
	"github.com/phi4mac/phi4mac/app/urlscheme"
)

func newOpenURLCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "open-url URL",
		Short: "Handle a phi4mac:// link (phi4mac://ask?q=..., phi4mac://chat)",
		Long: `open-url does what a phi4mac:// link asks, as the macOS app does when a
link is opened: phi4mac://ask?q=QUESTION prints the answer;
phi4mac://chat[?q=FIRST] starts a chat (reading further lines from stdin).
A link may name a model with &model=NAME (a name from "phi4mac models",
never a file path).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			h := &cliLinkHandler{s: s, in: cmd.InOrStdin(), out: cmd.OutOrStdout(), errw: cmd.ErrOrStderr()}
			if err := urlscheme.Route(cmd.Context(), args[0], h); err != nil {
				code := chat.ExitCode(err)
				if errors.Is(err, urlscheme.ErrBadURL) {
					code = chat.ExitUsage
				}
				return exitError{code: code, err: err}
			}
			return nil
		},
	}
	cmd.Flags().String("config", "", "settings file")
	return cmd
}

// cliLinkHandler carries out phi4mac:// links in the terminal.
type cliLinkHandler struct {
	s         config.Settings
	in        io.Reader
	out, errw io.Writer
}

// load opens the link's model, which must be one the catalogue lists.
func (h *cliLinkHandler) load(ctx context.Context, name string) (llm.Model, error) {
	loader := newLoader(h.s, "auto", nil)
	if name != "" {
		list, err := loader.List(ctx)
		if err != nil {
			return nil, err
		}
		found := false
		for _, m := range list {
			if m.Name == name || strings.TrimSuffix(m.Name, ":latest") == name {
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: %q (links may name only models listed by `phi4mac models`)", llm.ErrUnknownModel, name)
		}
	} else {
		name = h.s.Model
	}
	m, err := loader.Load(ctx, name)
	if err != nil {
		return nil, err
	}
	noteDemo(h.errw, m)
	return m, nil
}

func (h *cliLinkHandler) Ask(ctx context.Context, a urlscheme.Action) error {
	m, err := h.load(ctx, a.Model)
	if err != nil {
		return err
	}
	defer m.Close()
	_, err = chat.Ask(ctx, m, a.Question, chat.AskOptions{SystemPrompt: h.s.SystemPrompt, Params: sampling(h.s)}, h.out)
	return err
}

func (h *cliLinkHandler) Chat(ctx context.Context, a urlscheme.Action) error {
	m, err := h.load(ctx, a.Model)
	if err != nil {
		return err
	}
	defer m.Close()
	return chat.Run(ctx, chat.Options{Model: m, Params: sampling(h.s), SystemPrompt: h.s.SystemPrompt,
		FirstMessage: a.Question, In: h.in, Out: h.out, Err: h.errw})
}
