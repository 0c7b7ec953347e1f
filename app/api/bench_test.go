package api

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/app/llm"
	"github.com/phi4mac/phi4mac/app/llm/llmtest"
)

// BenchmarkStreamedChat measures the server's own cost per streamed token
// (SSE encoding, flushing, the queue), with a fake model that costs nothing:
// a request of 200 tokens over loopback HTTP.
func BenchmarkStreamedChat(b *testing.B) {
	suffix := make([]string, 199)
	for i := range suffix {
		suffix[i] = "tok"
	}
	l := &llmtest.Loader{Models: []string{"m"}, Respond: func(llm.Request) []string { return append([]string{"a"}, suffix...) }}
	_, ts := startServer(b, l, nil)
	body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}`
	b.ReportAllocs()
	for b.Loop() {
		resp, err := ts.Client().Post(ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatal(resp.Status)
		}
	}
	b.ReportMetric(float64(b.N*200)/b.Elapsed().Seconds(), "tokens/s")
}
