// Package enginetest computes reference answers for the tests of the layers
// above the engine (the model adapter, the HTTP API, the commands) straight
// from engine.Session, without those layers.
package enginetest

import (
	"context"
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/cpu"
	"github.com/phi4mac/phi4mac/tokenizer"
)

// Greedy loads the model at path on the CPU backend, generates at most
// maxTokens tokens greedily after the ids prompt returns for the model's
// tokenizer, stopping at the tokenizer's stop ids, and returns the
// generated text as a stream decoder writes it, special tokens left out.
func Greedy(t testing.TB, path string, prompt func(*tokenizer.Tokenizer) []int, maxTokens int) string {
	t.Helper()
	m, err := engine.Load(context.Background(), path, engine.Options{Backend: cpu.New(cpu.Options{}), SkipMemoryCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok := m.Tokenizer()
	s, err := m.NewSession(engine.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Generate(context.Background(), engine.Request{Prompt: prompt(tok), MaxTokens: maxTokens, StopIDs: tok.StopIDs()}, func(engine.Token) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	dec := tok.NewStreamDecoder()
	for _, id := range res.Tokens {
		if !tok.IsSpecial(id) {
			sb.WriteString(dec.Push(id))
		}
	}
	sb.WriteString(dec.Flush())
	return sb.String()
}

// Chat returns a prompt function for Greedy: msgs in the model's chat
// template with the assistant's turn opened, encoded with special tokens
// (and BOS first when addBOS is set and the tokenizer wants one).
func Chat(t testing.TB, msgs []tokenizer.Message, addBOS bool) func(*tokenizer.Tokenizer) []int {
	return func(tok *tokenizer.Tokenizer) []int {
		text, err := tok.ApplyChatTemplate(msgs, true)
		if err != nil {
			t.Fatal(err)
		}
		return tok.Encode(text, tokenizer.EncodeOptions{AllowSpecial: true, AddBOS: addBOS && tok.WantsBOS()})
	}
}
