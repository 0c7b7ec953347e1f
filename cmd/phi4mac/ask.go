package main

import (
	"errors"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/phi4mac/phi4mac/app/chat"
)

// maxAskInput caps what `ask` reads from stdin.
const maxAskInput = 4 << 20

func newAskCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ask QUESTION...",
		Short: "Answer one question, streaming plain text (for scripts and Shortcuts)",
		Long: `ask answers one question and exits. Text piped on stdin is appended to
the question, so "pbpaste | phi4mac ask summarise" summarises the clipboard.
The answer streams to stdout as plain text; --json prints one JSON object
{model, answer, finish_reason, prompt_tokens, completion_tokens, seconds}.

In a macOS Shortcut, use a "Run Shell Script" action with
  /path/to/phi4mac ask "$@"   (input: "as arguments")
or pass the Shortcut input on stdin; or open phi4mac://ask?q=... links.

Exit status: 0 answered; 1 other error; 2 bad usage or settings; 3 model not
found or not loadable; 4 input too long for the context (or over 4 MiB of
stdin); 130 interrupted (Ctrl-C).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			input := ""
			if !term.IsTerminal(int(os.Stdin.Fd())) {
				if input, err = chat.ReadInput(cmd.InOrStdin(), maxAskInput); err != nil {
					return exitError{code: chat.ExitCode(err), err: err}
				}
			}
			question := strings.Join(args, " ")
			if strings.TrimSpace(question+input) == "" {
				return exitError{code: chat.ExitUsage, err: errors.New("no question: pass it as arguments or on stdin")}
			}
			m, err := newLoader(s, backendFlag(cmd), nil).Load(cmd.Context(), s.Model)
			if err != nil {
				return exitError{code: chat.ExitNoModel, err: err}
			}
			defer m.Close()
			noteDemo(cmd.ErrOrStderr(), m)
			_, err = chat.Ask(cmd.Context(), m, question, chat.AskOptions{
				SystemPrompt: s.SystemPrompt, Params: sampling(s), Input: input, JSON: asJSON,
				Terminal: term.IsTerminal(int(os.Stdout.Fd())),
			}, cmd.OutOrStdout())
			if err != nil {
				return exitError{code: chat.ExitCode(err), err: err}
			}
			return nil
		},
	}
	addSettingsFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object instead of streaming text")
	return cmd
}
