// Package llmtest provides a deterministic fake llm.Model and llm.Loader for
// tests of the layers above the engine.
package llmtest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phi4mac/phi4mac/app/llm"
)

// Reply is the fake's answer to a request: the words "echo:" followed by
// the words of the last user message (or the raw prompt), then Suffix
// words, one word (with its leading space) per token.
func Reply(req llm.Request, suffix []string) []string {
	text := req.Prompt
	if req.Messages != nil {
		text = ""
		for _, m := range req.Messages {
			if m.Role == "user" {
				text = m.Content
			}
		}
	}
	words := []string{"echo:"}
	for _, w := range strings.Fields(text) {
		words = append(words, " "+w)
	}
	for _, w := range suffix {
		words = append(words, " "+w)
	}
	return words
}

// PromptTokens is the fake's prompt token count: one per word of all
// messages plus four per message for the template.
func PromptTokens(req llm.Request) int {
	if req.Messages == nil {
		return len(strings.Fields(req.Prompt))
	}
	n := 0
	for _, m := range req.Messages {
		n += 4 + len(strings.Fields(m.Content))
	}
	return n
}

// Model is a fake llm.Model. Its zero value is not usable; use Loader.
type Model struct {
	info   llm.Info
	loader *Loader
	closed atomic.Bool
}

// Info implements llm.Model.
func (m *Model) Info() llm.Info { return m.info }

// Close implements llm.Model.
func (m *Model) Close() error {
	if m.closed.Swap(true) {
		return fmt.Errorf("fake model %s closed twice", m.info.Name)
	}
	m.loader.closes.Add(1)
	return nil
}

// Generate implements llm.Model.
func (m *Model) Generate(ctx context.Context, req llm.Request, emit func(string) error) (llm.Result, error) {
	l := m.loader
	if m.closed.Load() {
		return llm.Result{}, fmt.Errorf("fake model %s used after Close", m.info.Name)
	}
	if l.active.Add(1) != 1 {
		l.overlaps.Add(1)
	}
	defer l.active.Add(-1)
	l.mu.Lock()
	l.requests = append(l.requests, req)
	hook := l.OnGenerate
	l.mu.Unlock()
	if hook != nil {
		hook(ctx, req)
	}
	res := llm.Result{PromptTokens: PromptTokens(req), FinishReason: "stop"}
	if res.PromptTokens > l.ContextLength && l.ContextLength > 0 {
		return res, llm.ErrContextFull
	}
	words := Reply(req, l.Suffix)
	if l.Respond != nil {
		words = l.Respond(req)
	}
	for i, w := range words {
		if req.Params.MaxTokens > 0 && i == req.Params.MaxTokens {
			res.FinishReason = "length"
			break
		}
		if l.TokenDelay > 0 {
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(l.TokenDelay):
			}
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		res.CompletionTokens++
		if err := emit(w); err != nil {
			return res, err
		}
	}
	return res, nil
}

// Loader is a fake llm.Loader with counters for what the code under test did.
type Loader struct {
	// Models are the names served; the first is the default.
	Models []string
	// Suffix words are appended to every reply.
	Suffix []string
	// Respond, when set, replaces Reply: it returns the text pieces (one
	// per token) answering req.
	Respond func(req llm.Request) []string
	// TokenDelay is slept (cancellably) before each token.
	TokenDelay time.Duration
	// ContextLength, when positive, makes longer prompts fail with ErrContextFull.
	ContextLength int
	// OnGenerate, when set, runs at the start of each Generate (e.g. to block).
	OnGenerate func(ctx context.Context, req llm.Request)

	mu       sync.Mutex
	requests []llm.Request
	loads    atomic.Int64
	closes   atomic.Int64
	active   atomic.Int64
	overlaps atomic.Int64
}

// List implements llm.Loader.
func (l *Loader) List(context.Context) ([]llm.Info, error) {
	out := make([]llm.Info, len(l.Models))
	for i, n := range l.Models {
		out[i] = l.info(n)
	}
	return out, nil
}

func (l *Loader) info(name string) llm.Info {
	return llm.Info{
		Name: name, Path: "/fake/" + name, Format: "gguf", Family: "phi3",
		ParameterSize: "1M", Quantization: "F32", Size: 1000,
		Modified: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), Digest: strings.Repeat("ab", 32),
		ContextLength: l.ContextLength, Source: "test",
	}
}

// Load implements llm.Loader.
func (l *Loader) Load(ctx context.Context, name string) (llm.Model, error) {
	if name == "" && len(l.Models) > 0 {
		name = l.Models[0]
	}
	for _, n := range l.Models {
		if n == name {
			l.loads.Add(1)
			return &Model{info: l.info(n), loader: l}, nil
		}
	}
	return nil, fmt.Errorf("load %q: %w", name, llm.ErrUnknownModel)
}

// Loads is how many times Load succeeded.
func (l *Loader) Loads() int { return int(l.loads.Load()) }

// Closes is how many models were closed.
func (l *Loader) Closes() int { return int(l.closes.Load()) }

// Overlaps counts Generate calls that started while another was running.
func (l *Loader) Overlaps() int { return int(l.overlaps.Load()) }

// Requests returns every request Generate received, in order.
func (l *Loader) Requests() []llm.Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]llm.Request(nil), l.requests...)
}
