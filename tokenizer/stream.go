package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// StreamDecoder turns a stream of ids into text piece by piece, holding back
// the bytes of a UTF-8 character until the token that completes it arrives.
// It is not safe for concurrent use.
type StreamDecoder struct {
	t       *Tokenizer
	pending []byte
	started bool // SentencePiece: the dummy-prefix space has been dealt with
}

// NewStreamDecoder returns a decoder for a new stream of ids.
func (t *Tokenizer) NewStreamDecoder() *StreamDecoder {
	return &StreamDecoder{t: t}
}

// Push adds one id and returns the text that is now complete: whole UTF-8
// characters only. Bytes that can never form a valid character are
// returned as U+FFFD. Unknown ids add nothing.
func (d *StreamDecoder) Push(id int) string {
	tok := d.t.TokenString(id)
	if d.t.kind == kindSPM && !d.started && !d.t.IsSpecial(id) && tok != "" {
		d.started = true
		if d.t.spm.addSpacePrefix {
			tok = strings.TrimPrefix(tok, " ")
		}
	}
	d.pending = append(d.pending, tok...)
	cut := completePrefix(d.pending)
	if cut == 0 {
		return ""
	}
	out := toValid(d.pending[:cut])
	d.pending = append(d.pending[:0], d.pending[cut:]...)
	return out
}

// Flush returns whatever is held back (an incomplete character comes out as
// U+FFFD) and resets the decoder's buffer.
func (d *StreamDecoder) Flush() string {
	out := toValid(d.pending)
	d.pending = d.pending[:0]
	return out
}

// completePrefix returns the length of b without a trailing incomplete, but
// possibly still valid, UTF-8 sequence.
func completePrefix(b []byte) int {
	for k := 1; k <= utf8.UTFMax-1 && k <= len(b); k++ {
		c := b[len(b)-k]
		if c < utf8.RuneSelf {
			break
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[len(b)-k:]) {
				return len(b) - k
			}
			break
		}
	}
	return len(b)
}

// toValid returns b as a string with each invalid byte replaced by U+FFFD.
func toValid(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			sb.WriteRune(utf8.RuneError)
		} else {
			sb.Write(b[:n])
		}
		b = b[n:]
	}
	return sb.String()
}
