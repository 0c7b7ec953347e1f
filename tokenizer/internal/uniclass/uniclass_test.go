package uniclass

import (
	"testing"
	"unicode"
)

func TestKnownCodePoints(t *testing.T) {
	tests := []struct {
		r    rune
		want Class
	}{
		{'a', Letter | Lowerish},
		{'Z', Letter | Upperish},
		{'7', Number},
		{' ', Space},
		{'\t', Space},
		{'\u0085', Space},
		{'\u00a0', Space},
		{'\u2028', Space},
		{'\u200b', 0}, // ZERO WIDTH SPACE is Cf, not White_Space
		{'_', 0},
		{'\u0301', Mark | Upperish | Lowerish},
		{'\u01c5', Letter | Upperish},            // Lt
		{'\u02b0', Letter | Upperish | Lowerish}, // Lm
		{'\u4e00', Letter | Upperish | Lowerish}, // Lo
		{'\u2167', Number},                       // Nl
		{'\u00b2', Number},                       // No
		{'\U0001F600', 0},
		{'\U00010D4A', Letter | Upperish | Lowerish}, // Garay letter, new in Unicode 16
		{'\U00011380', Letter | Upperish | Lowerish}, // Tulu-Tigalari letter, new in 16
		{'\U00010D40', Number},                       // Garay digit zero, new in 16
		{'\U0001CCF0', Number},                       // outlined digit zero, new in 16
		{-1, 0},
		{0x110000, 0},
	}
	for _, tt := range tests {
		if got := Of(tt.r); got != tt.want {
			t.Errorf("Of(%U) = %#x, want %#x", tt.r, got, tt.want)
		}
	}
}

// TestAgreesWithGoUnicode checks the generated tables against Go's Unicode 15
// tables: every code point classified by Go must be classified the same here
// (Unicode only adds assignments), and the number of code points Unicode 16
// newly assigns must be plausible.
func TestAgreesWithGoUnicode(t *testing.T) {
	added := 0
	for r := rune(0); r < 0x110000; r++ {
		c := Of(r)
		check := func(name string, goHas, weHave bool) {
			if goHas && !weHave {
				t.Errorf("%U: Go says %s, table does not", r, name)
			}
			if weHave && !goHas {
				added++
			}
		}
		check("L", unicode.IsLetter(r), c&Letter != 0)
		check("N", unicode.IsNumber(r), c&Number != 0)
		check("M", unicode.IsMark(r), c&Mark != 0)
		check("Space", unicode.In(r, unicode.White_Space), c&Space != 0)
		up := unicode.In(r, unicode.Lu, unicode.Lt, unicode.Lm, unicode.Lo, unicode.M)
		lo := unicode.In(r, unicode.Ll, unicode.Lm, unicode.Lo, unicode.M)
		check("Upperish", up, c&Upperish != 0)
		check("Lowerish", lo, c&Lowerish != 0)
	}
	// Unicode 16 added 5,185 characters, most of them letters, numbers or marks.
	if added < 1000 || added > 20000 {
		t.Errorf("%d class bits new relative to Go's tables; want a few thousand", added)
	}
}

func BenchmarkOf(b *testing.B) {
	var sink Class
	for i := 0; b.Loop(); i++ {
		sink |= Of(rune(i & 0xffff))
	}
	_ = sink
}

func TestOfASCII(t *testing.T) {
	for c := 0; c < 0x80; c++ {
		if got, want := OfASCII(byte(c)), Of(rune(c)); got != want {
			t.Errorf("OfASCII(%#x) = %#x, Of = %#x", c, got, want)
		}
	}
}
