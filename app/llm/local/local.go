// Package local runs llm.Models on phi4mac's own engine: it renders chat
// messages through the model's chat template, tokenizes, keeps a small pool
// of engine sessions so that each conversation's KV cache prefix is reused
// across turns, and streams decoded text.
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/phi4mac/phi4mac/app/llm"
	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/cpu"
	"github.com/phi4mac/phi4mac/engine/demo"
	"github.com/phi4mac/phi4mac/tokenizer"
)

// Options configure how models are opened.
type Options struct {
	// ContextLength is each session's context in tokens; 0: the engine's
	// default (min(model context, 4096)).
	ContextLength int
	// Sessions is how many conversations keep their KV cache (default 2;
	// each costs a full KV cache: 0.8 GB for phi-4 at 4096 tokens in F16).
	Sessions int
	// NewBackend makes the backend a model runs on; nil: the CPU backend.
	// Its error (e.g. a GPU that was asked for but is missing) fails the load.
	NewBackend func() (engine.Backend, error)
	// Logger receives load notes; nil discards them.
	Logger *slog.Logger
	// SkipMemoryCheck loads even when the OS reports too little memory.
	SkipMemoryCheck bool
}

// Model is an engine-backed llm.Model.
type Model struct {
	info llm.Info
	m    *engine.Model
	tok  *tokenizer.Tokenizer
	opts Options

	mu       sync.Mutex // Generate calls are serialised by callers; this guards the pool
	sessions []*slot
	clock    int64
}

// slot is one pooled session and the tokens its cache holds.
type slot struct {
	s      *engine.Session
	prompt []int // the last prompt run on it
	used   int64
}

// Open loads the model at info.Path (a GGUF file or a Hugging Face folder).
func Open(ctx context.Context, info llm.Info, opts Options) (*Model, error) {
	opts = opts.withDefaults()
	eopts, err := opts.engineOptions()
	if err != nil {
		return nil, fmt.Errorf("open model %s: %w", info.Path, err)
	}
	m, err := engine.Load(ctx, info.Path, eopts)
	if err != nil {
		return nil, fmt.Errorf("open model %s: %w", info.Path, err)
	}
	return wrap(m, info, opts)
}

// DemoName is the name the embedded demo model is listed under.
const DemoName = "demo"

// OpenDemo loads the embedded demo model (engine/demo: a 260K-parameter
// TinyStories Llama). It has no chat template: chat requests are answered
// by continuing the last user message as a story.
func OpenDemo(ctx context.Context, opts Options) (*Model, error) {
	opts = opts.withDefaults()
	eopts, err := opts.engineOptions()
	if err != nil {
		return nil, fmt.Errorf("open demo model: %w", err)
	}
	m, err := demo.Load(ctx, eopts)
	if err != nil {
		return nil, fmt.Errorf("open demo model: %w", err)
	}
	return wrap(m, DemoInfo(), opts)
}

// DemoInfo describes the embedded demo model. Its modification time is the
// running binary's, since the model is part of it (APIs that list models
// report a date, and the zero time would read as year 1).
func DemoInfo() llm.Info {
	info := llm.Info{Name: DemoName, Path: demo.Name, Format: "gguf", Family: "llama", ParameterSize: "260K",
		Quantization: "F32", Size: int64(len(demo.Bytes())), Source: "demo"}
	if exe, err := os.Executable(); err == nil {
		if fi, err := os.Stat(exe); err == nil {
			info.Modified = fi.ModTime()
		}
	}
	return info
}

func (o Options) withDefaults() Options {
	if o.Sessions <= 0 {
		o.Sessions = 2
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func (o Options) engineOptions() (engine.Options, error) {
	backend := engine.Backend(nil)
	if o.NewBackend != nil {
		b, err := o.NewBackend()
		if err != nil {
			return engine.Options{}, err
		}
		backend = b
	} else {
		backend = cpu.New(cpu.Options{})
	}
	return engine.Options{Backend: backend, Logger: o.Logger, SkipMemoryCheck: o.SkipMemoryCheck}, nil
}

func wrap(m *engine.Model, info llm.Info, opts Options) (*Model, error) {
	tok := m.Tokenizer()
	if tok == nil {
		m.Close()
		return nil, fmt.Errorf("open model %s: it has no tokenizer", info.Path)
	}
	cfg := m.Config()
	if info.Name == "" {
		info.Name = NameFromPath(info.Path)
	}
	if info.ContextLength == 0 {
		info.ContextLength = cfg.MaxContext
	}
	if info.Family == "" {
		info.Family = string(cfg.Architecture)
	}
	if info.Format == "" {
		info.Format = m.Info().Format
	}
	return &Model{info: info, m: m, tok: tok, opts: opts}, nil
}

// NameFromPath is the name a model at path is listed under when it has no
// better one: the file name without ".gguf", or the folder's name.
func NameFromPath(path string) string {
	return strings.TrimSuffix(filepath.Base(filepath.Clean(path)), ".gguf")
}

// Info implements llm.Model.
func (m *Model) Info() llm.Info { return m.info }

// Tokenizer returns the model's tokenizer.
func (m *Model) Tokenizer() *tokenizer.Tokenizer { return m.tok }

// Engine returns the underlying engine model.
func (m *Model) Engine() *engine.Model { return m.m }

// Close implements llm.Model.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, sl := range m.sessions {
		errs = append(errs, sl.s.Close())
	}
	m.sessions = nil
	errs = append(errs, m.m.Close())
	return errors.Join(errs...)
}

// PromptIDs renders and tokenizes req the way Generate does.
func (m *Model) PromptIDs(req llm.Request) ([]int, error) {
	if req.Messages == nil {
		// A raw prompt is already formatted by the client (Ollama "raw",
		// /v1/completions): the control tokens it spells are meant.
		return m.tok.Encode(req.Prompt, tokenizer.EncodeOptions{AllowSpecial: true, AddBOS: m.tok.WantsBOS()}), nil
	}
	if !m.tok.HasChatTemplate() {
		// A base model (such as the demo): continue the last user message.
		last := ""
		for _, x := range req.Messages {
			if x.Role == "user" {
				last = x.Content
			}
		}
		return m.tok.Encode(last, tokenizer.EncodeOptions{AddBOS: m.tok.WantsBOS()}), nil
	}
	msgs := make([]tokenizer.Message, len(req.Messages))
	for i, x := range req.Messages {
		msgs[i] = tokenizer.Message{Role: x.Role, Content: x.Content}
	}
	// EncodeChat keeps control-token text typed in messages ("<|im_end|>")
	// ordinary text, so a message cannot forge turns of the conversation.
	ids, err := m.tok.EncodeChat(msgs, true)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", llm.ErrBadRequest, err)
	}
	return ids, nil
}

// session picks a pooled session for ids: the one whose previous prompt
// ids continue (longest first), else a new one while the pool has room,
// else the least recently used. So interleaved conversations each keep
// their own KV cache, and a follow-up turn prefills only its new tokens.
func (m *Model) session(ids []int) (*slot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clock++
	var best *slot
	for _, sl := range m.sessions {
		if len(sl.prompt) > 0 && commonPrefix(sl.prompt, ids) == len(sl.prompt) && (best == nil || len(sl.prompt) > len(best.prompt)) {
			best = sl
		}
	}
	if best == nil && len(m.sessions) < m.opts.Sessions {
		s, err := m.m.NewSession(engine.SessionOptions{Ctx: m.opts.ContextLength})
		if err != nil {
			return nil, fmt.Errorf("new session: %w", err)
		}
		best = &slot{s: s}
		m.sessions = append(m.sessions, best)
	}
	if best == nil {
		best = m.sessions[0]
		for _, sl := range m.sessions {
			if sl.used < best.used {
				best = sl
			}
		}
	}
	best.used = m.clock
	return best, nil
}

func commonPrefix(a, b []int) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// Generate implements llm.Model.
func (m *Model) Generate(ctx context.Context, req llm.Request, emit func(string) error) (llm.Result, error) {
	ids, err := m.PromptIDs(req)
	if err != nil {
		return llm.Result{}, err
	}
	sl, err := m.session(ids)
	if err != nil {
		return llm.Result{}, err
	}
	if ctxLen := sl.s.Options().Ctx; len(ids) >= ctxLen {
		return llm.Result{PromptTokens: len(ids)}, fmt.Errorf("%w: %d prompt tokens, context %d", llm.ErrContextFull, len(ids), ctxLen)
	}
	p := req.Params
	er := engine.Request{
		Prompt:    ids,
		MaxTokens: p.MaxTokens,
		Sampling:  engine.Sampling{Temperature: p.Temperature, TopK: p.TopK, TopP: p.TopP},
		StopIDs:   m.tok.StopIDs(),
	}
	if p.HasSeed {
		er.Sampling.Seed = uint64(p.Seed)
		if er.Sampling.Seed == 0 {
			er.Sampling.Seed = 0x9E3779B97F4A7C15 // engine: 0 means random; keep seed 0 reproducible
		}
	}
	dec := m.tok.NewStreamDecoder()
	var res llm.Result
	res.PromptTokens = len(ids)
	start := time.Now()
	er2, err := sl.s.Generate(ctx, er, func(t engine.Token) error {
		res.CompletionTokens++
		if m.tok.IsSpecial(t.ID) { // control tokens are not text
			return nil
		}
		if s := dec.Push(t.ID); s != "" {
			return emit(s)
		}
		return nil
	})
	sl.prompt = ids
	res.CachedTokens = er2.CachedTokens
	res.PromptTime = er2.PrefillTime
	res.GenerateTime = er2.DecodeTime
	if res.GenerateTime == 0 {
		res.GenerateTime = max(time.Since(start)-res.PromptTime, 0)
	}
	switch er2.Finish {
	case engine.FinishLength, engine.FinishContext:
		res.FinishReason = "length"
	default:
		res.FinishReason = "stop"
	}
	if errors.Is(err, engine.ErrContextFull) {
		if res.CompletionTokens == 0 {
			return res, fmt.Errorf("%w: %v", llm.ErrContextFull, err)
		}
		err = nil
	}
	if err != nil {
		return res, err
	}
	if s := dec.Flush(); s != "" {
		if err := emit(s); err != nil {
			return res, err
		}
	}
	return res, nil
}

// PathInfo describes a model file or folder found at path, for models not
// in any store.
func PathInfo(path string) (llm.Info, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return llm.Info{}, fmt.Errorf("%w: %v", llm.ErrUnknownModel, err)
	}
	info := llm.Info{Name: NameFromPath(path), Path: path, Modified: fi.ModTime(), Source: "path"}
	if fi.IsDir() {
		info.Format = "safetensors"
		if _, err := os.Stat(filepath.Join(path, "config.json")); err != nil {
			return llm.Info{}, fmt.Errorf("%w: %s has no config.json", llm.ErrUnknownModel, path)
		}
	} else {
		info.Format = "gguf"
		info.Size = fi.Size()
	}
	return info, nil
}

// Loader implements llm.Loader over a catalogue of models.
type Loader struct {
	// Catalog lists the known models, default first.
	Catalog func(ctx context.Context) ([]llm.Info, error)
	// Options apply to every model opened.
	Options Options
	// Demo adds the embedded demo model, listed last (so it is the
	// default only when nothing else is found).
	Demo bool
}

// List implements llm.Loader.
func (l *Loader) List(ctx context.Context) ([]llm.Info, error) {
	var list []llm.Info
	if l.Catalog != nil {
		var err error
		if list, err = l.Catalog(ctx); err != nil {
			return nil, err
		}
	}
	if l.Demo {
		list = append(list, DemoInfo())
	}
	return list, nil
}

// Load implements llm.Loader: name is a catalogue name or a path.
func (l *Loader) Load(ctx context.Context, name string) (llm.Model, error) {
	list, err := l.List(ctx)
	if err != nil {
		return nil, err
	}
	for i, info := range list {
		if info.Name == name || (name == "" && i == 0) {
			if info.Source == "demo" {
				return OpenDemo(ctx, l.Options)
			}
			return Open(ctx, info, l.Options)
		}
	}
	if name == "" {
		return nil, fmt.Errorf("%w: no models installed", llm.ErrUnknownModel)
	}
	info, err := PathInfo(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %q is neither a listed model nor a model file or folder (see `phi4mac models`)", llm.ErrUnknownModel, name)
	}
	return Open(ctx, info, l.Options)
}
