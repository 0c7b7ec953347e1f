// Package chat is phi4mac's terminal front end: Ask answers one question
// (the `phi4mac ask` command and macOS Shortcuts), Run is the interactive
// chat (`phi4mac chat`) with /commands, history and Markdown output.
package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/phi4mac/phi4mac/app/llm"
)

// Exit codes of `phi4mac ask` (and `chat`), for scripts.
const (
	ExitOK          = 0   // answered
	ExitError       = 1   // any other failure
	ExitUsage       = 2   // bad arguments or settings
	ExitNoModel     = 3   // the model cannot be found or loaded
	ExitTooLong     = 4   // the question (with stdin) does not fit the context or input limit
	ExitInterrupted = 130 // stopped by Ctrl-C
)

// ExitCode maps an error from Ask or Run to an exit code.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, llm.ErrUnknownModel):
		return ExitNoModel
	case errors.Is(err, llm.ErrContextFull), errors.Is(err, ErrInputTooLarge):
		return ExitTooLong
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.Is(err, ErrUsage):
		return ExitUsage
	default:
		return ExitError
	}
}

// Errors callers branch on.
var (
	// ErrInputTooLarge: stdin exceeded the input limit.
	ErrInputTooLarge = errors.New("input is too large")
	// ErrUsage: the question is missing or malformed.
	ErrUsage = errors.New("usage")
)

// AskOptions configure Ask.
type AskOptions struct {
	// SystemPrompt is sent first when non-empty.
	SystemPrompt string
	// Params are the sampling parameters.
	Params llm.Params
	// Input is extra text (usually stdin), appended after the question.
	Input string
	// JSON prints one JSON object at the end instead of streaming text.
	JSON bool
	// Terminal: out is a terminal, so control characters and escape
	// sequences in the answer are dropped (scripts get the text as is).
	Terminal bool
}

// AskResult is what --json prints.
type AskResult struct {
	Model            string  `json:"model"`
	Answer           string  `json:"answer"`
	FinishReason     string  `json:"finish_reason"`
	PromptTokens     int     `json:"prompt_tokens"`
	CompletionTokens int     `json:"completion_tokens"`
	Seconds          float64 `json:"seconds"`
}

// Messages builds the conversation Ask sends: the system prompt, then one
// user message holding the question and, after a blank line, the input.
func Messages(system, question, input string) []llm.Message {
	var msgs []llm.Message
	if system != "" {
		msgs = append(msgs, llm.Message{Role: "system", Content: system})
	}
	content := strings.TrimSpace(question)
	if in := strings.TrimSpace(input); in != "" {
		if content != "" {
			content += "\n\n"
		}
		content += in
	}
	return append(msgs, llm.Message{Role: "user", Content: content})
}

// Ask answers question with m, streaming the answer to out (or printing
// one JSON object with JSON set). The streamed answer ends with a newline.
func Ask(ctx context.Context, m llm.Model, question string, opts AskOptions, out io.Writer) (AskResult, error) {
	msgs := Messages(opts.SystemPrompt, question, opts.Input)
	if msgs[len(msgs)-1].Content == "" {
		return AskResult{}, fmt.Errorf("%w: no question given (pass it as an argument or on stdin)", ErrUsage)
	}
	var answer strings.Builder
	start := time.Now()
	wrote := false
	res, err := m.Generate(ctx, llm.Request{Messages: msgs, Params: opts.Params}, func(s string) error {
		answer.WriteString(s)
		if opts.JSON {
			return nil
		}
		if opts.Terminal {
			s = printable(s)
		}
		if !wrote {
			s = strings.TrimLeft(s, " \n")
			if s == "" {
				return nil
			}
			wrote = true
		}
		_, err := io.WriteString(out, s)
		return err
	})
	r := AskResult{
		Model: m.Info().Name, Answer: strings.TrimSpace(answer.String()), FinishReason: res.FinishReason,
		PromptTokens: res.PromptTokens, CompletionTokens: res.CompletionTokens, Seconds: time.Since(start).Seconds(),
	}
	if err != nil {
		if wrote {
			fmt.Fprintln(out)
		}
		return r, err
	}
	if opts.JSON {
		enc := json.NewEncoder(out)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return r, enc.Encode(r)
	}
	_, err = fmt.Fprintln(out)
	return r, err
}

// ReadInput reads all of r up to limit bytes; more is ErrInputTooLarge.
func ReadInput(r io.Reader, limit int64) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return "", fmt.Errorf("read stdin: %w", err)
	}
	if int64(len(b)) > limit {
		return "", fmt.Errorf("%w: stdin holds more than %d bytes", ErrInputTooLarge, limit)
	}
	return string(b), nil
}
