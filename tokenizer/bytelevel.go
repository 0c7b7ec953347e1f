package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// byteLevel is GPT-2's reversible map from bytes to printable code points,
// used to store byte-level BPE tokens as text in vocab.json, merges.txt,
// tokenizer.json and GGUF: printable Latin-1 bytes stand for themselves,
// the other 68 bytes for U+0100 onwards (space is "Ġ", U+0120).
type byteLevel struct {
	toRune   [256]rune
	fromRune map[rune]byte
}

func newByteLevel() *byteLevel {
	bl := &byteLevel{fromRune: make(map[rune]byte, 256)}
	n := rune(0)
	for b := 0; b < 256; b++ {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		r := rune(b)
		if !printable {
			r = 256 + n
			n++
		}
		bl.toRune[b] = r
		bl.fromRune[r] = byte(b)
	}
	return bl
}

// decode turns a byte-level token string into its raw bytes.
func (bl *byteLevel) decode(tok string) (string, error) {
	var sb strings.Builder
	sb.Grow(len(tok))
	for i := 0; i < len(tok); {
		r, n := utf8.DecodeRuneInString(tok[i:])
		b, ok := bl.fromRune[r]
		if !ok {
			return "", fmt.Errorf("token %q: %q is not a byte-level character", tok, r)
		}
		sb.WriteByte(b)
		i += n
	}
	return sb.String(), nil
}
