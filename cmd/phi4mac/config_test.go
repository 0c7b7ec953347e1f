package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigCommand(t *testing.T) {
	dir := isolate(t)
	path := filepath.Join(dir, "config", "phi4mac", "config.yaml")
	if out, _, code := runPhi4mac(t, "", "config", "path"); code != 0 || strings.TrimSpace(out) != path {
		t.Errorf("path: %d %q, want %s", code, out, path)
	}
	if out, stderr, code := runPhi4mac(t, "", "config", "set", "temperature", "0.3"); code != 0 || out != "temperature = 0.3\n" {
		t.Fatalf("set: %d %q %s", code, out, stderr)
	}
	t.Setenv("PHI4MAC_API_KEY", "secret")
	out, _, code := runPhi4mac(t, "", "config", "show")
	if code != 0 || !strings.Contains(out, "temperature: 0.3") || strings.Contains(out, "secret") || !strings.Contains(out, "token: (set)") {
		t.Errorf("show: %d\n%s", code, out)
	}
	if _, stderr, code := runPhi4mac(t, "", "config", "set", "temprature", "1"); code != 2 || !strings.Contains(stderr, "unknown setting") {
		t.Errorf("typo: %d %s", code, stderr)
	}
	if _, _, code := runPhi4mac(t, "", "config", "set", "top_p", "3"); code != 2 {
		t.Errorf("invalid value: exit %d", code)
	}
	// Settings reach the commands: ask refuses the bad model set here.
	runPhi4mac(t, "", "config", "set", "model", "no-such-model")
	if _, _, code := runPhi4mac(t, "", "ask", "q"); code != 3 {
		t.Errorf("ask with a configured unknown model: exit %d", code)
	}
}
