package chat

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/phi4mac/phi4mac/app/llm"
)

// Options configure Run.
type Options struct {
	// Model answers; the caller owns it (Run closes only models it opened
	// through /model).
	Model llm.Model
	// Open loads another model for /model NAME; nil disables switching.
	Open func(ctx context.Context, name string) (llm.Model, error)
	// Params are the sampling parameters (/temperature changes them).
	Params llm.Params
	// SystemPrompt starts every conversation (/system changes it).
	SystemPrompt string
	// In is read line by line when Lines is nil.
	In io.Reader
	// Lines, when set, reads input lines instead of In (the terminal line
	// editor). It returns io.EOF to quit and ErrLineAborted for Ctrl-C.
	Lines LineReader
	// Out receives answers and command output; Err the banner and notes.
	Out, Err io.Writer
	// Render, when set, renders the answer as Markdown block by block;
	// nil streams raw text.
	Render func(markdown string) (string, error)
	// Interrupts stops the answer being generated (Ctrl-C) without quitting.
	Interrupts <-chan struct{}
	// FirstMessage, when set, is sent as the first question before any
	// input is read. It is always a question, never a /command (it comes
	// from links such as phi4mac://chat?q=..., which any web page can open).
	FirstMessage string
	// SaveDir is where /save writes when given no path (default ".").
	SaveDir string
	// Now is the clock (for /save file names); nil means time.Now.
	Now func() time.Time
}

// LineReader reads one line of input, e.g. with line editing and history.
type LineReader interface {
	ReadLine(prompt string) (string, error)
}

// ErrLineAborted is returned by a LineReader when the user presses Ctrl-C
// at the prompt.
var ErrLineAborted = errors.New("line aborted")

type scannerLines struct{ sc *bufio.Scanner }

func (s scannerLines) ReadLine(string) (string, error) {
	if s.sc.Scan() {
		return s.sc.Text(), nil
	}
	if err := s.sc.Err(); err != nil {
		return "", err
	}
	return "", io.EOF
}

// session is the state of one chat.
type session struct {
	opts    Options
	model   llm.Model
	opened  llm.Model // opened by /model, closed by Run
	system  string
	params  llm.Params
	history []llm.Message
}

const helpText = `Commands:
  /new               start a new conversation
  /system [TEXT]     show or set the system prompt ("/system off" clears it)
  /save [FILE]       save the conversation as Markdown
  /model [NAME]      show or switch the model
  /temperature [T]   show or set the temperature (0 = greedy, up to 2)
  /help              this list
  /quit              leave (or Ctrl-D)
Ctrl-C stops an answer without leaving.
`

// Run chats until the input ends, /quit, or ctx is done.
func Run(ctx context.Context, opts Options) error {
	if opts.Model == nil {
		return errors.New("chat: no model")
	}
	if opts.Err == nil {
		opts.Err = io.Discard
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	lines := opts.Lines
	if lines == nil {
		sc := bufio.NewScanner(opts.In)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		lines = scannerLines{sc}
	}
	s := &session{opts: opts, model: opts.Model, system: opts.SystemPrompt, params: opts.Params}
	defer func() {
		if s.opened != nil {
			s.opened.Close()
		}
	}()
	fmt.Fprintf(opts.Err, "phi4mac chat with %s. Type /help for commands, Ctrl-D to quit.\n", s.model.Info().Name)
	if first := strings.TrimSpace(opts.FirstMessage); first != "" {
		if err := s.answer(ctx, first); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintln(opts.Out, "error:", err)
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, err := lines.ReadLine(">>> ")
		if errors.Is(err, ErrLineAborted) {
			fmt.Fprintln(opts.Err, "(Ctrl-D or /quit to leave)")
			continue
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read input: %w", err)
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "/") {
			quit, err := s.command(ctx, line)
			if err != nil {
				fmt.Fprintln(opts.Out, "error:", err)
			}
			if quit {
				return nil
			}
			continue
		}
		if err := s.answer(ctx, line); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintln(opts.Out, "error:", err)
		}
	}
}

func (s *session) messages() []llm.Message {
	var msgs []llm.Message
	if s.system != "" {
		msgs = append(msgs, llm.Message{Role: "system", Content: s.system})
	}
	return append(msgs, s.history...)
}

// answer sends the user's line and streams the reply.
func (s *session) answer(ctx context.Context, line string) error {
	s.history = append(s.history, llm.Message{Role: "user", Content: line})
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	stopped := make(chan struct{}, 1)
	if s.opts.Interrupts != nil {
		go func() {
			select {
			case <-s.opts.Interrupts:
				stopped <- struct{}{}
				cancel()
			case <-done:
			}
		}()
	}
	out := newAnswerWriter(s.opts.Out, s.opts.Render)
	var text strings.Builder
	_, err := s.model.Generate(actx, llm.Request{Messages: s.messages(), Params: s.params}, func(p string) error {
		p = printable(p)
		if text.Len() == 0 {
			p = strings.TrimLeft(p, " \n")
		}
		text.WriteString(p)
		return out.write(p)
	})
	ferr := out.flush()
	fmt.Fprintln(s.opts.Out)
	select {
	case <-stopped:
		fmt.Fprintln(s.opts.Err, "[stopped]")
		err = nil
	default:
	}
	if err != nil {
		s.history = s.history[:len(s.history)-1] // the question got no answer
		if errors.Is(err, llm.ErrContextFull) {
			return fmt.Errorf("%w: the conversation no longer fits the model's context; /new starts a fresh one (or raise --ctx)", err)
		}
		return err
	}
	s.history = append(s.history, llm.Message{Role: "assistant", Content: strings.TrimSpace(text.String())})
	return ferr
}

// command runs a /command; it reports whether to quit.
func (s *session) command(ctx context.Context, line string) (bool, error) {
	name, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	out := s.opts.Out
	switch name {
	case "/quit", "/exit", "/bye":
		return true, nil
	case "/help", "/?":
		fmt.Fprint(out, helpText)
	case "/new", "/clear":
		s.history = nil
		fmt.Fprintln(out, "New conversation.")
	case "/system":
		switch arg {
		case "":
			if s.system == "" {
				fmt.Fprintln(out, "No system prompt.")
			} else {
				fmt.Fprintf(out, "System prompt: %s\n", s.system)
			}
		case "off":
			s.system = ""
			fmt.Fprintln(out, "System prompt cleared.")
		default:
			s.system = arg
			fmt.Fprintln(out, "System prompt set.")
		}
	case "/temperature", "/temp":
		if arg == "" {
			fmt.Fprintf(out, "Temperature: %g\n", s.params.Temperature)
			return false, nil
		}
		t, err := strconv.ParseFloat(arg, 64)
		if err != nil || t < 0 || t > 2 {
			return false, fmt.Errorf("temperature %q: use a number from 0 (greedy) to 2", arg)
		}
		s.params.Temperature = t
		fmt.Fprintf(out, "Temperature: %g\n", t)
	case "/model":
		if arg == "" {
			fmt.Fprintf(out, "Model: %s\n", s.model.Info().Name)
			return false, nil
		}
		if s.opts.Open == nil {
			return false, errors.New("switching models is not available here")
		}
		m, err := s.opts.Open(ctx, arg)
		if err != nil {
			return false, err
		}
		if s.opened != nil {
			s.opened.Close()
		}
		s.model, s.opened = m, m
		fmt.Fprintf(out, "Model: %s\n", m.Info().Name)
	case "/save":
		path, err := s.save(arg)
		if err != nil {
			return false, err
		}
		fmt.Fprintf(out, "Saved to %s\n", path)
	default:
		return false, fmt.Errorf("unknown command %s (try /help)", name)
	}
	return false, nil
}

// save writes the conversation as Markdown; it never overwrites a file.
func (s *session) save(path string) (string, error) {
	if len(s.history) == 0 {
		return "", errors.New("nothing to save yet")
	}
	if path == "" {
		dir := s.opts.SaveDir
		if dir == "" {
			dir = "."
		}
		path = filepath.Join(dir, "phi4mac-chat-"+s.opts.Now().Format("20060102-150405")+".md")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Chat with %s\n\n", s.model.Info().Name)
	if s.system != "" {
		fmt.Fprintf(&b, "**System:** %s\n\n", s.system)
	}
	for _, m := range s.history {
		who := "You"
		if m.Role == "assistant" {
			who = "Assistant"
		}
		fmt.Fprintf(&b, "**%s:**\n\n%s\n\n", who, m.Content)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", fmt.Errorf("save: %w", err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return "", fmt.Errorf("save %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("save %s: %w", path, err)
	}
	return path, nil
}
