package demo_test

import (
	"context"
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/cpu"
	"github.com/phi4mac/phi4mac/engine/demo"
	"github.com/phi4mac/phi4mac/tokenizer"
)

// TestOnceUponATime checks that the embedded model, through the tokenizer
// and the streaming API, continues "Once upon a time" with the text
// llama.cpp produces (refs README §2.3).
func TestOnceUponATime(t *testing.T) {
	ctx := context.Background()
	m, err := demo.Load(ctx, engine.Options{Backend: cpu.New(cpu.Options{Threads: 2})})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok := m.Tokenizer()
	if tok == nil {
		t.Fatal("demo model has no tokenizer")
	}
	ids := tok.Encode("Once upon a time", tokenizer.EncodeOptions{AddBOS: tok.WantsBOS()})
	want := []int{1, 403, 407, 261, 378}
	if len(ids) != len(want) {
		t.Fatalf("prompt ids %v, want %v", ids, want)
	}
	for i := range want {
		if ids[i] != want[i] {
			t.Fatalf("prompt ids %v, want %v", ids, want)
		}
	}
	s, err := m.NewSession(engine.SessionOptions{KV: engine.KVF32})
	if err != nil {
		t.Fatal(err)
	}
	var streamed strings.Builder
	res, err := s.Generate(ctx, engine.Request{Prompt: ids, MaxTokens: 64}, func(tk engine.Token) error {
		streamed.WriteString(tk.Text)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	const prose = ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily's mom said"
	if got := streamed.String(); got != prose {
		t.Errorf("streamed text\n%q\nwant\n%q", got, prose)
	}
	if res.Text != streamed.String() {
		t.Errorf("result text %q differs from the streamed text %q", res.Text, streamed.String())
	}
	if res.Finish != engine.FinishLength || len(res.Tokens) != 64 {
		t.Errorf("finish %s after %d tokens, want length after 64", res.Finish, len(res.Tokens))
	}
}
