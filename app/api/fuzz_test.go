package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/app/llm/llmtest"
)

var fuzzPaths = []string{"/v1/chat/completions", "/v1/completions", "/api/chat", "/api/generate", "/api/show"}

// FuzzRequests feeds arbitrary bodies to every decoding endpoint: the server
// must answer 200 or a 4xx (or the JSON-mode 500) with a JSON body, never
// panic or hang.
func FuzzRequests(f *testing.F) {
	seeds := []string{
		`{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","stream":true,"stop":["a","b"],"max_tokens":3,"temperature":0.5,"top_p":0.9,"seed":7,"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
		`{"model":"m","response_format":{"type":"json_object"},"messages":[{"role":"user","content":"x"}]}`,
		`{"model":"m","prompt":["p"],"max_tokens":2,"stream_options":{"include_usage":true},"stream":true}`,
		`{"model":"m","prompt":"p","raw":true,"format":"json","options":{"num_predict":-1,"stop":["x"],"seed":1},"keep_alive":"5m"}`,
		`{"model":"m","messages":[],"keep_alive":0}`,
		`{"name":"m"}`, `{"model":`, `[]`, `null`, ``, `{"stop":5}`, `{"keep_alive":1e400}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	l := &llmtest.Loader{Models: []string{"m"}, ContextLength: 64}
	s, err := New(Options{Loader: l, MaxBodyBytes: 1 << 16, MaxPromptBytes: 4096})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		path := fuzzPaths[int(which)%len(fuzzPaths)]
		req := httptest.NewRequest("POST", path, strings.NewReader(string(body)))
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		code := rec.Code
		if code != http.StatusOK && (code < 400 || code > 499) && !(code == 500 && strings.Contains(rec.Body.String(), "JSON object")) {
			t.Fatalf("%s %q: status %d %s", path, body, code, rec.Body)
		}
		if code != http.StatusOK {
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("%s %q: error body is not JSON: %s", path, body, rec.Body)
			}
		}
	})
}
