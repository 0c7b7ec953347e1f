package engine

import "errors"

// Tokenizer is a placeholder until the tokenizer package lands.
type Tokenizer struct{}

func loadTokenizer(path string) (*Tokenizer, error) {
	return nil, errors.New("tokenizer package not available yet")
}

// Tokenizer returns the model's tokenizer, or nil if it has none.
func (m *Model) Tokenizer() *Tokenizer { return m.tok }

type textDecoder interface {
	Push(id int) string
	Flush() string
}

type nopDecoder struct{}

func (nopDecoder) Push(int) string { return "" }
func (nopDecoder) Flush() string   { return "" }

func (m *Model) newTextDecoder() textDecoder { return nopDecoder{} }

func (m *Model) stopIDs() []int {
	if m.cfg.EOS >= 0 {
		return []int{m.cfg.EOS}
	}
	return nil
}
