// Package demo embeds a tiny real model, Karpathy's 260K-parameter
// TinyStories Llama (MIT; see PROVENANCE.md), so that phi4mac can show
// working generation with no model downloaded. It writes short children's
// stories in English and nothing else.
package demo

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/weights"
	"github.com/phi4mac/phi4mac/tokenizer"
)

//go:embed stories260K.gguf
var model []byte

// Name is the demo model's display name.
const Name = "stories260K (embedded demo)"

// Bytes returns the embedded GGUF file. It must not be modified.
func Bytes() []byte { return model }

// Load opens the embedded model with its tokenizer. opts.Backend is
// required, as for engine.Load.
func Load(ctx context.Context, opts engine.Options) (*engine.Model, error) {
	g, err := weights.OpenGGUFBytes(model)
	if err != nil {
		return nil, fmt.Errorf("demo model: %w", err)
	}
	if opts.Tokenizer == nil && !opts.NoTokenizer {
		tok, err := tokenizer.LoadGGUFBytes(model)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("demo model tokenizer: %w", err)
		}
		opts.Tokenizer = tok
	}
	m, err := engine.LoadGGUF(ctx, g, opts)
	if err != nil {
		return nil, fmt.Errorf("demo model: %w", err)
	}
	return m, nil
}
