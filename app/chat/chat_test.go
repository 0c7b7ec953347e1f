package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phi4mac/phi4mac/app/llm"
	"github.com/phi4mac/phi4mac/app/llm/llmtest"
)

func fakeModel(t *testing.T, l *llmtest.Loader) llm.Model {
	t.Helper()
	if l.Models == nil {
		l.Models = []string{"fake"}
	}
	m, err := l.Load(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestAsk(t *testing.T) {
	l := &llmtest.Loader{}
	m := fakeModel(t, l)
	var out bytes.Buffer
	res, err := Ask(context.Background(), m, "summarise", AskOptions{Input: "  the text\n", SystemPrompt: "sys", Params: llm.Params{MaxTokens: 50}}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != "echo: summarise the text\n" {
		t.Errorf("out = %q", out.String())
	}
	req := l.Requests()[0]
	if len(req.Messages) != 2 || req.Messages[1].Content != "summarise\n\nthe text" || req.Params.MaxTokens != 50 {
		t.Errorf("request = %+v", req)
	}
	if res.CompletionTokens != 4 || res.FinishReason != "stop" {
		t.Errorf("result = %+v", res)
	}

	out.Reset()
	if _, err := Ask(context.Background(), m, "q", AskOptions{JSON: true}, &out); err != nil {
		t.Fatal(err)
	}
	var got AskResult
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got.Answer != "echo: q" || got.Model != "fake" || got.CompletionTokens != 2 {
		t.Errorf("json = %s (%v)", out.String(), err)
	}

	_, err = Ask(context.Background(), m, "  ", AskOptions{}, &out)
	if !errors.Is(err, ErrUsage) || ExitCode(err) != ExitUsage {
		t.Errorf("empty question: %v", err)
	}
}

func TestExitCodes(t *testing.T) {
	l := &llmtest.Loader{ContextLength: 3}
	m := fakeModel(t, l)
	_, err := Ask(context.Background(), m, "far too many words here", AskOptions{}, &bytes.Buffer{})
	if ExitCode(err) != ExitTooLong {
		t.Errorf("context full: %v → %d", err, ExitCode(err))
	}
	_, err = l.Load(context.Background(), "missing")
	if ExitCode(err) != ExitNoModel {
		t.Errorf("unknown model → %d", ExitCode(err))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Ask(ctx, fakeModel(t, &llmtest.Loader{}), "q", AskOptions{}, &bytes.Buffer{})
	if ExitCode(err) != ExitInterrupted {
		t.Errorf("cancelled: %v → %d", err, ExitCode(err))
	}
	if _, err := ReadInput(strings.NewReader("12345"), 4); ExitCode(err) != ExitTooLong {
		t.Errorf("big stdin: %v", err)
	}
	if s, err := ReadInput(strings.NewReader("1234"), 4); err != nil || s != "1234" {
		t.Errorf("stdin at the limit: %q %v", s, err)
	}
}

func TestRunPiped(t *testing.T) {
	l := &llmtest.Loader{Models: []string{"fake", "other"}}
	m := fakeModel(t, l)
	dir := t.TempDir()
	save := filepath.Join(dir, "chat.md")
	in := strings.Join([]string{
		"hello there", "/system be brief", "/system", "/temperature 0.5", "/temperature 9", "second question",
		"/save " + save, "/save " + save, "/new", "/model", "/model other", "/model nope", "after switch", "/help", "/bogus", "/quit", "never read",
	}, "\n")
	var out, errOut bytes.Buffer
	err := Run(context.Background(), Options{
		Model: m, In: strings.NewReader(in), Out: &out, Err: &errOut, SystemPrompt: "initial",
		Open: func(ctx context.Context, name string) (llm.Model, error) { return l.Load(ctx, name) },
	})
	if err != nil {
		t.Fatal(err)
	}
	o := out.String()
	for _, want := range []string{
		"echo: hello there\n", "System prompt set.", "System prompt: be brief", "Temperature: 0.5",
		"error: temperature \"9\"", "echo: second question\n", "Saved to " + save, "error: save:", "New conversation.",
		"Model: fake", "Model: other", "error: load \"nope\"", "echo: after switch", "/temperature [T]", "error: unknown command /bogus",
	} {
		if !strings.Contains(o, want) {
			t.Errorf("output lacks %q:\n%s", want, o)
		}
	}
	if strings.Contains(o, "never read") {
		t.Error("input after /quit was read")
	}
	reqs := l.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests", len(reqs))
	}
	if reqs[0].Messages[0].Content != "initial" {
		t.Errorf("first request: %+v", reqs[0].Messages)
	}
	// The second turn carries the first exchange and the new system prompt.
	want := []llm.Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: "hello there"}, {Role: "assistant", Content: "echo: hello there"}, {Role: "user", Content: "second question"}}
	if got := reqs[1].Messages; len(got) != 4 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		t.Errorf("second request messages = %+v", got)
	}
	if reqs[1].Params.Temperature != 0.5 {
		t.Errorf("temperature not applied: %+v", reqs[1].Params)
	}
	if len(reqs[2].Messages) != 2 { // after /new: system + question
		t.Errorf("after /new: %+v", reqs[2].Messages)
	}
	saved, err := os.ReadFile(save)
	if err != nil || !strings.Contains(string(saved), "**You:**\n\nhello there") || !strings.Contains(string(saved), "**Assistant:**\n\necho: second question") {
		t.Errorf("saved transcript: %s (%v)", saved, err)
	}
	if l.Closes() != 1 { // "other" is closed by Run; the caller's model stays open
		t.Errorf("closes = %d", l.Closes())
	}
}

func TestInterruptStopsAnswerOnly(t *testing.T) {
	long := make([]string, 200)
	for i := range long {
		long[i] = "w"
	}
	l := &llmtest.Loader{Suffix: long, TokenDelay: 5 * time.Millisecond}
	m := fakeModel(t, l)
	intr := make(chan struct{}, 1)
	l.OnGenerate = func(ctx context.Context, req llm.Request) {
		if len(l.Requests()) == 1 {
			time.AfterFunc(30*time.Millisecond, func() { intr <- struct{}{} })
		}
	}
	var out, errOut bytes.Buffer
	start := time.Now()
	err := Run(context.Background(), Options{Model: m, In: strings.NewReader("first\nsecond\n"), Out: &out, Err: &errOut, Interrupts: intr})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut.String(), "[stopped]") {
		t.Errorf("no stop note: %q", errOut.String())
	}
	if d := time.Since(start); d > 1500*time.Millisecond { // a full answer alone takes > 1 s
		t.Errorf("took %v: the first answer was not stopped", d)
	}
	if strings.Count(out.String(), "echo: second") != 1 {
		t.Errorf("second question not answered: %q", out.String())
	}
	reqs := l.Requests()
	if len(reqs) != 2 || len(reqs[1].Messages) != 3 || !strings.HasPrefix(reqs[1].Messages[1].Content, "echo: first w") {
		t.Errorf("the stopped answer should stay in the history: %+v", reqs[len(reqs)-1].Messages)
	}
}

func TestBlockEnd(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"no newline yet", 0},
		{"one line\n", 0},
		{"para one\n\nnext", len("para one\n\n")},
		{"a\n\nb\n\nc", len("a\n\nb\n\n")},
		{"```go\nx := 1\n\ny := 2\n", 0},
		{"```go\nx := 1\n\ny := 2\n```\nafter", len("```go\nx := 1\n\ny := 2\n```\n")},
		{"\n\nleading", 0},
	}
	for _, tt := range tests {
		if got := blockEnd(tt.in); got != tt.want {
			t.Errorf("blockEnd(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestMarkdownAnswer(t *testing.T) {
	render, err := MarkdownRenderer(60)
	if err != nil {
		t.Fatal(err)
	}
	pieces := []string{"# Ti", "tle\n", "\nSome **bo", "ld** text.\n\n", "```\ncode\n```\n", "tail"}
	l := &llmtest.Loader{Respond: func(llm.Request) []string { return pieces }}
	var out bytes.Buffer
	if err := Run(context.Background(), Options{Model: fakeModel(t, l), In: strings.NewReader("q\n"), Out: &out, Render: render}); err != nil {
		t.Fatal(err)
	}
	o := out.String()
	if strings.Contains(o, "**bold**") || !strings.Contains(o, "bold") || !strings.Contains(o, "Title") || !strings.Contains(o, "\x1b[") || !strings.Contains(o, "tail") {
		t.Errorf("not rendered as Markdown: %q", o)
	}
}

func TestRunContextFullHint(t *testing.T) {
	l := &llmtest.Loader{ContextLength: 12}
	var out bytes.Buffer
	in := "one two three\nfour five six seven eight nine ten\n/new\nshort\n"
	if err := Run(context.Background(), Options{Model: fakeModel(t, l), In: strings.NewReader(in), Out: &out}); err != nil {
		t.Fatal(err)
	}
	o := out.String()
	if !strings.Contains(o, "/new starts a fresh one") || !strings.Contains(o, "echo: short") {
		t.Errorf("output:\n%s", o)
	}
}

// A first message handed over by a link (phi4mac://chat?q=...) is a
// question, never a /command: a web page must not be able to save files or
// switch models through it, even with newlines in the text.
func TestFirstMessageIsNeverACommand(t *testing.T) {
	l := &llmtest.Loader{}
	m := fakeModel(t, l)
	save := filepath.Join(t.TempDir(), "planted.md")
	var out bytes.Buffer
	err := Run(context.Background(), Options{
		Model: m, In: strings.NewReader("/model\n"), Out: &out,
		FirstMessage: "hi\n/save " + save,
		Open:         func(ctx context.Context, name string) (llm.Model, error) { return l.Load(ctx, name) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(save); err == nil {
		t.Fatalf("the link's text ran /save and wrote %s", save)
	}
	reqs := l.Requests()
	if len(reqs) != 1 || reqs[0].Messages[len(reqs[0].Messages)-1].Content != "hi\n/save "+save {
		t.Fatalf("first message not sent as one question: %+v", reqs)
	}
	if !strings.Contains(out.String(), "Model: fake") {
		t.Errorf("input after the first message was not read: %s", out.String())
	}
}

// Model text is untrusted (a pasted web page can steer it): escape
// sequences in it must not reach the terminal, where they could set the
// clipboard (OSC 52), retitle the window or rewrite what was shown.
func TestAnswerEscapeSequencesAreNotPrinted(t *testing.T) {
	evil := []string{"Hi", " \x1b]52;c;ZWNobyBwd25lZA==\x07", "there\x1b[2J", "\r\x08x", "\ttab\n", "\x9b31m", "ok"}
	for _, render := range []bool{false, true} {
		l := &llmtest.Loader{Respond: func(llm.Request) []string { return evil }}
		m := fakeModel(t, l)
		var out bytes.Buffer
		opts := Options{Model: m, In: strings.NewReader("hello\n"), Out: &out}
		if render {
			opts.Render = func(s string) (string, error) { return s, nil }
		}
		if err := Run(context.Background(), opts); err != nil {
			t.Fatal(err)
		}
		o := out.String()
		if strings.ContainsAny(o, "\x1b\x07\x08\r\u009b") {
			t.Errorf("render=%v: control characters reached the terminal: %q", render, o)
		}
		if !strings.Contains(o, "Hi") || !strings.Contains(o, "\ttab\n") || !strings.Contains(o, "ok") {
			t.Errorf("render=%v: text lost: %q", render, o)
		}
	}
}

func TestAskTerminalDropsEscapes(t *testing.T) {
	l := &llmtest.Loader{Respond: func(llm.Request) []string { return []string{"a\x1b]0;title\x07", "b\x1b[31m", "c"} }}
	m := fakeModel(t, l)
	for _, terminal := range []bool{true, false} {
		var out bytes.Buffer
		if _, err := Ask(context.Background(), m, "q", AskOptions{Terminal: terminal}, &out); err != nil {
			t.Fatal(err)
		}
		if got := strings.ContainsRune(out.String(), '\x1b'); got == terminal {
			t.Errorf("terminal=%v: output %q", terminal, out.String())
		}
	}
}
