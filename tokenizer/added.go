package tokenizer

import (
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// AddedToken is a token matched as a whole in the text before pre-tokenization
// (HF "added_tokens"), such as <|im_start|>.
type AddedToken struct {
	ID      int
	Content string
	// Special marks control tokens (HF special: true).
	Special bool
	// LStrip and RStrip make a match swallow the white space on its left or
	// right, as HF transformers/tokenizers do.
	LStrip, RStrip bool
}

// addedSet finds added tokens in text: leftmost match first, the longest
// token at that position winning (HF's leftmost-longest Aho-Corasick).
type addedSet struct {
	tokens  []AddedToken
	byFirst [256][]int // indices into tokens by first byte, longest first
	first   [256]bool
}

func newAddedSet(tokens []AddedToken) *addedSet {
	s := &addedSet{tokens: tokens}
	for i, t := range tokens {
		if t.Content == "" {
			continue
		}
		c := t.Content[0]
		s.byFirst[c] = append(s.byFirst[c], i)
		s.first[c] = true
	}
	for c := range s.byFirst {
		l := s.byFirst[c]
		sort.SliceStable(l, func(a, b int) bool { return len(tokens[l[a]].Content) > len(tokens[l[b]].Content) })
	}
	return s
}

// match returns the index of the longest added token at text[i:], or -1.
func (s *addedSet) match(text string, i int) int {
	for _, k := range s.byFirst[text[i]] {
		if strings.HasPrefix(text[i:], s.tokens[k].Content) {
			return k
		}
	}
	return -1
}

// split calls text(seg) for the ordinary text between added tokens and
// token(t) for each added token, in order. White space next to a token with
// LStrip/RStrip is dropped (Unicode White_Space, as Rust's char::is_whitespace).
func (s *addedSet) split(text string, onText func(string), onToken func(AddedToken)) {
	s.splitMasked(text, nil, onText, onToken)
}

// splitMasked is split where, if allowed is not nil, a token is matched only
// where every byte of its text has allowed[i] set.
func (s *addedSet) splitMasked(text string, allowed []bool, onText func(string), onToken func(AddedToken)) {
	start := 0 // start of pending ordinary text
	for i := 0; i < len(text); {
		if !s.first[text[i]] || (allowed != nil && !allowed[i]) {
			i++
			continue
		}
		k := s.match(text, i)
		if k >= 0 && allowed != nil && slices.Contains(allowed[i:i+len(s.tokens[k].Content)], false) {
			k = -1
		}
		if k < 0 {
			i++
			continue
		}
		t := s.tokens[k]
		segEnd := i
		if t.LStrip {
			segEnd = start + len(strings.TrimRightFunc(text[start:i], unicode.IsSpace))
		}
		if segEnd > start {
			onText(text[start:segEnd])
		}
		onToken(t)
		i += len(t.Content)
		if t.RStrip {
			for i < len(text) {
				r, n := utf8.DecodeRuneInString(text[i:])
				if !unicode.IsSpace(r) || (r == utf8.RuneError && n == 1) {
					break
				}
				i += n
			}
		}
		start = i
	}
	if start < len(text) {
		onText(text[start:])
	}
}
