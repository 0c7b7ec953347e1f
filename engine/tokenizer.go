package engine

import (
	"github.com/phi4mac/phi4mac/tokenizer"
)

func loadTokenizer(path string) (*tokenizer.Tokenizer, error) {
	return tokenizer.Load(path)
}

// Tokenizer returns the model's tokenizer, or nil if it has none (loaded
// with Options.NoTokenizer, or the files hold no usable vocabulary).
func (m *Model) Tokenizer() *tokenizer.Tokenizer { return m.tok }

// textDecoder turns generated ids into text.
type textDecoder interface {
	Push(id int) string
	Flush() string
}

type nopDecoder struct{}

func (nopDecoder) Push(int) string { return "" }
func (nopDecoder) Flush() string   { return "" }

func (m *Model) newTextDecoder() textDecoder {
	if m.tok == nil {
		return nopDecoder{}
	}
	return m.tok.NewStreamDecoder()
}

// stopIDs returns the default stop tokens: the tokenizer's (end of text,
// end of turn), else the model's EOS.
func (m *Model) stopIDs() []int {
	if m.tok != nil {
		if ids := m.tok.StopIDs(); len(ids) > 0 {
			return ids
		}
	}
	if m.cfg.EOS >= 0 {
		return []int{m.cfg.EOS}
	}
	return nil
}
