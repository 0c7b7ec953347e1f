package tokenizer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/phi4mac/phi4mac/engine/weights"
)

// GGUF token types (llama.cpp's llama_token_type).
const (
	ggufNormal      = 1
	ggufUnknown     = 2
	ggufControl     = 3
	ggufUserDefined = 4
	ggufUnused      = 5
	ggufByte        = 6
)

// loadGGUF reads the tokenizer.ggml.* metadata of a GGUF file.
func loadGGUF(path string) (*Tokenizer, error) {
	g, err := weights.OpenGGUF(path)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	s, err := ggufSpec(g)
	if err != nil {
		return nil, err
	}
	return build(s)
}

// LoadGGUFBytes reads a tokenizer from the metadata of an in-memory GGUF file.
func LoadGGUFBytes(data []byte) (*Tokenizer, error) {
	g, err := weights.OpenGGUFBytes(data)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	s, err := ggufSpec(g)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	t, err := build(s)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	return t, nil
}

// ggufMeta is the subset of *weights.GGUF that the loader reads.
type ggufMeta interface {
	String(key string) (string, bool)
	Uint(key string) (uint64, bool)
	Bool(key string) (bool, bool)
	Strings(key string) ([]string, bool)
	Ints(key string) ([]int64, bool)
	Floats(key string) ([]float64, bool)
}

func ggufSpec(g ggufMeta) (*spec, error) {
	model, ok := g.String("tokenizer.ggml.model")
	if !ok {
		return nil, errors.New("no tokenizer.ggml.model: the GGUF carries no tokenizer")
	}
	tokens, ok := g.Strings("tokenizer.ggml.tokens")
	if !ok || len(tokens) == 0 {
		return nil, errors.New("no tokenizer.ggml.tokens")
	}
	if len(tokens) > maxVocab {
		return nil, fmt.Errorf("%d tokens is too many", len(tokens))
	}
	types, ok := g.Ints("tokenizer.ggml.token_type")
	if !ok {
		types = make([]int64, len(tokens))
		for i := range types {
			types[i] = ggufNormal
		}
	}
	if len(types) != len(tokens) {
		return nil, fmt.Errorf("%d token types for %d tokens", len(types), len(tokens))
	}
	s := newSpec()
	s.vocab = make([]string, len(tokens))
	id := func(key string) int {
		v, ok := g.Uint(key)
		if !ok || v >= uint64(len(tokens)) {
			return -1
		}
		return int(v)
	}
	s.bos = id("tokenizer.ggml.bos_token_id")
	s.eos = id("tokenizer.ggml.eos_token_id")
	if eot := id("tokenizer.ggml.eot_token_id"); eot >= 0 {
		s.stopIDs = append(s.stopIDs, eot)
	}
	if eom := id("tokenizer.ggml.eom_token_id"); eom >= 0 {
		s.stopIDs = append(s.stopIDs, eom)
	}
	s.template, _ = g.String("tokenizer.chat_template")
	switch model {
	case "gpt2":
		s.kind = kindBPE
		pre, _ := g.String("tokenizer.ggml.pre")
		pat, ok := patternFromGGUFPre(pre)
		if !ok {
			return nil, fmt.Errorf("tokenizer.ggml.pre %q: unknown pre-tokenizer (supported: dbrx/llama-bpe for cl100k, gpt-4o for o200k)", pre)
		}
		s.pattern = pat
		merges, ok := g.Strings("tokenizer.ggml.merges")
		if !ok {
			return nil, errors.New("no tokenizer.ggml.merges")
		}
		s.merges = make([][2]string, len(merges))
		for i, m := range merges {
			a, b, ok := strings.Cut(m, " ")
			if !ok || a == "" || b == "" || strings.Contains(b, " ") {
				return nil, fmt.Errorf("merge %d %q is not two tokens", i, m)
			}
			s.merges[i] = [2]string{a, b}
		}
		s.wantBOS, _ = g.Bool("tokenizer.ggml.add_bos_token")
	case "llama":
		s.kind = kindSPM
		s.pattern = PatternNone
		scores, ok := g.Floats("tokenizer.ggml.scores")
		if !ok || len(scores) != len(tokens) {
			return nil, errors.New("tokenizer.ggml.scores missing or of the wrong length")
		}
		s.scores = make([]float32, len(scores))
		for i, v := range scores {
			s.scores[i] = float32(v)
		}
		s.byteTokens = make([]bool, len(tokens))
		s.unk = id("tokenizer.ggml.unknown_token_id")
		s.addSpacePrefix = true
		if v, ok := g.Bool("tokenizer.ggml.add_space_prefix"); ok {
			s.addSpacePrefix = v
		}
		s.wantBOS = true
		if v, ok := g.Bool("tokenizer.ggml.add_bos_token"); ok {
			s.wantBOS = v
		}
	default:
		return nil, fmt.Errorf("tokenizer.ggml.model %q is not supported (want gpt2 or llama)", model)
	}
	flags := knownAddedFlags(s.template)
	for i, tok := range tokens {
		switch types[i] {
		case ggufControl, ggufUserDefined:
			if tok == "" {
				continue
			}
			a := AddedToken{ID: i, Content: tok, Special: types[i] == ggufControl}
			if f, ok := flags(tok); ok {
				a.LStrip, a.RStrip, a.Special = f.LStrip, f.RStrip, f.Special
			}
			s.added = append(s.added, a)
		case ggufUnused:
			// no token
		case ggufByte:
			if s.kind != kindSPM {
				return nil, fmt.Errorf("token %d: byte token in a gpt2 vocabulary", i)
			}
			s.byteTokens[i] = true
			s.vocab[i] = tok
		default:
			s.vocab[i] = tok
		}
	}
	return s, nil
}

// knownAddedFlags returns the HF added-token flags of the known models,
// recognised by their chat template. GGUF files do not record lstrip/rstrip,
// so without this a GGUF would encode special-token text differently from
// the model's tokenizer.json: phi-4 marks all its added tokens lstrip and
// rstrip; phi-4-mini marks <|assistant|> … <|tag|> rstrip and the tool
// tokens special: false.
func knownAddedFlags(template string) func(content string) (AddedToken, bool) {
	c, _ := recognizeTemplate(template)
	switch c {
	case chatPhi4:
		return func(string) (AddedToken, bool) {
			return AddedToken{Special: true, LStrip: true, RStrip: true}, true
		}
	case chatPhi4Mini:
		return func(content string) (AddedToken, bool) {
			switch content {
			case "<|assistant|>", "<|end|>", "<|user|>", "<|system|>", "<|tag|>":
				return AddedToken{Special: true, RStrip: true}, true
			case "<|tool|>", "<|/tool|>", "<|tool_call|>", "<|/tool_call|>", "<|tool_response|>":
				return AddedToken{RStrip: true}, true
			}
			return AddedToken{}, false
		}
	}
	return func(string) (AddedToken, bool) { return AddedToken{}, false }
}
