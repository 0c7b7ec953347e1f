package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/phi4mac/phi4mac/app/llm"
	"github.com/phi4mac/phi4mac/app/llm/llmtest"
)

func TestIdleUnloadAndReload(t *testing.T) {
	l := &llmtest.Loader{Models: []string{"a", "b"}}
	s, ts := startServer(t, l, func(o *Options) { o.IdleUnload = 50 * time.Millisecond })
	post := func(model string) {
		resp, err := ts.Client().Post(ts.URL+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"x"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	post("a")
	post("a")
	if l.Loads() != 1 || s.Status().Loaded != "a" {
		t.Fatalf("loads %d status %+v", l.Loads(), s.Status())
	}
	post("b") // switching models unloads the first
	if l.Loads() != 2 || l.Closes() != 1 || s.Status().Loaded != "b" {
		t.Fatalf("switch: loads %d closes %d", l.Loads(), l.Closes())
	}
	waitFor(t, func() bool { return s.Status().Loaded == "" })
	if l.Closes() != 2 {
		t.Errorf("closes = %d after idle", l.Closes())
	}
	post("b")
	if l.Loads() != 3 || s.Status().Loaded != "b" {
		t.Errorf("reload: loads %d", l.Loads())
	}
}

// startServer serves a fake-backed Server on a free loopback port.
func startServer(t testing.TB, l llm.Loader, mod func(*Options)) (*Server, *httptest.Server) {
	t.Helper()
	opts := Options{Loader: l, Defaults: llm.Params{Temperature: 0}, Version: "0.1.0"}
	if mod != nil {
		mod(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return s, ts
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHostileRequests(t *testing.T) {
	l := &llmtest.Loader{Models: []string{"m"}}
	_, ts := startServer(t, l, func(o *Options) {
		o.Token = "s3cret"
		o.MaxBodyBytes = 4096
		o.MaxPromptBytes = 1000
		o.AllowedOrigins = []string{"http://localhost:3000"}
	})
	auth := map[string]string{"Authorization": "Bearer s3cret"}
	with := func(extra map[string]string) map[string]string {
		h := map[string]string{"Authorization": "Bearer s3cret"}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	chat := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	tests := []struct {
		name, method, path, body string
		headers                  map[string]string
		status                   int
		want                     string // substring of the error message
	}{
		{"no token", "POST", "/v1/chat/completions", chat, nil, 401, "token"},
		{"wrong token", "POST", "/api/chat", chat, map[string]string{"Authorization": "Bearer nope"}, 401, "token"},
		{"basic auth", "GET", "/api/tags", "", map[string]string{"Authorization": "Basic czNjcmV0"}, 401, "token"},
		{"bearer without token", "GET", "/api/tags", "", map[string]string{"Authorization": "Bearer "}, 401, "token"},
		{"token without scheme", "GET", "/api/tags", "", map[string]string{"Authorization": "s3cret"}, 401, "token"},
		{"foreign host", "GET", "/v1/models", "", with(map[string]string{"Host": "evil.example.com"}), 403, "host"},
		{"rebinding host with port", "POST", "/api/chat", chat, with(map[string]string{"Host": "attacker.test:11435"}), 403, "host"},
		{"foreign origin", "POST", "/v1/chat/completions", chat, with(map[string]string{"Origin": "https://evil.example.com"}), 403, "origin"},
		{"malformed json", "POST", "/v1/chat/completions", `{"model":`, auth, 400, "truncated"},
		{"not json", "POST", "/api/chat", `hello`, auth, 400, "not valid JSON"},
		{"empty body", "POST", "/api/generate", ``, auth, 400, "empty"},
		{"array body", "POST", "/v1/chat/completions", `[1,2]`, auth, 400, "JSON object"},
		{"trailing data", "POST", "/v1/chat/completions", chat + `{}`, auth, 400, "more than one"},
		{"wrong type temperature", "POST", "/v1/chat/completions", `{"model":"m","temperature":"hot","messages":[]}`, auth, 400, "temperature"},
		{"wrong type messages", "POST", "/api/chat", `{"model":"m","messages":"hi"}`, auth, 400, "messages"},
		{"wrong type stream", "POST", "/api/generate", `{"model":"m","prompt":"x","stream":"yes"}`, auth, 400, "stream"},
		{"wrong type options", "POST", "/api/generate", `{"model":"m","prompt":"x","options":{"num_predict":"many"}}`, auth, 400, "num_predict"},
		{"temperature range", "POST", "/v1/chat/completions", `{"model":"m","temperature":9,"messages":[{"role":"user","content":"x"}]}`, auth, 400, "temperature"},
		{"no messages", "POST", "/v1/chat/completions", `{"model":"m","messages":[]}`, auth, 400, "messages"},
		{"bad role", "POST", "/v1/chat/completions", `{"model":"m","messages":[{"role":"wizard","content":"x"}]}`, auth, 400, "role"},
		{"image part", "POST", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]}`, auth, 400, "image_url"},
		{"n=3", "POST", "/v1/chat/completions", `{"model":"m","n":3,"messages":[{"role":"user","content":"x"}]}`, auth, 400, "n=3"},
		{"json schema", "POST", "/v1/chat/completions", `{"model":"m","response_format":{"type":"json_schema"},"messages":[{"role":"user","content":"x"}]}`, auth, 400, "json_schema"},
		{"bad keep_alive", "POST", "/api/generate", `{"model":"m","prompt":"x","keep_alive":"soon"}`, auth, 400, "keep_alive"},
		{"unknown model openai", "POST", "/v1/chat/completions", `{"model":"gpt-5","messages":[{"role":"user","content":"x"}]}`, auth, 404, "gpt-5"},
		{"unknown model ollama", "POST", "/api/show", `{"model":"llama3"}`, auth, 404, "llama3"},
		{"unknown model get", "GET", "/v1/models/nope", "", auth, 404, "nope"},
		{"huge body", "POST", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("a", 10000) + `"}]}`, auth, 413, "larger than"},
		{"huge prompt", "POST", "/api/chat", `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("a", 2000) + `"}]}`, auth, 413, "limit"},
		{"wrong method", "GET", "/v1/chat/completions", "", auth, 405, "use POST"},
		{"unknown path", "GET", "/v1/nothing", "", auth, 404, "no such endpoint"},
		{"unknown path ollama", "POST", "/api/pull", `{}`, auth, 404, "no such endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, ts.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.headers {
				if k == "Host" {
					req.Host = v
				} else {
					req.Header.Set(k, v)
				}
			}
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			msg := errorMessage(t, tt.path, body)
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not mention %q", msg, tt.want)
			}
		})
	}

	// CORS preflight from an allowed origin, then a real request from it.
	req, _ := http.NewRequest("OPTIONS", ts.URL+"/v1/chat/completions", nil)
	req.Header.Set("Origin", "http://localhost:3000")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:3000" {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	// The server still serves after all that.
	req, _ = http.NewRequest("POST", ts.URL+"/v1/chat/completions", strings.NewReader(chat))
	req.Header.Set("Authorization", "Bearer s3cret")
	req.Header.Set("Origin", "http://localhost:3000")
	req.Host = "localhost"
	resp, err = ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "echo: hi") || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:3000" {
		t.Errorf("after hostile requests: %d %s", resp.StatusCode, body)
	}
}

// errorMessage checks body is the API's JSON error shape and returns the message.
func errorMessage(t *testing.T, path string, body []byte) string {
	t.Helper()
	if strings.HasPrefix(path, "/v1/") {
		var e struct {
			Error struct {
				Message string `json:"message"`
				Type    string `json:"type"`
			} `json:"error"`
		}
		if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" || e.Error.Type == "" {
			t.Errorf("not an OpenAI error body: %s", body)
		}
		return e.Error.Message
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Errorf("not an Ollama error body: %s", body)
	}
	return e.Error
}

func TestAnyHostNeedsToken(t *testing.T) {
	l := &llmtest.Loader{Models: []string{"m"}}
	if _, err := New(Options{Loader: l, AllowedHosts: []string{"*"}}); err == nil {
		t.Error("AllowedHosts * accepted without a token")
	}
	_, ts := startServer(t, l, func(o *Options) { o.AllowedHosts = []string{"*"}; o.Token = "t" })
	req, _ := http.NewRequest("GET", ts.URL+"/api/version", nil)
	req.Host = "192.168.1.20:11435"
	req.Header.Set("Authorization", "Bearer t")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("LAN host with token: %d", resp.StatusCode)
	}
}

func TestQueueFullGets503(t *testing.T) {
	gate := make(chan struct{})
	l := &llmtest.Loader{Models: []string{"m"}, OnGenerate: func(ctx context.Context, _ llm.Request) {
		select {
		case <-gate:
		case <-ctx.Done():
		}
	}}
	s, ts := startServer(t, l, func(o *Options) { o.MaxQueue = 1 })
	body := `{"model":"m","prompt":"x","stream":false}`
	done := make(chan int, 2)
	for i := range 2 {
		go func() {
			resp, err := ts.Client().Post(ts.URL+"/api/generate", "application/json", strings.NewReader(body))
			if err != nil {
				done <- -1
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		waitFor(t, func() bool { st := s.Status(); return st.Busy && st.Queued == i })
	}
	resp, err := ts.Client().Post(ts.URL+"/api/generate", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !bytes.Contains(b, []byte("too many")) {
		t.Errorf("third request: %d %s", resp.StatusCode, b)
	}
	close(gate)
	for range 2 {
		if c := <-done; c != 200 {
			t.Errorf("queued request status %d", c)
		}
	}
}

// readSSE returns the data lines of an SSE body.
func readSSE(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, d)
		}
	}
	return out, sc.Err()
}

func TestStreamErrorAfterStart(t *testing.T) {
	l := &llmtest.Loader{Models: []string{"m"}, Respond: func(llm.Request) []string { return []string{"{", "oops"} }}
	_, ts := startServer(t, l, nil)
	// "{oops" passes the first check, then fails the final JSON check only when
	// the object would close; here generation just ends, so the error comes in-stream.
	resp, err := ts.Client().Post(ts.URL+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"m","stream":true,"response_format":{"type":"json_object"},"messages":[{"role":"user","content":"x"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines, err := readSSE(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) == 0 || !strings.Contains(lines[len(lines)-1], `"invalid_json_output"`) {
		t.Errorf("stream did not end with an error event: %q", lines)
	}
}

// Browser clients such as the OpenAI JS SDK send their own headers
// (x-stainless-*); a preflight from an allowed origin must admit them, or
// the browser blocks the real request.
func TestPreflightAdmitsRequestedHeaders(t *testing.T) {
	_, ts := startServer(t, &llmtest.Loader{Models: []string{"m"}}, func(o *Options) {
		o.AllowedOrigins = []string{"http://localhost:3000"}
	})
	preflight := func(origin, headers string) *http.Response {
		req, _ := http.NewRequest("OPTIONS", ts.URL+"/v1/chat/completions", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		if headers != "" {
			req.Header.Set("Access-Control-Request-Headers", headers)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	asked := "authorization,content-type,x-stainless-os,x-stainless-lang,x-stainless-retry-count"
	resp := preflight("http://localhost:3000", asked)
	allowed := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
	for _, h := range strings.Split(asked, ",") {
		if !strings.Contains(allowed, h) {
			t.Errorf("preflight does not admit %q: Access-Control-Allow-Headers %q", h, allowed)
		}
	}
	if resp := preflight("http://localhost:3000", "x-ok, bad;header"); resp.StatusCode == 204 &&
		strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "bad") {
		t.Errorf("malformed request headers echoed: %q", resp.Header.Get("Access-Control-Allow-Headers"))
	}
	if resp := preflight("https://evil.example", asked); resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from a foreign origin: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestHostAllowed(t *testing.T) {
	s := &Server{opts: Options{AllowedHosts: []string{"mac.lan"}}}
	for host, want := range map[string]bool{
		"localhost": true, "localhost:11434": true, "LOCALHOST:1": true, "localhost.:1": true, "localhost.": true,
		"127.0.0.1": true, "127.0.0.1:8080": true, "127.1.2.3:1": true, "[::1]": true, "[::1]:11434": true,
		"app.localhost:1": true, "mac.lan:80": true, "MAC.LAN": true,
		"": false, "evil.example": false, "evil.example:11434": false, "localhost.evil.example": false,
		"127.0.0.1.evil.example": false, "0.0.0.0:11434": false, "[::]:1": false, "192.168.1.2": false,
		"[::1]evil": false, "localhost:": true,
	} {
		if got := s.hostAllowed(host); got != want {
			t.Errorf("hostAllowed(%q) = %v, want %v", host, got, want)
		}
	}
}

// Ollama clients (Page Assist, Enchanted, many scripts) detect a server by
// GET / answering exactly "Ollama is running"; HEAD / is the Ollama CLI's
// heartbeat. Both answer without the token: they tell no more than an open
// port does.
func TestRootAnswersLikeOllama(t *testing.T) {
	_, ts := startServer(t, &llmtest.Loader{Models: []string{"m"}}, func(o *Options) { o.Token = "s3cret" })
	resp, err := ts.Client().Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "Ollama is running" {
		t.Errorf("GET /: %d %q", resp.StatusCode, body)
	}
	resp, err = ts.Client().Head(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("HEAD /: %d", resp.StatusCode)
	}
	resp, err = ts.Client().Get(ts.URL + "/api/tags")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("GET /api/tags without the token: %d", resp.StatusCode)
	}
}

// keep_alive applies to the request that carries it, as in Ollama: a later
// request without one brings back the server's idle period instead of
// keeping the model loaded forever.
func TestKeepAliveIsPerRequest(t *testing.T) {
	l := &llmtest.Loader{Models: []string{"a"}}
	s, ts := startServer(t, l, func(o *Options) { o.IdleUnload = 50 * time.Millisecond })
	post := func(path, body string) {
		resp, err := ts.Client().Post(ts.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
	}
	post("/api/generate", `{"model":"a","prompt":"x","keep_alive":-1,"stream":false}`)
	post("/v1/chat/completions", `{"model":"a","messages":[{"role":"user","content":"x"}]}`)
	waitFor(t, func() bool { return s.Status().Loaded == "" })
}

// A client that sends its body slowly (slowloris) is cut off after
// BodyTimeout instead of holding a connection and a goroutine forever; a
// long generation after the body has arrived is not affected.
func TestSlowBodyTimesOut(t *testing.T) {
	l := &llmtest.Loader{Models: []string{"m"}, TokenDelay: 5 * time.Millisecond}
	_, ts := startServer(t, l, func(o *Options) { o.BodyTimeout = 200 * time.Millisecond })
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/chat HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\":")
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	start := time.Now()
	b, _ := io.ReadAll(conn)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("a stalled body held the connection for %v", took)
	}
	if len(b) > 0 && !strings.HasPrefix(string(b), "HTTP/1.1 408") {
		t.Errorf("answer to a stalled body: %q", b)
	}
	// A generation that outlasts BodyTimeout still completes.
	resp, err := ts.Client().Post(ts.URL+"/api/generate", "application/json",
		strings.NewReader(`{"model":"m","prompt":"`+strings.Repeat("word ", 80)+`","stream":false}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"done":true`) {
		t.Errorf("long generation: %d %s", resp.StatusCode, body)
	}
}

// An Ollama request with no prompt and keep_alive 0 unloads the model; when
// it is not loaded there is nothing to do (loading it only to unload it
// costs seconds and gigabytes).
func TestUnloadRequestDoesNotLoad(t *testing.T) {
	l := &llmtest.Loader{Models: []string{"m"}}
	s, ts := startServer(t, l, nil)
	post := func(path, body string) string {
		resp, err := ts.Client().Post(ts.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	if b := post("/api/generate", `{"model":"m","keep_alive":0}`); !strings.Contains(b, `"done_reason":"unload"`) {
		t.Errorf("unload answer: %s", b)
	}
	if l.Loads() != 0 {
		t.Errorf("unloading a model that was not loaded loaded it (%d loads)", l.Loads())
	}
	post("/api/chat", `{"model":"m"}`) // load
	if l.Loads() != 1 || s.Status().Loaded != "m" {
		t.Fatalf("load: %d loads, status %+v", l.Loads(), s.Status())
	}
	post("/api/chat", `{"model":"m","keep_alive":0}`)
	if l.Closes() != 1 || s.Status().Loaded != "" || l.Loads() != 1 {
		t.Errorf("unload: %d loads, %d closes, status %+v", l.Loads(), l.Closes(), s.Status())
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		header, token string
		ok            bool
	}{
		{"Bearer s3cret", "s3cret", true},
		{"bearer s3cret", "s3cret", true},
		{"BEARER  s3cret ", "s3cret", true},
		{"Bearer", "", false},
		{"Bearer   ", "", false},
		{"Basic czNjcmV0", "", false},
		{"s3cret", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		token, ok := bearerToken(tt.header)
		if token != tt.token || ok != tt.ok {
			t.Errorf("bearerToken(%q) = %q, %v; want %q, %v", tt.header, token, ok, tt.token, tt.ok)
		}
	}
}
