// Package tokenizer turns text into the token ids of the Phi-4 family and back.
//
// It implements byte-level BPE with the cl100k (phi-4) and o200k (phi-4-mini)
// pre-tokenizers, written as hand-made scanners over Unicode 16.0 tables
// (internal/uniclass, generated from Unicode data), and llama-style
// SentencePiece vocabularies from GGUF files. A Tokenizer loads from a
// Hugging Face model folder (tokenizer.json, or vocab.json + merges.txt +
// tokenizer_config.json), a tokenizer.json file, or a GGUF file, and gives the
// same ids whatever the source: official tiktoken's for ordinary text, HF
// transformers' for text with added tokens.
//
// Added tokens (<|im_start|>, <|end|>, ...) are matched only with
// EncodeOptions.AllowSpecial, following HF's lstrip/rstrip flags; that
// includes phi-4-mini's tool tokens, which HF marks special: false and would
// match even in user text. GGUF files do not store the flags, so for the two
// known chat templates the flags of the official tokenizers are applied.
//
// The chat templates of phi-4 and phi-4-mini are recognised and rendered
// natively (there is no general Jinja engine); other templates make
// HasChatTemplate report false.
//
// A Tokenizer is immutable after Load and safe for concurrent use.
package tokenizer

import (
	"slices"
	"strings"
	"sync"
)

// EncodeOptions control Encode.
type EncodeOptions struct {
	// AllowSpecial makes added tokens such as <|im_start|> in the text
	// encode as those tokens, with HF transformers' lstrip/rstrip rules.
	// Without it they are ordinary text: a user who types <|im_end|> gets
	// the ids of the characters, never the control token.
	AllowSpecial bool
	// AddBOS prepends the beginning-of-sequence token, if the vocabulary
	// has one (see WantsBOS).
	AddBOS bool
}

type modelKind int

const (
	kindBPE modelKind = iota
	kindSPM
)

// Tokenizer encodes and decodes text for one vocabulary.
type Tokenizer struct {
	kind    modelKind
	pattern Pattern
	bpe     *bpe
	spm     *spm
	// tokens holds each id's decoded bytes; added tokens hold their content.
	tokens []string
	added  *addedSet
	// special marks ids of added and control tokens.
	special []bool

	bos, eos int // -1 when absent
	wantBOS  bool
	stop     []int
	chat     chatTemplate

	states sync.Pool // *encState scratch space, reused across calls
}

// Encode returns the token ids of text. Invalid UTF-8 is encoded byte by
// byte (every byte has a token), so Decode(Encode(s)) == s for any s.
func (t *Tokenizer) Encode(text string, opts EncodeOptions) []int {
	out := make([]int, 0, len(text)/2+8) // text averages ~3 bytes a token
	return t.AppendEncode(out, text, opts)
}

// AppendEncode appends the token ids of text to dst, as Encode.
func (t *Tokenizer) AppendEncode(dst []int, text string, opts EncodeOptions) []int {
	if opts.AddBOS && t.bos >= 0 {
		dst = append(dst, t.bos)
	}
	if !opts.AllowSpecial || t.added == nil || len(t.added.tokens) == 0 {
		return t.encodeText(dst, text, true)
	}
	afterSpecial := true
	t.added.split(text, func(seg string) {
		dst = t.encodeText(dst, seg, afterSpecial)
		afterSpecial = false
	}, func(a AddedToken) {
		dst = append(dst, a.ID)
		afterSpecial = true
	})
	return dst
}

// encodeText appends the ids of ordinary text (no added tokens).
// first tells a SentencePiece model that text starts the input or follows
// an added token (where it adds its dummy-prefix space).
func (t *Tokenizer) encodeText(dst []int, text string, first bool) []int {
	if t.kind == kindSPM {
		return t.spm.encode(dst, text, first)
	}
	if text == "" {
		return dst
	}
	st, _ := t.states.Get().(*encState)
	if st == nil {
		st = newEncState()
	}
	defer t.states.Put(st)
	p, m := t.pattern, t.bpe
	if p == PatternNone {
		return m.encode(st, dst, text)
	}
	for i := 0; i < len(text); {
		e := p.nextPiece(text, i)
		dst = m.encode(st, dst, text[i:e])
		i = e
	}
	return dst
}

// Decode returns the text of ids, added and control tokens included.
// Ids outside the vocabulary are skipped.
func (t *Tokenizer) Decode(ids []int) string {
	var sb strings.Builder
	// SentencePiece: drop the dummy-prefix space of the first text token.
	lead := t.kind == kindSPM && t.spm.addSpacePrefix
	for _, id := range ids {
		if id < 0 || id >= len(t.tokens) {
			continue
		}
		s := t.tokens[id]
		if lead && !t.special[id] && s != "" {
			s, lead = strings.TrimPrefix(s, " "), false
		}
		sb.WriteString(s)
	}
	return sb.String()
}

// VocabSize returns the number of ids, including added tokens and unused ids.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// BOS returns the beginning-of-sequence token id, if the vocabulary has one.
func (t *Tokenizer) BOS() (int, bool) { return t.bos, t.bos >= 0 }

// EOS returns the end-of-sequence token id, if the vocabulary has one.
func (t *Tokenizer) EOS() (int, bool) { return t.eos, t.eos >= 0 }

// WantsBOS reports whether the model expects its prompts to start with BOS
// (llama-style SentencePiece models do; phi-4 and phi-4-mini do not).
func (t *Tokenizer) WantsBOS() bool { return t.wantBOS && t.bos >= 0 }

// StopIDs returns the ids that end generation: EOS, the eos ids of
// generation_config.json and the chat template's end-of-turn token.
func (t *Tokenizer) StopIDs() []int { return slices.Clone(t.stop) }

// TokenString returns the text of one token: its bytes, which may be part of
// a UTF-8 character, or an added token's content. It returns "" for ids
// outside the vocabulary or with no token.
func (t *Tokenizer) TokenString(id int) string {
	if id < 0 || id >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// IsSpecial reports whether id is an added or control token such as
// <|im_end|> (callers usually hide these from users).
func (t *Tokenizer) IsSpecial(id int) bool {
	return id >= 0 && id < len(t.special) && t.special[id]
}

// Pattern returns the pre-tokenizer in use.
func (t *Tokenizer) Pattern() Pattern { return t.pattern }

// AddedTokens returns the tokens matched whole when AllowSpecial is set.
func (t *Tokenizer) AddedTokens() []AddedToken {
	if t.added == nil {
		return nil
	}
	return slices.Clone(t.added.tokens)
}
