// Package uniclass classifies code points by the Unicode 16.0 properties the
// GPT-style pre-tokenizer patterns use: letters, numbers, marks, white space,
// and the two letter groups of the o200k pattern.
//
// Go's unicode package carries Unicode 15.0 tables; tiktoken classifies with
// 16.0, so the tables here are generated (see gen/main.go, go generate).
package uniclass

//go:generate go run ./gen -out tables.go

// Class is a set of property bits for one code point.
type Class uint8

// Class bits.
const (
	Letter   Class = 1 << iota // \p{L}
	Number                     // \p{N}
	Mark                       // \p{M}
	Space                      // \s: the White_Space property
	Upperish                   // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
	Lowerish                   // [\p{Ll}\p{Lm}\p{Lo}\p{M}]
)

// Of returns the class of r; code points outside Unicode and unassigned ones
// have class 0.
func Of(r rune) Class {
	if r < 0 || r >= 0x110000 {
		return 0
	}
	i := int(r) >> blockShift
	block := int(stage1[2*i])<<8 | int(stage1[2*i+1])
	return Class(stage2[block<<blockShift|int(r)&(1<<blockShift-1)])
}

// OfASCII returns the class of the ASCII character c (c < 0x80).
func OfASCII(c byte) Class {
	// Code points 0..127 are block 0 of stage2.
	return Class(stage2[c&0x7f])
}
