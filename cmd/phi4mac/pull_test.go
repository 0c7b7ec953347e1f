package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// TestPullModelsAskRm: pull a GGUF quantisation from a fake Hub
// (HF_ENDPOINT), find it with `models`, answer with it, remove it.
func TestPullModelsAskRm(t *testing.T) {
	dir := isolate(t)
	gguf, err := os.ReadFile(testrefs.Path(t, "models", "micro", "phi3-random-micro-Q8_0.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(gguf)
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/models/acme/micro-GGUF/revision/main":
			json.NewEncoder(w).Encode(map[string]any{"siblings": []any{
				map[string]any{"rfilename": "micro-Q8_0.gguf", "lfs": map[string]any{"sha256": hex.EncodeToString(sum[:]), "size": len(gguf)}},
				map[string]any{"rfilename": "README.md", "size": 3},
			}})
		case "/acme/micro-GGUF/resolve/main/micro-Q8_0.gguf":
			http.ServeContent(w, r, "m.gguf", time.Time{}, bytes.NewReader(gguf))
		default:
			http.NotFound(w, r)
		}
	}))
	defer hub.Close()
	t.Setenv("HF_ENDPOINT", hub.URL)
	t.Setenv("HF_TOKEN", "")

	out, stderr, code := runPhi4mac(t, "", "pull", "acme/micro-GGUF:Q8_0")
	if code != 0 || !strings.Contains(out, "phi4mac chat --model acme/micro-GGUF/micro-Q8_0") {
		t.Fatalf("pull: %d %q %s", code, out, stderr)
	}
	path := filepath.Join(dir, "data", "phi4mac", "models", "acme", "micro-GGUF", "micro-Q8_0.gguf")
	if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, gguf) {
		t.Fatalf("pulled file: %v", err)
	}
	out, _, _ = runPhi4mac(t, "", "models")
	if !strings.Contains(out, "acme/micro-GGUF/micro-Q8_0") || !strings.Contains(out, "Q8_0") || !strings.Contains(out, "phi4mac") {
		t.Errorf("models:\n%s", out)
	}
	out, stderr, code = runPhi4mac(t, "", "ask", "--model", "acme/micro-GGUF/micro-Q8_0", "--temperature", "0", "--max-tokens", "5", "hi")
	if code != 0 || strings.Contains(stderr, "demo") || len(strings.TrimSpace(out)) == 0 {
		t.Errorf("ask with the pulled model: %d %q %s", code, out, stderr)
	}
	if out, stderr, code = runPhi4mac(t, "", "rm", "acme/micro-GGUF/micro-Q8_0"); code != 0 || !strings.Contains(out, "Removed") {
		t.Errorf("rm: %d %q %s", code, out, stderr)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("file still there: %v", err)
	}
	if _, _, code := runPhi4mac(t, "", "pull", "not-a-repo"); code != 2 {
		t.Errorf("bad ref: exit %d", code)
	}
}
