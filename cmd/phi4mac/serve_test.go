package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// lineWaiter captures what is written and reports the first match of re.
type lineWaiter struct {
	mu    sync.Mutex
	buf   strings.Builder
	re    *regexp.Regexp
	found chan string
	once  sync.Once
}

func (w *lineWaiter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if m := w.re.FindStringSubmatch(w.buf.String()); m != nil {
		w.once.Do(func() { w.found <- m[1] })
	}
	return len(p), nil
}

func TestServeCommand(t *testing.T) {
	isolate(t)
	t.Setenv("PHI4MAC_API_KEY", "k3y")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &lineWaiter{re: regexp.MustCompile(`serving on (http://\S+)`), found: make(chan string, 1)}
	root := newRootCmd()
	root.SetArgs([]string{"serve", "--addr", "127.0.0.1:0", "--temperature", "0", "--idle-unload", "1m"})
	root.SetOut(io.Discard)
	root.SetErr(stderr)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	var base string
	select {
	case base = <-stderr.found:
	case err := <-done:
		t.Fatalf("serve exited: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start")
	}
	do := func(method, path, body, host string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer k3y")
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := do("GET", "/api/tags", "", "")
	if code != 200 || !strings.Contains(body, `"name":"demo"`) {
		t.Errorf("tags: %d %s", code, body)
	}
	code, body = do("POST", "/api/generate", `{"model":"demo","prompt":"Once upon a time","stream":false,"options":{"num_predict":12}}`, "")
	var g struct {
		Response string `json:"response"`
		Done     bool   `json:"done"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &g) != nil || !g.Done || !strings.Contains(g.Response, " ") {
		t.Errorf("generate: %d %s", code, body)
	}
	if code, _ := do("GET", "/api/version", "", "evil.example:80"); code != 403 {
		t.Errorf("foreign Host: %d", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
}
