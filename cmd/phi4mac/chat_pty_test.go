//go:build linux || darwin

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// TestPTYHelper is not a test: run with PHI4MAC_PTY_HELPER set it becomes
// the phi4mac program (so a pseudo-terminal test needs no separate build).
func TestPTYHelper(t *testing.T) {
	args := os.Getenv("PHI4MAC_PTY_HELPER")
	if args == "" {
		t.Skip("helper process only")
	}
	root := newRootCmd()
	root.SetArgs(strings.Fields(args))
	if err := root.ExecuteContext(context.Background()); err != nil {
		os.Stderr.WriteString("phi4mac: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Exit(0)
}

// ptyOutput collects what the program writes to the terminal.
type ptyOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *ptyOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *ptyOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// waitCount waits until s has appeared n times in the output.
func (o *ptyOutput) waitCount(t *testing.T, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(o.String(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %q ×%d; terminal shows:\n%q", s, n, o.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ptyChat is phi4mac run as a child process in a pseudo-terminal.
type ptyChat struct {
	cmd *exec.Cmd
	f   *os.File
	out ptyOutput
}

// startPTY runs phi4mac with args (space-separated) and the extra
// environment in a 40×100 pseudo-terminal, collecting what it writes.
func startPTY(t *testing.T, args string, env ...string) *ptyChat {
	t.Helper()
	c := &ptyChat{cmd: exec.Command(os.Args[0], "-test.run=^TestPTYHelper$")}
	c.cmd.Env = append(append(os.Environ(), "PHI4MAC_PTY_HELPER="+args), env...)
	f, err := pty.StartWithSize(c.cmd, &pty.Winsize{Rows: 40, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	c.f = f
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := f.Read(b)
			c.out.Write(b[:n])
			if err != nil {
				return
			}
		}
	}()
	return c
}

// send types s.
func (c *ptyChat) send(t *testing.T, s string) {
	t.Helper()
	if _, err := c.f.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

// waitExit waits up to 20 s for the program to exit successfully, and
// kills it if it does not; how says what should have made it quit.
func (c *ptyChat) waitExit(t *testing.T, how string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v\n%q", err, c.out.String())
		}
	case <-time.After(20 * time.Second):
		c.cmd.Process.Kill()
		t.Fatalf("chat did not quit on %s:\n%q", how, c.out.String())
	}
}

// TestChatInTerminal drives `phi4mac chat` through a pseudo-terminal: the
// line editor (backspace), streamed Markdown answers from the demo model,
// /commands, Ctrl-C at the prompt (a hint, not an exit), Ctrl-D to quit,
// and the saved history.
func TestChatInTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a subprocess")
	}
	dir := isolate(t)
	c := startPTY(t, "chat --temperature 0 --max-tokens 24", "TERM=xterm-256color")
	out, send := &c.out, func(s string) { c.send(t, s) }
	out.waitCount(t, ">>> ", 1)
	if !strings.Contains(out.String(), "demo model") {
		t.Errorf("no demo note: %q", out.String())
	}
	send("Once upon a tiem\x7f\x7fme\r") // two backspaces fix the typo
	out.waitCount(t, ">>> ", 2)
	answer := out.String()
	if !strings.Contains(answer, "Once upon a time") || strings.Contains(answer, "tiemme") {
		t.Errorf("line editing: %q", answer)
	}
	send("/temperature\r")
	out.waitCount(t, "Temperature: 0", 1)
	send("\x03") // Ctrl-C at the prompt: a hint, the chat goes on
	out.waitCount(t, "Ctrl-D or /quit to leave", 1)
	send("/model\r")
	out.waitCount(t, "Model: demo", 1)
	send("\x04") // Ctrl-D quits
	c.waitExit(t, "Ctrl-D")
	// The demo's words arrive rendered (ANSI styling from the Markdown renderer).
	if !strings.Contains(answer, "\x1b[") {
		t.Errorf("answer not rendered: %q", answer)
	}
	hist, err := os.ReadFile(filepath.Join(dir, "config", "phi4mac", "chat_history"))
	if err != nil || !strings.Contains(string(hist), "Once upon a time\n") || !strings.Contains(string(hist), "/model") {
		t.Errorf("history: %q %v", hist, err)
	}
}

// TestChatCtrlCStopsAnswer: in a terminal, Ctrl-C during an answer stops
// that answer (the tiny model would need over a minute for it) and the chat
// goes on.
func TestChatCtrlCStopsAnswer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a subprocess")
	}
	isolate(t)
	model := testrefs.Path(t, "models", "tiny", "phi3-random-tiny-Q4_K_M.gguf")
	c := startPTY(t, "chat --plain --temperature 1 --max-tokens 400 --model "+model)
	out := &c.out
	out.waitCount(t, ">>> ", 1)
	c.send(t, "hello\r")
	time.Sleep(1500 * time.Millisecond) // the answer is streaming
	start := time.Now()
	c.send(t, "\x03")
	out.waitCount(t, "[stopped]", 1)
	out.waitCount(t, ">>> ", 2)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("stopping took %v", d)
	}
	c.send(t, "/model\r")
	out.waitCount(t, "Model: phi3-random-tiny-Q4_K_M", 1)
	c.send(t, "/quit\r")
	c.waitExit(t, "/quit")
}
