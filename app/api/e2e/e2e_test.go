package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ollama "github.com/ollama/ollama/api"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"go.uber.org/goleak"

	"github.com/phi4mac/phi4mac/app/api"
	"github.com/phi4mac/phi4mac/app/llm"
	"github.com/phi4mac/phi4mac/app/llm/llmtest"
	"github.com/phi4mac/phi4mac/app/llm/local"
	"github.com/phi4mac/phi4mac/internal/enginetest"
	"github.com/phi4mac/phi4mac/internal/testrefs"
	"github.com/phi4mac/phi4mac/tokenizer"
)

// startServer serves a fake-backed Server on a free loopback port.
func startServer(t testing.TB, l llm.Loader, mod func(*api.Options)) (*api.Server, *httptest.Server) {
	t.Helper()
	opts := api.Options{Loader: l, Defaults: llm.Params{Temperature: 0}, Version: "0.1.0"}
	if mod != nil {
		mod(&opts)
	}
	s, err := api.New(opts)
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

func newOpenAI(ts *httptest.Server, opts ...option.RequestOption) openai.Client {
	return openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(ts.URL + "/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0),
		option.WithHTTPClient(ts.Client()),
	}, opts...)...)
}

func newOllama(t testing.TB, ts *httptest.Server) *ollama.Client {
	u, err := url.Parse(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	return ollama.NewClient(u, ts.Client())
}

func TestOpenAIChatWithFake(t *testing.T) {
	l := &llmtest.Loader{Models: []string{"phi-test", "other"}}
	_, ts := startServer(t, l, nil)
	c := newOpenAI(ts)
	ctx := context.Background()

	resp, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    "phi-test",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be kind"), openai.UserMessage("hello there world")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != "echo: hello there world" {
		t.Errorf("content = %q", got)
	}
	if resp.Choices[0].FinishReason != "stop" || resp.Usage.CompletionTokens != 4 || resp.Usage.PromptTokens != 4+2+4+3 {
		t.Errorf("finish %q usage %+v", resp.Choices[0].FinishReason, resp.Usage)
	}

	stream := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model:         "phi-test",
		Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("stream me please")},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	var acc openai.ChatCompletionAccumulator
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got := acc.Choices[0].Message.Content; got != "echo: stream me please" {
		t.Errorf("streamed content = %q", got)
	}
	if chunks < 5 || acc.Usage.CompletionTokens != 4 || acc.Choices[0].FinishReason != "stop" {
		t.Errorf("chunks %d usage %+v finish %q", chunks, acc.Usage, acc.Choices[0].FinishReason)
	}

	page, err := c.Models.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 2 || page.Data[0].ID != "phi-test" || page.Data[1].ID != "other" {
		t.Errorf("models = %+v", page.Data)
	}
	if m, err := c.Models.Get(ctx, "other"); err != nil || m.ID != "other" {
		t.Errorf("get model: %v %v", m, err)
	}

	comp, err := c.Completions.New(ctx, openai.CompletionNewParams{
		Model:  "other",
		Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("raw prompt text")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if comp.Choices[0].Text != "echo: raw prompt text" || comp.Model != "other" {
		t.Errorf("completion = %+v", comp.Choices[0])
	}
	reqs := l.Requests()
	if last := reqs[len(reqs)-1]; last.Messages != nil || last.Prompt != "raw prompt text" || last.Params.MaxTokens != 16 {
		t.Errorf("completion request reached the model as %+v", last)
	}

	_, err = c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "gpt-4o", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")},
	})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" {
		t.Errorf("unknown model: %v", err)
	}
}

func TestOpenAISamplingParameters(t *testing.T) {
	l := &llmtest.Loader{Models: []string{"m"}, Suffix: []string{"alpha", "STOP", "beta"}}
	_, ts := startServer(t, l, func(o *api.Options) { o.SystemPrompt = "default system" })
	c := newOpenAI(ts)
	ctx := context.Background()

	resp, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "m", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")},
		Stop:        openai.ChatCompletionNewParamsStopUnion{OfString: openai.String("STO")},
		Temperature: openai.Float(0.5), TopP: openai.Float(0.9), Seed: openai.Int(42),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != "echo: x alpha " || resp.Choices[0].FinishReason != "stop" {
		t.Errorf("stop: content %q finish %q", got, resp.Choices[0].FinishReason)
	}
	req := l.Requests()[0]
	if p := req.Params; p.Temperature != 0.5 || p.TopP != 0.9 || !p.HasSeed || p.Seed != 42 {
		t.Errorf("params reached the model as %+v", p)
	}
	if req.Messages[0] != (llm.Message{Role: "system", Content: "default system"}) {
		t.Errorf("default system prompt not applied: %+v", req.Messages)
	}

	resp, err = c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "m", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("a b c d")},
		MaxTokens: openai.Int(2),
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content != "echo: a" || resp.Choices[0].FinishReason != "length" || resp.Usage.CompletionTokens != 2 {
		t.Errorf("max_tokens: %q %q %+v", resp.Choices[0].Message.Content, resp.Choices[0].FinishReason, resp.Usage)
	}
}

func TestJSONMode(t *testing.T) {
	var reply []string
	l := &llmtest.Loader{Models: []string{"m"}, Respond: func(llm.Request) []string { return reply }}
	_, ts := startServer(t, l, nil)
	c := newOpenAI(ts)
	ctx := context.Background()
	ask := func(max int64) (*openai.ChatCompletion, error) {
		p := openai.ChatCompletionNewParams{
			Model: "m", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("give json")},
			ResponseFormat: openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONObject: &openai.ResponseFormatJSONObjectParam{}},
		}
		if max > 0 {
			p.MaxTokens = openai.Int(max)
		}
		return c.Chat.Completions.New(ctx, p)
	}

	reply = []string{"\n ", `{"a": [1, "}`, `\""`, `]}`, " and then some chatter"}
	resp, err := ask(0)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != `{"a": [1, "}\""]}` || !json.Valid([]byte(got)) {
		t.Errorf("json mode content = %q", got)
	}
	if sys := l.Requests()[0].Messages[0]; sys.Role != "system" || !strings.Contains(sys.Content, "JSON") {
		t.Errorf("JSON instruction missing: %+v", sys)
	}

	reply = []string{"Sure! ", `{"a":1}`}
	_, err = ask(0)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 500 || apiErr.Code != "invalid_json_output" {
		t.Errorf("non-JSON output: err = %v", err)
	}

	reply = []string{`{"a":`, ` 1,`, ` "b"`}
	resp, err = ask(2)
	if err != nil || resp.Choices[0].FinishReason != "length" {
		t.Errorf("truncated JSON: %v %+v", err, resp)
	}
	reply = []string{`{"a" 1}`}
	if _, err = ask(0); !errors.As(err, &apiErr) || apiErr.Code != "invalid_json_output" {
		t.Errorf("malformed object: err = %v", err)
	}
}

func TestOllamaWithFake(t *testing.T) {
	l := &llmtest.Loader{Models: []string{"phi-test"}, ContextLength: 512}
	_, ts := startServer(t, l, nil)
	c := newOllama(t, ts)
	ctx := context.Background()

	var pieces []string
	var final ollama.ChatResponse
	err := c.Chat(ctx, &ollama.ChatRequest{Model: "phi-test", Messages: []ollama.Message{{Role: "user", Content: "hi there"}},
		Options: map[string]any{"temperature": 0, "num_predict": 10}}, func(r ollama.ChatResponse) error {
		pieces = append(pieces, r.Message.Content)
		final = r
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(pieces, ""); got != "echo: hi there" || len(pieces) != 4 {
		t.Errorf("chat pieces %q", pieces)
	}
	if !final.Done || final.DoneReason != "stop" || final.EvalCount != 3 || final.PromptEvalCount != 6 {
		t.Errorf("final = %+v", final)
	}

	stream := false
	var whole []ollama.ChatResponse
	err = c.Chat(ctx, &ollama.ChatRequest{Model: "phi-test:latest", Stream: &stream, Messages: []ollama.Message{{Role: "user", Content: "one"}}},
		func(r ollama.ChatResponse) error { whole = append(whole, r); return nil })
	if err != nil || len(whole) != 1 || whole[0].Message.Content != "echo: one" || !whole[0].Done {
		t.Errorf("non-streamed chat: %v %+v", err, whole)
	}

	var gen strings.Builder
	err = c.Generate(ctx, &ollama.GenerateRequest{Model: "phi-test", Prompt: "why sky", System: "sys"}, func(r ollama.GenerateResponse) error {
		gen.WriteString(r.Response)
		return nil
	})
	if err != nil || gen.String() != "echo: why sky" {
		t.Errorf("generate: %v %q", err, gen.String())
	}
	if req := l.Requests()[2]; len(req.Messages) != 2 || req.Messages[0].Content != "sys" {
		t.Errorf("generate request = %+v", req)
	}
	gen.Reset()
	err = c.Generate(ctx, &ollama.GenerateRequest{Model: "phi-test", Prompt: "raw text", Raw: true}, func(r ollama.GenerateResponse) error {
		gen.WriteString(r.Response)
		return nil
	})
	if err != nil || gen.String() != "echo: raw text" || l.Requests()[3].Prompt != "raw text" {
		t.Errorf("raw generate: %v %q", err, gen.String())
	}

	tags, err := c.List(ctx)
	if err != nil || len(tags.Models) != 1 || tags.Models[0].Name != "phi-test" || tags.Models[0].Details.Family != "phi3" {
		t.Errorf("tags: %v %+v", err, tags)
	}
	show, err := c.Show(ctx, &ollama.ShowRequest{Model: "phi-test"})
	if err != nil || show.Details.Format != "gguf" || show.ModelInfo["phi3.context_length"] != float64(512) {
		t.Errorf("show: %v %+v", err, show)
	}
	ps, err := c.ListRunning(ctx)
	if err != nil || len(ps.Models) != 1 || ps.Models[0].Name != "phi-test" {
		t.Errorf("ps: %v %+v", err, ps)
	}
	v, err := c.Version(ctx)
	if err != nil || v != "0.1.0" {
		t.Errorf("version: %v %q", err, v)
	}

	err = c.Chat(ctx, &ollama.ChatRequest{Model: "nope", Messages: []ollama.Message{{Role: "user", Content: "x"}}}, func(ollama.ChatResponse) error { return nil })
	var se ollama.StatusError
	if !errors.As(err, &se) || se.StatusCode != 404 || !strings.Contains(se.ErrorMessage, "nope") {
		t.Errorf("unknown model: %v", err)
	}
	long := strings.Repeat("word ", 600)
	err = c.Chat(ctx, &ollama.ChatRequest{Model: "phi-test", Messages: []ollama.Message{{Role: "user", Content: long}}}, func(ollama.ChatResponse) error { return nil })
	if !errors.As(err, &se) || se.StatusCode != 400 {
		t.Errorf("context overflow: %v", err)
	}

	// Empty prompt with keep_alive 0 unloads the model.
	err = c.Generate(ctx, &ollama.GenerateRequest{Model: "phi-test", KeepAlive: &ollama.Duration{Duration: 0}}, func(r ollama.GenerateResponse) error {
		if r.DoneReason != "unload" {
			t.Errorf("done_reason = %q", r.DoneReason)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ps, _ := c.ListRunning(ctx); len(ps.Models) != 0 || l.Closes() != 1 {
		t.Errorf("after keep_alive 0: running %+v, closes %d", ps.Models, l.Closes())
	}
}

// microLoader serves the micro reference model as "micro" through the
// real engine.
func microLoader(t testing.TB) (*local.Loader, string) {
	path := testrefs.Path(t, "models", "micro", "phi3-random-micro-F32.gguf")
	info, err := local.PathInfo(path)
	if err != nil {
		t.Fatal(err)
	}
	info.Name = "micro"
	return &local.Loader{
		Catalog: func(context.Context) ([]llm.Info, error) { return []llm.Info{info}, nil },
		Options: local.Options{SkipMemoryCheck: true},
	}, path
}

func TestEndToEndWithEngine(t *testing.T) {
	l, path := microLoader(t)
	_, ts := startServer(t, l, nil)
	ctx := context.Background()
	const maxTokens = 24
	user := "Write a haiku about the sea."
	want := enginetest.Greedy(t, path, enginetest.Chat(t, []tokenizer.Message{{Role: "user", Content: user}}, true), maxTokens)
	if want == "" {
		t.Fatal("engine produced no text; the comparison would be empty")
	}

	oa := newOpenAI(ts)
	params := openai.ChatCompletionNewParams{
		Model: "micro", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(user)},
		MaxTokens: openai.Int(maxTokens), Temperature: openai.Float(0),
	}
	resp, err := oa.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != want {
		t.Errorf("OpenAI chat: %q, engine greedy: %q", got, want)
	}
	if resp.Usage.PromptTokens == 0 || resp.Usage.CompletionTokens == 0 || resp.Usage.CompletionTokens > maxTokens {
		t.Errorf("usage %+v", resp.Usage)
	}
	stream := oa.Chat.Completions.NewStreaming(ctx, params)
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got := acc.Choices[0].Message.Content; got != want {
		t.Errorf("OpenAI streamed chat: %q, want %q", got, want)
	}
	page, err := oa.Models.List(ctx)
	if err != nil || len(page.Data) != 1 || page.Data[0].ID != "micro" {
		t.Errorf("models: %v %+v", err, page)
	}
	wantRaw := enginetest.Greedy(t, path, func(tok *tokenizer.Tokenizer) []int {
		return tok.Encode("Once upon a time", tokenizer.EncodeOptions{AllowSpecial: true, AddBOS: tok.WantsBOS()})
	}, 10)
	comp, err := oa.Completions.New(ctx, openai.CompletionNewParams{Model: "micro", MaxTokens: openai.Int(10), Temperature: openai.Float(0),
		Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")}})
	if err != nil || comp.Choices[0].Text != wantRaw {
		t.Errorf("completions: %v %q, want %q", err, comp.Choices[0].Text, wantRaw)
	}

	ol := newOllama(t, ts)
	opts := map[string]any{"temperature": 0, "num_predict": maxTokens}
	var chat strings.Builder
	if err := ol.Chat(ctx, &ollama.ChatRequest{Model: "micro", Messages: []ollama.Message{{Role: "user", Content: user}}, Options: opts},
		func(r ollama.ChatResponse) error { chat.WriteString(r.Message.Content); return nil }); err != nil {
		t.Fatal(err)
	}
	if chat.String() != want {
		t.Errorf("Ollama chat: %q, want %q", chat.String(), want)
	}
	var gen strings.Builder
	if err := ol.Generate(ctx, &ollama.GenerateRequest{Model: "micro", Prompt: user, Options: opts},
		func(r ollama.GenerateResponse) error { gen.WriteString(r.Response); return nil }); err != nil {
		t.Fatal(err)
	}
	if gen.String() != want {
		t.Errorf("Ollama generate: %q, want %q", gen.String(), want)
	}
	tags, err := ol.List(ctx)
	if err != nil || len(tags.Models) != 1 || tags.Models[0].Name != "micro" {
		t.Errorf("tags: %v %+v", err, tags)
	}
}

// gatedLoader wraps a loader so that the first Generate waits for a gate and
// every Generate records its user message in start order.
type gatedLoader struct {
	llm.Loader
	gate   chan struct{}
	pause  time.Duration
	mu     sync.Mutex
	starts []string
}

type gatedModel struct {
	llm.Model
	l *gatedLoader
}

func (g *gatedLoader) Load(ctx context.Context, name string) (llm.Model, error) {
	m, err := g.Loader.Load(ctx, name)
	if err != nil {
		return nil, err
	}
	return &gatedModel{m, g}, nil
}

func (m *gatedModel) Generate(ctx context.Context, req llm.Request, emit func(string) error) (llm.Result, error) {
	m.l.mu.Lock()
	m.l.starts = append(m.l.starts, req.Messages[len(req.Messages)-1].Content)
	first := len(m.l.starts) == 1
	m.l.mu.Unlock()
	if first {
		<-m.l.gate
	}
	// Space generations out so that the clients' own scheduling on a busy
	// machine cannot reorder when they see their streams end.
	time.Sleep(m.l.pause)
	return m.Model.Generate(ctx, req, emit)
}

// TestLoadArrivalOrder: 32 concurrent streaming clients against the real
// engine all complete, in arrival order, and leave no goroutines behind.
func TestLoadArrivalOrder(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	before := runtime.NumGoroutine()
	inner, _ := microLoader(t)
	l := &gatedLoader{Loader: inner, gate: make(chan struct{}), pause: 25 * time.Millisecond}
	s, err := api.New(api.Options{Loader: l})
	if err != nil {
		t.Fatal(err)
	}
	ts := newLoopbackServer(t, s)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: 64}}

	const n = 32
	var finished atomic.Int64
	order := make([]int64, n)
	errs := make([]error, n)
	texts := make([]string, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := `{"model":"micro","stream":true,"max_tokens":16,"temperature":0,"messages":[{"role":"user","content":"client ` + itoa(i) + `"}]}`
			resp, err := client.Post(ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			lines, err := readSSE(resp.Body)
			if err == nil && (resp.StatusCode != 200 || len(lines) == 0 || lines[len(lines)-1] != "[DONE]") {
				err = &statusErr{resp.StatusCode, strings.Join(lines, "|")}
			}
			errs[i] = err
			texts[i] = strings.Join(lines, "")
			order[i] = finished.Add(1)
		}()
		// Wait until the server has queued this client before starting the next,
		// so that "arrival order" is well defined.
		waitFor(t, func() bool { st := s.Status(); return st.Busy && st.Queued == i })
	}
	close(l.gate)
	wg.Wait()
	elapsed := time.Since(start)
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("client %d: %v", i, errs[i])
		}
		if order[i] != int64(i+1) {
			t.Errorf("client %d finished %d-th", i, order[i])
		}
		if l.starts[i] != "client "+itoa(i) {
			t.Errorf("generation %d served %q", i, l.starts[i])
		}
	}
	client.CloseIdleConnections()
	ts.Close()
	s.Close()
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before })
	t.Logf("%d streaming clients in %v; goroutines before %d, after %d", n, elapsed, before, runtime.NumGoroutine())
}

// TestLoadDisconnects: 100 streaming clients disconnect mid-stream or while
// queued; each generation stops at once and the server ends healthy and idle.
func TestLoadDisconnects(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	before := runtime.NumGoroutine()
	suffix := make([]string, 500)
	for i := range suffix {
		suffix[i] = "w"
	}
	l := &llmtest.Loader{Models: []string{"m"}, Suffix: suffix, TokenDelay: 2 * time.Millisecond} // a full answer takes ≥1 s
	s, err := api.New(api.Options{Loader: l, MaxQueue: 200})
	if err != nil {
		t.Fatal(err)
	}
	ts := newLoopbackServer(t, s)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}

	const n = 100
	var wg sync.WaitGroup
	var midStream, queued atomic.Int64
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if i%2 == 1 { // odd clients give up after a moment, most while still queued
				time.AfterFunc(time.Duration(i)*time.Millisecond, cancel)
			}
			body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
			req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/api/chat", strings.NewReader(body))
			resp, err := client.Do(req)
			if err != nil {
				queued.Add(1)
				return
			}
			defer resp.Body.Close()
			buf := make([]byte, 64)
			if _, err := resp.Body.Read(buf); err == nil {
				midStream.Add(1)
			}
			cancel() // hang up mid-stream
		}()
	}
	wg.Wait()
	waitFor(t, func() bool { st := s.Status(); return !st.Busy && st.Queued == 0 })
	elapsed := time.Since(start)
	if elapsed > 30*time.Second {
		t.Errorf("100 disconnecting clients took %v: generations were not cancelled", elapsed)
	}
	if l.Overlaps() != 0 {
		t.Errorf("%d generations overlapped", l.Overlaps())
	}
	// Healthy: a normal request still gets its whole answer.
	resp, err := client.Post(ts.URL+"/api/generate", "application/json", strings.NewReader(`{"model":"m","prompt":"still there","stream":false,"options":{"num_predict":3}}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"response":"echo: still there"`) {
		t.Errorf("after disconnects: %d %s", resp.StatusCode, b)
	}
	client.CloseIdleConnections()
	ts.Close()
	s.Close()
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before })
	t.Logf("100 clients (%d hung up mid-stream, %d while queued) in %v; %d generations ran; goroutines before %d, after %d",
		midStream.Load(), queued.Load(), elapsed, len(l.Requests()), before, runtime.NumGoroutine())
}

type statusErr struct {
	code int
	body string
}

func (e *statusErr) Error() string { return "status " + itoa(e.code) + ": " + e.body }

func itoa(i int) string { return strconvItoa(i) }

func strconvItoa(i int) string { return strconv.Itoa(i) }

// newLoopbackServer serves h on a free 127.0.0.1 port without registering
// cleanup, so a test can close it and then count goroutines.
func newLoopbackServer(t testing.TB, h http.Handler) *httptest.Server {
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
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

// TestConversationPrefixReuse: follow-up turns of interleaved conversations
// prefill only their new tokens (usage.prompt_tokens_details.cached_tokens).
func TestConversationPrefixReuse(t *testing.T) {
	l, _ := microLoader(t)
	_, ts := startServer(t, l, nil)
	oa := newOpenAI(ts)
	ctx := context.Background()
	ask := func(msgs ...openai.ChatCompletionMessageParamUnion) *openai.ChatCompletion {
		t.Helper()
		r, err := oa.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "micro", Messages: msgs, MaxTokens: openai.Int(8), Temperature: openai.Float(0)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	x1 := ask(openai.UserMessage("first conversation about the sea"))
	y1 := ask(openai.UserMessage("another one, about mountains"))
	x2 := ask(openai.UserMessage("first conversation about the sea"), openai.AssistantMessage(x1.Choices[0].Message.Content), openai.UserMessage("go on"))
	y2 := ask(openai.UserMessage("another one, about mountains"), openai.AssistantMessage(y1.Choices[0].Message.Content), openai.UserMessage("and?"))
	for _, c := range []struct {
		name        string
		first, next *openai.ChatCompletion
	}{{"x", x1, x2}, {"y", y1, y2}} {
		cached := c.next.Usage.PromptTokensDetails.CachedTokens
		if cached < c.first.Usage.PromptTokens || cached >= c.next.Usage.PromptTokens {
			t.Errorf("conversation %s: turn 2 reused %d of %d prompt tokens; turn 1 had %d", c.name, cached, c.next.Usage.PromptTokens, c.first.Usage.PromptTokens)
		}
	}
}

// TestEndToEndTinyPhi4Template runs the tiny model, which has phi-4's full
// tokenizer and chat template (<|im_start|>…<|im_sep|>…<|im_end|>), through
// both APIs: the answers equal the engine's greedy output.
func TestEndToEndTinyPhi4Template(t *testing.T) {
	if testing.Short() {
		t.Skip("the tiny model decodes at a few tokens per second on a shared CPU")
	}
	path := testrefs.Path(t, "models", "tiny", "phi3-random-tiny-Q4_K_M.gguf")
	info, err := local.PathInfo(path)
	if err != nil {
		t.Fatal(err)
	}
	info.Name = "tiny"
	l := &local.Loader{Catalog: func(context.Context) ([]llm.Info, error) { return []llm.Info{info}, nil }, Options: local.Options{SkipMemoryCheck: true}}
	_, ts := startServer(t, l, nil)
	ctx := context.Background()
	const maxTokens = 4
	msgs := []tokenizer.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Héllo — what's 2+2?"}}
	want := enginetest.Greedy(t, path, enginetest.Chat(t, msgs, true), maxTokens)
	if want == "" {
		t.Fatal("engine produced no text; the comparison would be empty")
	}

	oa := newOpenAI(ts)
	resp, err := oa.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:     "tiny",
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.SystemMessage(msgs[0].Content), openai.UserMessage(msgs[1].Content)},
		MaxTokens: openai.Int(maxTokens), Temperature: openai.Float(0),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != want {
		t.Errorf("OpenAI: %q, engine: %q", got, want)
	}
	var chat strings.Builder
	err = newOllama(t, ts).Chat(ctx, &ollama.ChatRequest{Model: "tiny", Options: map[string]any{"temperature": 0, "num_predict": maxTokens},
		Messages: []ollama.Message{{Role: "system", Content: msgs[0].Content}, {Role: "user", Content: msgs[1].Content}}},
		func(r ollama.ChatResponse) error { chat.WriteString(r.Message.Content); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if chat.String() != want {
		t.Errorf("Ollama: %q, engine: %q", chat.String(), want)
	}
}

// TestIdleUnloadWithEngine: the real model unloads when idle and reloads on
// the next request, answering the same.
func TestIdleUnloadWithEngine(t *testing.T) {
	l, _ := microLoader(t)
	s, ts := startServer(t, l, func(o *api.Options) { o.IdleUnload = 100 * time.Millisecond })
	oa := newOpenAI(ts)
	ask := func() string {
		r, err := oa.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "micro",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("again")}, MaxTokens: openai.Int(10), Temperature: openai.Float(0)})
		if err != nil {
			t.Fatal(err)
		}
		return r.Choices[0].Message.Content
	}
	first := ask()
	if s.Status().Loaded != "micro" {
		t.Fatalf("status %+v", s.Status())
	}
	waitFor(t, func() bool { return s.Status().Loaded == "" })
	if again := ask(); again != first || s.Status().Loaded != "micro" {
		t.Errorf("after reload: %q, before: %q", again, first)
	}
}
