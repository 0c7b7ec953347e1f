package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/phi4mac/phi4mac/engine/quant"
)

// ErrContextFull reports a prompt, or a generation, that does not fit in the
// session's context. Nothing is ever silently truncated.
var ErrContextFull = errors.New("context full")

// KVType is the element type of a session's KV cache.
type KVType int

const (
	// KVF16 stores keys and values as half floats (the default; what
	// llama.cpp uses by default).
	KVF16 KVType = iota
	// KVF32 stores them as float32 (exact; for reference checks).
	KVF32
)

func (k KVType) quant() quant.Type {
	if k == KVF32 {
		return quant.F32
	}
	return quant.F16
}

// String returns "f16" or "f32".
func (k KVType) String() string {
	if k == KVF32 {
		return "f32"
	}
	return "f16"
}

// ParseKVType parses "f16" or "f32".
func ParseKVType(s string) (KVType, error) {
	switch strings.ToLower(s) {
	case "f16", "":
		return KVF16, nil
	case "f32":
		return KVF32, nil
	}
	return 0, fmt.Errorf("unknown KV cache type %q (want f16 or f32)", s)
}

// SessionOptions configures a Session.
type SessionOptions struct {
	// Ctx is the context length in tokens (prompt and generated); 0 means
	// min(the model's context length, 4096). For LongRoPE models it also
	// selects the factor set (see Config.LongFactors).
	Ctx int
	// KV is the KV cache element type (default F16).
	KV KVType
	// Batch is the number of prompt tokens processed per forward pass
	// (0: 512).
	Batch int
}

// Session is one conversation: a KV cache holding the tokens of the
// previous exchange, so that a follow-up prompt sharing that prefix only
// prefills its new tokens. A Session is not safe for concurrent use.
type Session struct {
	m      *Model
	opts   SessionOptions
	rope   *Rope
	cache  KVCache
	s      *scratch
	tokens []int // tokens whose keys and values are in the cache, in order
	logits []float32
	closed bool // guarded by m.mu
	// availMem reports the memory Forward may allocate for all-position
	// logits (AvailableMemory; replaced in tests).
	availMem func() (int64, bool)
}

// NewSession allocates a session's KV cache and buffers.
func (m *Model) NewSession(opts SessionOptions) (*Session, error) {
	if opts.Ctx == 0 {
		opts.Ctx = min(m.cfg.MaxContext, 4096)
	}
	if opts.Ctx < 1 || opts.Ctx > 1<<22 {
		return nil, fmt.Errorf("new session: context length %d outside [1, %d]", opts.Ctx, 1<<22)
	}
	if opts.Batch <= 0 {
		opts.Batch = 512
	}
	opts.Batch = min(opts.Batch, opts.Ctx)
	if opts.Ctx > m.cfg.MaxContext {
		m.log.Warn("context longer than the model was trained for", "ctx", opts.Ctx, "model", m.cfg.MaxContext)
	}
	elem := int64(2)
	if opts.KV == KVF32 {
		elem = 4
	}
	kvBytes := 2 * int64(m.cfg.Layers) * int64(opts.Ctx) * int64(m.cfg.KVHeads) * int64(m.cfg.HeadDim) * elem
	if avail, ok := AvailableMemory(); ok && kvBytes > avail {
		return nil, fmt.Errorf("new session: %w: a %d-token %s KV cache needs %.1f GiB but %.1f GiB is available; use a shorter context",
			ErrNoMemory, opts.Ctx, opts.KV, float64(kvBytes)/(1<<30), float64(avail)/(1<<30))
	}
	if sb := scratchBytes(&m.cfg, opts.Batch); sb > 0 {
		if avail, ok := AvailableMemory(); ok && kvBytes+sb > avail {
			return nil, fmt.Errorf("new session: %w: %d-token batches need %.1f GiB of activations besides the %.1f GiB KV cache, but %.1f GiB is available; use a smaller batch or context",
				ErrNoMemory, opts.Batch, float64(sb)/(1<<30), float64(kvBytes)/(1<<30), float64(avail)/(1<<30))
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errors.New("new session: model is closed")
	}
	cache, err := m.backend.NewKVCache(KVSpec{Layers: m.cfg.Layers, Ctx: opts.Ctx, KVHeads: m.cfg.KVHeads,
		HeadDim: m.cfg.HeadDim, Type: opts.KV.quant()})
	if err != nil {
		return nil, fmt.Errorf("new session: %w", err)
	}
	return &Session{m: m, opts: opts, rope: m.cfg.Rope(opts.Ctx), cache: cache,
		s: newScratch(m.backend, &m.cfg, opts.Batch), logits: make([]float32, m.cfg.Vocab), availMem: AvailableMemory}, nil
}

// Options returns the session's settings (with defaults filled in).
func (s *Session) Options() SessionOptions { return s.opts }

// Tokens returns the tokens currently held in the KV cache.
func (s *Session) Tokens() []int { return append([]int(nil), s.tokens...) }

// Reset forgets the cached tokens.
func (s *Session) Reset() { s.tokens = s.tokens[:0] }

// Close releases the KV cache. Closing twice is harmless; the session must
// not be used afterwards (Generate and Forward return an error).
func (s *Session) Close() error {
	s.m.mu.Lock() // the backend is used by one goroutine at a time
	defer s.m.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.tokens = nil
	// Also after Model.Close: a backend may hold caches apart from what
	// its Close releases (the GPU backend's KV buffers).
	return s.cache.Close()
}

// usable reports why the session cannot run a forward pass, if it cannot.
// The caller holds s.m.mu.
func (s *Session) usable() error {
	switch {
	case s.closed:
		return errors.New("session is closed")
	case s.m.closed:
		return errors.New("model is closed")
	}
	return nil
}

// checkNew validates ids as the next tokens of the sequence and returns the
// position of the first one.
func (s *Session) checkNew(ids []int) (int, error) {
	if len(ids) == 0 {
		return 0, errors.New("no tokens")
	}
	if err := s.m.checkIDs(ids); err != nil {
		return 0, err
	}
	pos := len(s.tokens)
	if pos+len(ids) > s.opts.Ctx {
		return 0, fmt.Errorf("%d cached + %d new tokens exceed the %d-token context: %w", pos, len(ids), s.opts.Ctx, ErrContextFull)
	}
	return pos, nil
}

// checkLogitsMemory fails, wrapping ErrNoMemory, when n positions' logits
// do not fit in the available memory.
func (s *Session) checkLogitsMemory(n int) error {
	vocab := s.m.cfg.Vocab
	need := int64(n) * int64(vocab) * 4
	avail, ok := s.availMem()
	if !ok || need <= avail {
		return nil
	}
	return fmt.Errorf("%w: the logits of all %d positions (%d tokens × %d vocab × 4 bytes) need %.2f GiB but %.2f GiB is available; use ForwardEach to handle one position at a time, or forward fewer tokens",
		ErrNoMemory, n, n, vocab, float64(need)/(1<<30), float64(avail)/(1<<30))
}

// Forward appends ids to the cached sequence and returns the logits of the
// last new position ([vocab]), or of every new position ([len(ids)][vocab]
// flattened) when all is set. It is the low-level entry point for
// evaluation; Generate is the one for text generation.
//
// With all set the result takes len(ids)×vocab×4 bytes (3.3 GB for 8192
// phi-4 tokens): Forward checks that against the available memory first
// and fails with an error wrapping ErrNoMemory rather than allocate it.
// ForwardEach hands over one position at a time instead.
//
// On error (including cancellation of ctx) the session's tokens are those
// it held before the call.
func (s *Session) Forward(ctx context.Context, ids []int, all bool) ([]float32, error) {
	pos, err := s.checkNew(ids)
	if err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	if all {
		if err := s.checkLogitsMemory(len(ids)); err != nil {
			return nil, fmt.Errorf("forward: %w", err)
		}
	}
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if err := s.usable(); err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	var out []float32
	if all {
		out = make([]float32, len(ids)*s.m.cfg.Vocab)
	}
	var emit func(Buffer, int) error
	if all {
		emit = func(b Buffer, i int) error { return s.m.backend.Read(b, out[i*s.m.cfg.Vocab:]) }
	}
	buf, err := s.m.prefill(ctx, s.s, s.cache, s.rope, ids, pos, emit)
	if err != nil {
		s.tokens = s.tokens[:pos] // the cache past pos is undefined now
		return nil, err
	}
	if !all {
		out = make([]float32, s.m.cfg.Vocab)
		if err := s.m.backend.Read(buf, out); err != nil {
			// The failed work may not have filled the cache: the tokens
			// stay those of before.
			return nil, fmt.Errorf("forward: %w", err)
		}
	}
	s.tokens = append(s.tokens, ids...)
	return out, nil
}

// ForwardEach appends ids to the cached sequence, as Forward does, and
// calls fn with the logits of each new position in order: i indexes ids,
// and logits ([vocab]) are what the model predicts after ids[i]. The
// logits slice is reused: it is only valid until fn returns, so copy what
// must be kept. Memory stays at one vocab-sized row however many ids there
// are, which makes ForwardEach the way to score long texts.
//
// fn runs while the model is locked and must not use the model or any of
// its sessions. If fn returns an error, ForwardEach stops at once and
// returns it. ctx is checked before each forward pass (of up to the
// session's batch of positions): once it is cancelled, ForwardEach hands
// over the rest of the pass under way, then returns ctx's error unless
// that pass was the last. On an error the session's tokens are those it
// held before the call, so the session stays usable.
func (s *Session) ForwardEach(ctx context.Context, ids []int, fn func(i int, logits []float32) error) error {
	if fn == nil {
		return errors.New("forward each: nil callback")
	}
	pos, err := s.checkNew(ids)
	if err != nil {
		return fmt.Errorf("forward each: %w", err)
	}
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := s.usable(); err != nil {
		return fmt.Errorf("forward each: %w", err)
	}
	row := make([]float32, m.cfg.Vocab)
	_, err = m.prefill(ctx, s.s, s.cache, s.rope, ids, pos, func(b Buffer, i0 int) error {
		for r := range b.Rows() {
			if err := m.backend.Read(m.backend.Rows(b, r, 1), row); err != nil {
				return fmt.Errorf("forward each: %w", err)
			}
			if err := fn(i0+r, row); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.tokens = s.tokens[:pos] // the cache past pos is undefined now
		return err
	}
	s.tokens = append(s.tokens, ids...)
	return nil
}

// Request is one generation request.
type Request struct {
	// Prompt is the full token sequence of the conversation so far; the
	// session reuses the cached prefix it shares with the previous call.
	Prompt []int
	// MaxTokens caps the number of generated tokens (0: until a stop or
	// the context is full).
	MaxTokens int
	Sampling  Sampling
	// StopIDs end generation when sampled (the stop token is not
	// returned). nil means the tokenizer's stop ids (or the model's EOS);
	// an empty non-nil slice means none.
	StopIDs []int
	// StopStrings end generation when the generated text contains one of
	// them; the text from the stop string on is not returned.
	StopStrings []string
}

// Token is one generated token as streamed to the callback. ID is -1 for a
// final piece of text held back while it might have begun a stop string.
type Token struct {
	ID   int
	Text string // new text, complete UTF-8; may be empty
}

// FinishReason says why generation ended.
type FinishReason string

// The finish reasons.
const (
	FinishStop      FinishReason = "stop"      // a stop id or stop string
	FinishLength    FinishReason = "length"    // MaxTokens reached
	FinishContext   FinishReason = "context"   // the context is full (with ErrContextFull)
	FinishCancelled FinishReason = "cancelled" // ctx was cancelled or the callback failed
)

// Result summarises a generation.
type Result struct {
	Tokens       []int  // generated ids (without the stop token)
	Text         string // generated text (when the model has a tokenizer)
	PromptTokens int    // tokens in the prompt
	CachedTokens int    // prompt tokens reused from the KV cache
	Finish       FinishReason
	StopID       int // the stop token sampled, or -1
	PrefillTime  time.Duration
	DecodeTime   time.Duration // from the first to the last generated token
}

// Generate prefills the prompt (reusing the cached prefix) and generates
// tokens, calling fn with each one as it is produced. It stops at a stop id
// or string, after MaxTokens, when the context is full (returning
// ErrContextFull with the partial result), when ctx is cancelled (returning
// ctx.Err()) or when fn returns an error (returning it).
func (s *Session) Generate(ctx context.Context, req Request, fn func(Token) error) (Result, error) {
	res := Result{PromptTokens: len(req.Prompt), StopID: -1}
	m := s.m
	if len(req.Prompt) == 0 {
		return res, errors.New("generate: empty prompt")
	}
	if err := m.checkIDs(req.Prompt); err != nil {
		return res, fmt.Errorf("generate: prompt %w", err)
	}
	if err := req.Sampling.check(); err != nil {
		return res, fmt.Errorf("generate: %w", err)
	}
	if len(req.Prompt) > s.opts.Ctx {
		return res, fmt.Errorf("generate: the prompt has %d tokens but the context holds %d; shorten the conversation or use a longer context: %w",
			len(req.Prompt), s.opts.Ctx, ErrContextFull)
	}
	stops := req.StopIDs
	if stops == nil {
		stops = m.stopIDs()
	}
	isStop := make(map[int]bool, len(stops))
	for _, id := range stops {
		isStop[id] = true
	}
	dec := m.newTextDecoder()
	stopText := newStopMatcher(req.StopStrings)
	var text strings.Builder
	var t1 time.Time // when decoding started
	emit := func(t Token) error {
		text.WriteString(t.Text)
		if fn == nil {
			return nil
		}
		return fn(t)
	}
	stringStop := false // a stop string matched: nothing after it is shown
	finish := func(reason FinishReason, err error) (Result, error) {
		if tail := stopText.flush(dec.Flush()); tail != "" && !stringStop {
			if e := emit(Token{ID: -1, Text: tail}); e != nil && err == nil {
				err, reason = e, FinishCancelled
			}
		}
		res.Finish, res.Text = reason, text.String()
		if !t1.IsZero() {
			res.DecodeTime = time.Since(t1)
		}
		return res, err
	}

	// Reuse the longest cached prefix; at least one token must be run to
	// get logits.
	k := commonPrefix(s.tokens, req.Prompt)
	if k == len(req.Prompt) {
		k--
	}
	s.tokens = s.tokens[:k]
	res.CachedTokens = k
	sam := newSampler(req.Sampling)
	history := append([]int(nil), req.Prompt...)

	t0 := time.Now()
	next, err := s.step(ctx, req.Prompt[k:], &req.Sampling, sam, history)
	if err != nil {
		return finish(FinishCancelled, err)
	}
	res.PrefillTime = time.Since(t0)
	t1 = time.Now()
	for {
		if isStop[next] {
			res.StopID = next
			return finish(FinishStop, nil)
		}
		res.Tokens = append(res.Tokens, next)
		history = append(history, next)
		piece, hit := stopText.push(dec.Push(next))
		if err := emit(Token{ID: next, Text: piece}); err != nil {
			return finish(FinishCancelled, err)
		}
		if hit {
			stringStop = true
			return finish(FinishStop, nil)
		}
		if req.MaxTokens > 0 && len(res.Tokens) >= req.MaxTokens {
			return finish(FinishLength, nil)
		}
		if len(s.tokens) >= s.opts.Ctx {
			return finish(FinishContext, fmt.Errorf("generate: %d tokens fill the %d-token context: %w", len(s.tokens), s.opts.Ctx, ErrContextFull))
		}
		if err := ctx.Err(); err != nil {
			return finish(FinishCancelled, err)
		}
		next, err = s.step(ctx, []int{next}, &req.Sampling, sam, history)
		if err != nil {
			return finish(FinishCancelled, err)
		}
	}
}

// step runs ids through the model after the cached tokens and samples the
// next token.
func (s *Session) step(ctx context.Context, ids []int, sp *Sampling, sam *sampler, history []int) (int, error) {
	m := s.m
	pos := len(s.tokens)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := s.usable(); err != nil {
		return 0, fmt.Errorf("generate: %w", err)
	}
	buf, err := m.prefill(ctx, s.s, s.cache, s.rope, ids, pos, nil)
	if err != nil {
		return 0, err
	}
	s.tokens = append(s.tokens, ids...)
	if sp.greedy() {
		am, err := m.backend.Argmax(buf)
		if err != nil {
			return 0, err
		}
		return am[0], nil
	}
	if err := m.backend.Read(buf, s.logits); err != nil {
		return 0, err
	}
	sam.penalise(s.logits, history)
	return sam.sample(s.logits), nil
}

func commonPrefix(a, b []int) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// stopMatcher holds back generated text that might be the beginning of a
// stop string.
type stopMatcher struct {
	stops   []string
	pending string
}

func newStopMatcher(stops []string) *stopMatcher {
	var nonEmpty []string
	for _, s := range stops {
		if s != "" {
			nonEmpty = append(nonEmpty, s)
		}
	}
	return &stopMatcher{stops: nonEmpty}
}

// push adds text and returns what can be shown now, and whether a stop
// string was found (the returned text then ends just before it).
func (m *stopMatcher) push(text string) (string, bool) {
	if len(m.stops) == 0 {
		return text, false
	}
	m.pending += text
	cut := -1
	for _, s := range m.stops {
		if i := strings.Index(m.pending, s); i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut >= 0 {
		out := m.pending[:cut]
		m.pending = ""
		return out, true
	}
	hold := 0
	for _, s := range m.stops {
		for n := min(len(s)-1, len(m.pending)); n > hold; n-- {
			if strings.HasSuffix(m.pending, s[:n]) {
				hold = n
				break
			}
		}
	}
	out := m.pending[:len(m.pending)-hold]
	m.pending = m.pending[len(m.pending)-hold:]
	return out, false
}

// flush returns the held-back text plus tail.
func (m *stopMatcher) flush(tail string) string {
	out := m.pending + tail
	m.pending = ""
	return out
}
