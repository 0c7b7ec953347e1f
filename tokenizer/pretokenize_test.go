package tokenizer

import (
	"slices"
	"testing"
)

// TestSplit pins down pre-tokenizer behaviours that follow from the
// patterns' regex semantics (checked against official tiktoken on random
// strings in TestTiktokenRandom).
func TestSplit(t *testing.T) {
	tests := []struct {
		p    Pattern
		in   string
		want []string
	}{
		{PatternCL100K, "Hello world", []string{"Hello", " world"}},
		{PatternCL100K, "don't stop", []string{"don", "'t", " stop"}},
		{PatternCL100K, "'sam", []string{"'s", "am"}},                     // contraction first, not the longest
		{PatternCL100K, "'ſ", []string{"'ſ"}},                             // (?i) folds ſ to s
		{PatternCL100K, "12345", []string{"123", "45"}},                   // \p{N}{1,3}
		{PatternCL100K, "a  b", []string{"a", " ", " b"}},                 // \s+(?!\S) leaves one space
		{PatternCL100K, "a  \n\n  b", []string{"a", "  \n\n", " ", " b"}}, // \s*[\r\n]+ up to the last newline
		{PatternCL100K, "x   ", []string{"x", "   "}},                     // trailing white space stays whole
		{PatternCL100K, " !!\r\n\r\nx", []string{" !!\r\n\r\n", "x"}},
		{PatternCL100K, "$hello", []string{"$hello"}},
		{PatternCL100K, "\u00a0word", []string{"\u00a0word"}}, // NBSP is \s and a prefix
		{PatternO200K, "HTMLParser", []string{"HTMLParser"}},
		{PatternO200K, "helloWorld", []string{"hello", "World"}},
		{PatternO200K, "HELLO world", []string{"HELLO", " world"}},
		{PatternO200K, "don't", []string{"don't"}}, // contraction joins the word
		{PatternO200K, "path/to/", []string{"path", "/to", "/"}},
		{PatternO200K, "a//\nb", []string{"a", "//\n", "b"}},
		{PatternO200K, "ʰA", []string{"ʰ", "A"}}, // Lm is in both groups: [A]*[B]+ backtracks to "ʰ"
		{PatternO200K, "Aʰb", []string{"Aʰb"}},
		{PatternO200K, "e\u0301t\u00e9", []string{"e\u0301t\u00e9"}}, // marks join letters
		{PatternO200K, "12345", []string{"123", "45"}},
		{PatternCL100K, "\xffab", []string{"\xffab"}}, // an invalid byte acts as a symbol prefix
	}
	for _, tt := range tests {
		var got []string
		tt.p.split(tt.in, func(piece string) { got = append(got, piece) })
		if !slices.Equal(got, tt.want) {
			t.Errorf("%v %q: got %q, want %q", tt.p, tt.in, got, tt.want)
		}
	}
}

func TestPatternNames(t *testing.T) {
	for _, tt := range []struct {
		pre  string
		want Pattern
	}{{"dbrx", PatternCL100K}, {"gpt-4o", PatternO200K}, {"llama-bpe", PatternCL100K}} {
		if got, ok := patternFromGGUFPre(tt.pre); !ok || got != tt.want {
			t.Errorf("%s: %v %v", tt.pre, got, ok)
		}
	}
	if _, ok := patternFromGGUFPre("gpt2"); ok {
		t.Error("gpt2 pre-tokenizer accepted")
	}
	if p, ok := patternFromRegex(cl100kRegex); !ok || p != PatternCL100K {
		t.Error("cl100k regex")
	}
}
