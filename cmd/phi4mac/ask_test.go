package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/app/chat"
	"github.com/phi4mac/phi4mac/app/llm"
	"github.com/phi4mac/phi4mac/app/llm/local"
	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// isolate points settings and model stores at empty temp dirs.
func isolate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	t.Setenv("OLLAMA_MODELS", filepath.Join(dir, "ollama"))
	for _, k := range []string{"PHI4MAC_MODEL", "PHI4MAC_TEMPERATURE", "PHI4MAC_SYSTEM_PROMPT", "PHI4MAC_API_KEY"} {
		t.Setenv(k, "")
	}
	return dir
}

// runCmd runs phi4mac with args, stdin and returns stdout, stderr and the
// exit status main would use.
func runPhi4mac(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.ExecuteContext(context.Background())
	code := 0
	if err != nil {
		code = 1
		var ee exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		errb.WriteString("phi4mac: " + err.Error() + "\n")
	}
	return out.String(), errb.String(), code
}

func TestAskMatchesGreedyOutput(t *testing.T) {
	isolate(t)
	micro := testrefs.Path(t, "models", "micro", "phi3-random-micro-F32.gguf")
	out, stderr, code := runPhi4mac(t, "", "ask", "--model", micro, "--temperature", "0", "--max-tokens", "12", "--system", "", "hello", "world")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// The same question through the adapter (whose output tests check against the engine).
	info, _ := local.PathInfo(micro)
	m, err := local.Open(context.Background(), info, local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var want bytes.Buffer
	if _, err := chat.Ask(context.Background(), m, "hello world", chat.AskOptions{Params: llm.Params{MaxTokens: 12}}, &want); err != nil {
		t.Fatal(err)
	}
	if out != want.String() || len(strings.TrimSpace(out)) == 0 {
		t.Errorf("ask printed %q, want %q", out, want.String())
	}
}

func TestAskStdinJSONAndDemo(t *testing.T) {
	isolate(t)
	out, stderr, code := runPhi4mac(t, "a little dog", "ask", "--json", "--temperature", "0", "--max-tokens", "20", "Once upon a time there was")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "demo model") {
		t.Errorf("no demo note on stderr: %q", stderr)
	}
	var r chat.AskResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %q", out)
	}
	if r.Model != "demo" || r.CompletionTokens != 20 || r.FinishReason != "length" || !strings.Contains(r.Answer, " ") {
		t.Errorf("result %+v", r)
	}
}

func TestAskExitCodes(t *testing.T) {
	dir := isolate(t)
	big := strings.Repeat("x", maxAskInput+1)
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
	}{
		{"no question", "", []string{"ask"}, chat.ExitUsage},
		{"bad setting", "", []string{"ask", "--temperature", "7", "q"}, chat.ExitUsage},
		{"unknown model", "", []string{"ask", "--model", "no-such-model", "q"}, chat.ExitNoModel},
		{"stdin too big", big, []string{"ask", "q"}, chat.ExitTooLong},
		{"prompt past context", strings.Repeat("word ", 3000), []string{"ask", "--ctx", "64", "q"}, chat.ExitTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runPhi4mac(t, tt.stdin, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (%s)", code, tt.code, stderr)
			}
		})
	}
	// A broken settings file is a usage error with the file named.
	cfg := filepath.Join(dir, "bad.yaml")
	os.WriteFile(cfg, []byte("temperature: [\n"), 0o600)
	if _, stderr, code := runPhi4mac(t, "", "ask", "--config", cfg, "q"); code != chat.ExitUsage || !strings.Contains(stderr, cfg) {
		t.Errorf("bad config: exit %d %s", code, stderr)
	}
}

func TestChatPipedWithDemo(t *testing.T) {
	dir := isolate(t)
	save := filepath.Join(dir, "t.md")
	in := "Once upon a time\n/temperature 0\n/system off\nThe little cat\n/save " + save + "\n/model\n/quit\n"
	out, stderr, code := runPhi4mac(t, in, "chat", "--temperature", "0", "--max-tokens", "15")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "demo model") || !strings.Contains(stderr, "phi4mac chat with demo") {
		t.Errorf("stderr: %q", stderr)
	}
	for _, want := range []string{"Temperature: 0", "Saved to " + save, "Model: demo"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(save)
	if err != nil || strings.Count(string(b), "**Assistant:**") != 2 {
		t.Errorf("transcript: %s %v", b, err)
	}
	// The demo is a real story model: its greedy answers are words, not noise.
	lines := strings.Split(out, "\n")
	if len(lines) < 2 || !strings.Contains(lines[0], " ") {
		t.Errorf("first answer %q", lines[0])
	}
}
