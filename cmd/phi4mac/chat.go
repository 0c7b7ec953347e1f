package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/phi4mac/phi4mac/app/chat"
	"github.com/phi4mac/phi4mac/app/llm"
)

func newChatCmd() *cobra.Command {
	var plain bool
	cmd := &cobra.Command{
		Use:   "chat",
		Short: "Chat in the terminal (works with no model downloaded: uses the demo model)",
		Long: `chat is an interactive conversation with a local model: line editing and
history, answers streamed and rendered as Markdown, and /commands
(/new, /system, /save, /model, /temperature, /help, /quit). Ctrl-C stops
the current answer; Ctrl-D quits.

With stdin not a terminal it reads one message per line and prints plain
text, so it can be scripted. With no model configured or found, it uses
the small built-in demo model and says so.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			loader := newLoader(s, backendFlag(cmd), nil)
			m, err := loader.Load(cmd.Context(), s.Model)
			if err != nil {
				return exitError{code: chat.ExitNoModel, err: err}
			}
			defer m.Close()
			noteDemo(cmd.ErrOrStderr(), m)

			// Ctrl-C stops the answer being written; at an idle (piped) prompt it quits.
			ctx, quit := context.WithCancel(cmd.Context())
			defer quit()
			signal.Reset(os.Interrupt)
			sigc := make(chan os.Signal, 1)
			signal.Notify(sigc, os.Interrupt)
			defer signal.Stop(sigc)
			intr := make(chan struct{})
			go func() {
				for {
					select {
					case <-sigc:
						select {
						case intr <- struct{}{}:
						default:
							quit()
						}
					case <-ctx.Done():
						return
					}
				}
			}()

			opts := chat.Options{
				Model: m, Params: sampling(s), SystemPrompt: s.SystemPrompt,
				In: cmd.InOrStdin(), Out: cmd.OutOrStdout(), Err: cmd.ErrOrStderr(), Interrupts: intr,
				Open: func(ctx context.Context, name string) (llm.Model, error) { return loader.Load(ctx, name) },
			}
			if term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd())) {
				hist := ""
				if dir, err := os.UserConfigDir(); err == nil {
					hist = filepath.Join(dir, "phi4mac", "chat_history")
				}
				t := chat.NewTerminal(hist)
				defer t.Close()
				opts.Lines = t
				if !plain {
					w, _, _ := term.GetSize(int(os.Stdout.Fd()))
					if r, err := chat.MarkdownRenderer(w); err == nil {
						opts.Render = r
					}
				}
			}
			err = chat.Run(ctx, opts)
			if err != nil && ctx.Err() != nil && cmd.Context().Err() == nil {
				return nil // Ctrl-C at the prompt: a normal way out
			}
			if err != nil {
				return exitError{code: chat.ExitCode(err), err: err}
			}
			return nil
		},
	}
	addSettingsFlags(cmd)
	cmd.Flags().BoolVar(&plain, "plain", false, "print answers as plain text, not rendered Markdown")
	return cmd
}
