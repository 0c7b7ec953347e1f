// Package llm is the app layer's view of a language model: what the API
// server, the terminal chat and the URL handler need (chat messages in,
// streamed text out, token counts back), independent of how the engine
// computes it. The engine-backed implementation lives in app/llm/local;
// app/llm/llmtest has a deterministic fake for tests.
package llm

import (
	"context"
	"errors"
	"time"
)

// Message is one chat turn.
type Message struct {
	Role    string // "system", "user" or "assistant"
	Content string
}

// Params are the sampling parameters of one request, already resolved
// against the user's defaults.
type Params struct {
	Temperature float64 // 0 = greedy
	TopP        float64 // 0 or 1 = off
	TopK        int     // 0 = off
	Seed        int64
	HasSeed     bool
	MaxTokens   int // 0 = up to the context length
}

// Request is one generation. Exactly one of Messages (rendered through the
// model's chat template with the assistant prompt added) and Prompt (raw
// text, no template) is used: Messages when non-nil.
type Request struct {
	Messages []Message
	Prompt   string
	Params   Params
}

// Result reports how a generation ended. It is valid even when Generate
// returns an error (counts so far).
type Result struct {
	PromptTokens     int
	CachedTokens     int // prompt tokens whose KV was reused from an earlier turn
	CompletionTokens int
	// FinishReason is "stop" (end-of-turn token) or "length" (MaxTokens or
	// the context filled up).
	FinishReason string
	LoadDuration time.Duration
	PromptTime   time.Duration
	GenerateTime time.Duration
}

// Info describes a model that can be loaded.
type Info struct {
	Name          string // what clients send as "model"
	Path          string // file or folder
	Format        string // "gguf" or "safetensors"
	Family        string // e.g. "phi3"
	ParameterSize string // e.g. "14.7B"
	Quantization  string // e.g. "Q4_K_M", "BF16"
	Size          int64  // bytes on disk
	Modified      time.Time
	Digest        string // sha256 hex when known
	ContextLength int
	Source        string // "phi4mac", "ollama", "lmstudio", "path", "demo"
}

// Model is a loaded model. Generate calls are never concurrent: callers
// serialise them. emit receives text pieces as they become complete UTF-8;
// if it returns an error, generation stops and Generate returns that error
// (wrapped or not) together with the counts so far.
type Model interface {
	Info() Info
	Generate(ctx context.Context, req Request, emit func(text string) error) (Result, error)
	Close() error
}

// Loader finds and loads models by name.
type Loader interface {
	// List returns the models that Load accepts, default first.
	List(ctx context.Context) ([]Info, error)
	// Load loads the named model; "" means the default one.
	Load(ctx context.Context, name string) (Model, error)
}

// Errors callers branch on.
var (
	// ErrUnknownModel: Load was given a name it cannot resolve.
	ErrUnknownModel = errors.New("model not found")
	// ErrContextFull: the prompt does not fit the model's context window.
	ErrContextFull = errors.New("prompt does not fit the context window")
	// ErrBadRequest: the request cannot be rendered (e.g. bad roles).
	ErrBadRequest = errors.New("bad request")
)
