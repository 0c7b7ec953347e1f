package tokenizer

import (
	"fmt"
	"unicode/utf8"
)

// byteLevel is GPT-2's reversible map from bytes to printable code points,
// used to store byte-level BPE tokens as text in vocab.json, merges.txt,
// tokenizer.json and GGUF: printable Latin-1 bytes stand for themselves,
// the other 68 bytes for U+0100 onwards (space is "Ġ", U+0120).
type byteLevel struct {
	toRune   [256]rune
	fromRune [324]int16 // code point → byte, -1 for none; the map ends at U+0143
}

func newByteLevel() *byteLevel {
	bl := &byteLevel{}
	for i := range bl.fromRune {
		bl.fromRune[i] = -1
	}
	n := rune(0)
	for b := 0; b < 256; b++ {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		r := rune(b)
		if !printable {
			r = 256 + n
			n++
		}
		bl.toRune[b] = r
		bl.fromRune[r] = int16(b)
	}
	return bl
}

// decode turns a byte-level token string into its raw bytes.
func (bl *byteLevel) decode(tok string) (string, error) {
	raw := make([]byte, 0, len(tok))
	for i := 0; i < len(tok); {
		r, n := utf8.DecodeRuneInString(tok[i:])
		if r < 0 || int(r) >= len(bl.fromRune) || bl.fromRune[r] < 0 {
			return "", fmt.Errorf("token %q: %q is not a byte-level character", tok, r)
		}
		raw = append(raw, byte(bl.fromRune[r]))
		i += n
	}
	return string(raw), nil
}
