package tokenizer

import (
	"unicode/utf8"

	"github.com/phi4mac/phi4mac/tokenizer/internal/uniclass"
)

// Pattern names a pre-tokenizer: the rule that cuts text into pieces before
// byte-pair merging. The pieces are those that the pattern's regular
// expression finds, with fancy-regex (tiktoken) semantics: leftmost-first
// alternation, greedy backtracking quantifiers, Unicode 16.0 classes.
type Pattern int

// Supported pre-tokenizer patterns.
const (
	// PatternNone feeds the whole text to the model as one piece
	// (SentencePiece vocabularies).
	PatternNone Pattern = iota
	// PatternCL100K is tiktoken's cl100k_base pattern (phi-4, GGUF pre "dbrx"):
	//  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
	//  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
	PatternCL100K
	// PatternO200K is tiktoken's o200k_base pattern (phi-4-mini, GGUF pre "gpt-4o"):
	//  [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
	//  [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
	//  \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
	PatternO200K
)

// String returns the pattern's conventional name.
func (p Pattern) String() string {
	switch p {
	case PatternNone:
		return "none"
	case PatternCL100K:
		return "cl100k"
	case PatternO200K:
		return "o200k"
	}
	return "unknown"
}

// Regular expressions as they appear in tokenizer.json Split pre-tokenizers.
const (
	cl100kRegex = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	o200kRegex  = `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// patternFromRegex recognises the two supported regular expressions.
func patternFromRegex(re string) (Pattern, bool) {
	switch re {
	case cl100kRegex:
		return PatternCL100K, true
	case o200kRegex:
		return PatternO200K, true
	}
	return PatternNone, false
}

// patternFromGGUFPre maps llama.cpp's tokenizer.ggml.pre names to patterns.
// llama.cpp uses the cl100k expression for all of these names.
func patternFromGGUFPre(pre string) (Pattern, bool) {
	switch pre {
	case "dbrx", "llama-bpe", "llama3", "smaug-bpe":
		return PatternCL100K, true
	case "gpt-4o":
		return PatternO200K, true
	}
	return PatternNone, false
}

type class = uniclass.Class

const (
	clLetter   = uniclass.Letter
	clNumber   = uniclass.Number
	clSpace    = uniclass.Space
	clUpperish = uniclass.Upperish
	clLowerish = uniclass.Lowerish
)

// classAt returns the class of the code point at s[i:] and its length in
// bytes. Past the end it returns (0, 0). An invalid UTF-8 byte counts as one
// code point of class 0 (like a symbol), so every byte is always covered.
func classAt(s string, i int) (class, int) {
	if i < len(s) && s[i] < utf8.RuneSelf {
		return uniclass.OfASCII(s[i]), 1
	}
	return classAtSlow(s, i)
}

// classAtSlow is classAt for non-ASCII code points and the end of s.
func classAtSlow(s string, i int) (class, int) {
	if i >= len(s) {
		return 0, 0
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && n == 1 {
		return 0, 1
	}
	return uniclass.Of(r), n
}

// runEnd returns the end of the run of code points from i whose class has a
// bit of mask.
func runEnd(s string, i int, mask class) int {
	for i < len(s) {
		if b := s[i]; b < utf8.RuneSelf {
			if uniclass.OfASCII(b)&mask == 0 {
				break
			}
			i++
			continue
		}
		c, n := classAtSlow(s, i)
		if c&mask == 0 {
			break
		}
		i += n
	}
	return i
}

// contraction returns the length of (?i:'s|'t|'re|'ve|'m|'ll|'d) at s[i:],
// or 0. Case folding is Unicode's: 's' also matches U+017F LONG S.
func contraction(s string, i int) int {
	if i+1 >= len(s) || s[i] != '\'' {
		return 0
	}
	switch s[i+1] | 0x20 {
	case 's', 't', 'm', 'd':
		return 2
	case 'r', 'v':
		if i+2 < len(s) && s[i+2]|0x20 == 'e' {
			return 3
		}
	case 'l':
		if i+2 < len(s) && s[i+2]|0x20 == 'l' {
			return 3
		}
	}
	if s[i+1] == 0xC5 && i+2 < len(s) && s[i+2] == 0xBF { // ſ
		return 3
	}
	return 0
}

// isPrefix reports whether a code point of class c at s[i] may be the
// optional leading [^\r\n\p{L}\p{N}] of a letter run.
func isPrefix(s string, i int, c class) bool {
	return c&(clLetter|clNumber) == 0 && s[i] != '\r' && s[i] != '\n'
}

// nextPiece returns the end of the pre-token that starts at i < len(s).
// Some alternative always matches, so pieces tile the text.
func (p Pattern) nextPiece(s string, i int) int {
	if e, ok := p.asciiWord(s, i); ok {
		return e
	}
	c0, n0 := classAt(s, i)
	switch p {
	case PatternCL100K:
		if n := contraction(s, i); n > 0 {
			return i + n
		}
		// [^\r\n\p{L}\p{N}]?\p{L}+
		if c0&clLetter != 0 {
			return runEnd(s, i+n0, clLetter)
		}
		if isPrefix(s, i, c0) {
			if c1, n1 := classAt(s, i+n0); c1&clLetter != 0 {
				return runEnd(s, i+n0+n1, clLetter)
			}
		}
	case PatternO200K:
		if isPrefix(s, i, c0) {
			if e := o200kLower(s, i+n0); e >= 0 {
				return e
			}
		}
		if e := o200kLower(s, i); e >= 0 {
			return e
		}
		if isPrefix(s, i, c0) {
			if e := o200kUpper(s, i+n0); e >= 0 {
				return e
			}
		}
		if e := o200kUpper(s, i); e >= 0 {
			return e
		}
	default:
		return len(s)
	}
	// \p{N}{1,3}
	if c0&clNumber != 0 {
		e := i + n0
		for k := 0; k < 2; k++ {
			c, n := classAt(s, e)
			if c&clNumber == 0 {
				break
			}
			e += n
		}
		return e
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*' (o200k: [\r\n/]*)
	j := i
	if s[i] == ' ' {
		j++
	}
	if c, n := classAt(s, j); n > 0 && c&(clSpace|clLetter|clNumber) == 0 {
		e := j + n
		for e < len(s) {
			c, n := classAt(s, e)
			if c&(clSpace|clLetter|clNumber) != 0 {
				break
			}
			e += n
		}
		for e < len(s) && (s[e] == '\r' || s[e] == '\n' || (p == PatternO200K && s[e] == '/')) {
			e++
		}
		return e
	}
	// The remaining alternatives start with white space.
	if c0&clSpace == 0 {
		return i + n0 // unreachable: every code point is L, N, \s or other
	}
	// \s*[\r\n]+ : up to the last CR or LF of the white-space run.
	// \s+(?!\S)  : the run less its last code point, unless it ends the text.
	// \s+        : the whole run.
	end, lastNL, last := i, -1, i
	for end < len(s) {
		c, n := classAt(s, end)
		if c&clSpace == 0 {
			break
		}
		if s[end] == '\r' || s[end] == '\n' {
			lastNL = end + 1
		}
		last = end
		end += n
	}
	switch {
	case lastNL > 0:
		return lastNL
	case end == len(s) || last == i:
		return end
	default:
		return last
	}
}

func isASCIILetter(c byte) bool { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }

// asciiWord is a fast path for the commonest pieces: a run of ASCII letters,
// optionally after one ASCII prefix character such as a space, ending before
// an ASCII character. It reports false when the general path must decide
// (a non-ASCII code point at the edge, or no letter).
func (p Pattern) asciiWord(s string, i int) (int, bool) {
	c := s[i]
	if c >= utf8.RuneSelf {
		return 0, false
	}
	j := i
	if !isASCIILetter(c) {
		// [^\r\n\p{L}\p{N}] prefix; an apostrophe may start a contraction.
		if c == '\r' || c == '\n' || c == '\'' || (c >= '0' && c <= '9') ||
			i+1 >= len(s) || !isASCIILetter(s[i+1]) {
			return 0, false
		}
		j = i + 1
	}
	switch p {
	case PatternCL100K:
		e := j + 1
		for e < len(s) && isASCIILetter(s[e]) {
			e++
		}
		if e < len(s) && s[e] >= utf8.RuneSelf {
			return 0, false
		}
		return e, true
	case PatternO200K:
		// [A]*[B]+ with A = upper and B = lower case, else [A]+[B]*.
		e := j
		for e < len(s) && s[e] >= 'A' && s[e] <= 'Z' {
			e++
		}
		for e < len(s) && s[e] >= 'a' && s[e] <= 'z' {
			e++
		}
		if e < len(s) && s[e] >= utf8.RuneSelf {
			return 0, false
		}
		return e + contraction(s, e), true
	}
	return 0, false
}

// o200kLower matches [A]*[B]+(?i:contraction)? at s[i:] where A is
// Lu|Lt|Lm|Lo|M and B is Ll|Lm|Lo|M, returning the end or -1. Greedy A*
// backtracks to the last position where B+ can start: either just after the
// A run, or the last code point of the run that is also in B.
func o200kLower(s string, i int) int {
	lastB := -1
	j := i
	for j < len(s) {
		c, n := classAt(s, j)
		if c&clUpperish == 0 {
			break
		}
		if c&clLowerish != 0 {
			lastB = j + n
		}
		j += n
	}
	var e int
	if c, _ := classAt(s, j); c&clLowerish != 0 {
		e = runEnd(s, j, clLowerish)
	} else if lastB >= 0 {
		e = lastB
	} else {
		return -1
	}
	return e + contraction(s, e)
}

// o200kUpper matches [A]+[B]*(?i:contraction)? at s[i:], returning the end or -1.
func o200kUpper(s string, i int) int {
	if c, _ := classAt(s, i); c&clUpperish == 0 {
		return -1
	}
	e := runEnd(s, runEnd(s, i, clUpperish), clLowerish)
	return e + contraction(s, e)
}

// split calls fn for each pre-token of s in order.
func (p Pattern) split(s string, fn func(piece string)) {
	for i := 0; i < len(s); {
		e := p.nextPiece(s, i)
		fn(s[i:e])
		i = e
	}
}
