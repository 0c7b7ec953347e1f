package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	ollama "github.com/ollama/ollama/api"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/phi4mac/phi4mac/internal/enginetest"
	"github.com/phi4mac/phi4mac/internal/testrefs"
	"github.com/phi4mac/phi4mac/tokenizer"
)

// TestServeWithOfficialClients starts `phi4mac serve` on a free loopback
// port with the micro model and drives it with the official OpenAI and
// Ollama Go clients: answers equal the engine's greedy output.
func TestServeWithOfficialClients(t *testing.T) {
	isolate(t)
	micro := testrefs.Path(t, "models", "micro", "phi3-random-micro-F32.gguf")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &lineWaiter{re: regexp.MustCompile(`serving on http://(\S+)`), found: make(chan string, 1)}
	root := newRootCmd()
	root.SetArgs([]string{"serve", "--addr", "127.0.0.1:0", "--model", micro, "--system", ""})
	root.SetOut(io.Discard)
	root.SetErr(stderr)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	var addr string
	select {
	case addr = <-stderr.found:
	case err := <-done:
		t.Fatalf("serve exited: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start")
	}
	const user, maxTokens = "Tell me about the sea.", 20
	want := enginetest.Greedy(t, micro, enginetest.Chat(t, []tokenizer.Message{{Role: "user", Content: user}}, false), maxTokens)
	if want == "" {
		t.Fatal("empty engine output: the comparison would prove nothing")
	}

	oa := openai.NewClient(option.WithBaseURL("http://"+addr+"/v1/"), option.WithAPIKey("x"), option.WithMaxRetries(0))
	page, err := oa.Models.List(ctx)
	if err != nil || len(page.Data) == 0 {
		t.Fatalf("models: %v %+v", err, page)
	}
	model := page.Data[0].ID // the --model path, listed first
	params := openai.ChatCompletionNewParams{Model: model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(user)},
		MaxTokens: openai.Int(maxTokens), Temperature: openai.Float(0)}
	resp, err := oa.Chat.Completions.New(ctx, params)
	if err != nil || resp.Choices[0].Message.Content != want {
		t.Errorf("OpenAI chat: %v %q, want %q", err, resp.Choices[0].Message.Content, want)
	}
	stream := oa.Chat.Completions.NewStreaming(ctx, params)
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil || acc.Choices[0].Message.Content != want {
		t.Errorf("OpenAI stream: %v %q, want %q", err, acc.Choices[0].Message.Content, want)
	}

	u, _ := url.Parse("http://" + addr)
	ol := ollama.NewClient(u, http.DefaultClient)
	opts := map[string]any{"temperature": 0, "num_predict": maxTokens}
	var chat, gen strings.Builder
	if err := ol.Chat(ctx, &ollama.ChatRequest{Model: model, Messages: []ollama.Message{{Role: "user", Content: user}}, Options: opts},
		func(r ollama.ChatResponse) error { chat.WriteString(r.Message.Content); return nil }); err != nil || chat.String() != want {
		t.Errorf("Ollama chat: %v %q, want %q", err, chat.String(), want)
	}
	if err := ol.Generate(ctx, &ollama.GenerateRequest{Model: model, Prompt: user, Options: opts},
		func(r ollama.GenerateResponse) error { gen.WriteString(r.Response); return nil }); err != nil || gen.String() != want {
		t.Errorf("Ollama generate: %v %q, want %q", err, gen.String(), want)
	}
	tags, err := ol.List(ctx)
	if err != nil || len(tags.Models) == 0 || tags.Models[0].Name != model {
		t.Errorf("tags: %v %+v", err, tags)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}
