package main

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/app/chat"
)

func TestOpenURL(t *testing.T) {
	isolate(t)
	t.Setenv("PHI4MAC_TEMPERATURE", "0")
	t.Setenv("PHI4MAC_MAX_TOKENS", "12")
	out, stderr, code := runPhi4mac(t, "", "open-url", "phi4mac://ask?q=Once+upon+a+time")
	if code != 0 || len(strings.TrimSpace(out)) == 0 || !strings.Contains(stderr, "demo model") {
		t.Fatalf("ask link: exit %d, out %q, err %q", code, out, stderr)
	}
	// The same question through `ask` gives the same greedy answer.
	want, _, _ := runPhi4mac(t, "", "ask", "Once upon a time")
	if out != want {
		t.Errorf("open-url answered %q, ask %q", out, want)
	}
	out, stderr, code = runPhi4mac(t, "/model\n", "open-url", "phi4mac://chat?q=The+dog")
	if code != 0 || !strings.Contains(out, "Model: demo") || !strings.Contains(stderr, "phi4mac chat with demo") {
		t.Errorf("chat link: exit %d, out %q, err %q", code, out, stderr)
	}
	// A chat link's text is a question, never chat input: newlines in it
	// must not smuggle in /commands such as /save.
	planted := filepath.Join(t.TempDir(), "planted.md")
	link := "phi4mac://chat?q=" + url.QueryEscape("hi\n/save "+planted)
	if _, stderr, code := runPhi4mac(t, "", "open-url", link); code != 0 {
		t.Errorf("chat link with a newline: exit %d (%s)", code, stderr)
	}
	if _, err := os.Stat(planted); err == nil {
		t.Errorf("a phi4mac://chat link ran /save and wrote %s", planted)
	}
	for link, wantCode := range map[string]int{
		"phi4mac://ask":                   chat.ExitUsage,
		"phi4mac://format-disk":           chat.ExitUsage,
		"phi4mac://ask?q=x&model=nothing": chat.ExitNoModel,
		"phi4mac://ask?q=x&model=/etc":    chat.ExitUsage,
	} {
		if _, stderr, code := runPhi4mac(t, "", "open-url", link); code != wantCode {
			t.Errorf("%s: exit %d, want %d (%s)", link, code, wantCode, stderr)
		}
	}
}
