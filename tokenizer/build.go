package tokenizer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// maxVocab bounds vocabulary sizes read from files (corrupt counts must not
// turn into huge allocations).
const maxVocab = 1 << 22

// spec is what every loader extracts from its source before build turns it
// into a Tokenizer.
type spec struct {
	kind    modelKind
	pattern Pattern
	// vocab maps ids to token text as stored in the source: byte-level
	// strings for BPE, pieces with U+2581 for SentencePiece. "" = no token.
	vocab  []string
	merges [][2]string // BPE merge rules in priority order
	added  []AddedToken

	// SentencePiece only.
	scores         []float32
	byteTokens     []bool // ids that are <0xXX> byte tokens
	unk            int
	addSpacePrefix bool

	bos, eos int // -1 = none
	wantBOS  bool
	stopIDs  []int  // extra eos ids (generation_config.json, GGUF eot)
	template string // Jinja chat template, "" = none
}

func newSpec() *spec { return &spec{bos: -1, eos: -1, unk: -1} }

// build validates s and assembles the Tokenizer.
func build(s *spec) (*Tokenizer, error) {
	n := len(s.vocab)
	for _, a := range s.added {
		if a.ID < 0 || a.ID >= maxVocab {
			return nil, fmt.Errorf("added token %q: id %d out of range", a.Content, a.ID)
		}
		if a.Content == "" {
			return nil, fmt.Errorf("added token %d has no content", a.ID)
		}
		n = max(n, a.ID+1)
	}
	if n == 0 {
		return nil, errors.New("empty vocabulary")
	}
	if n > maxVocab {
		return nil, fmt.Errorf("vocabulary of %d tokens is too large", n)
	}
	t := &Tokenizer{
		kind:    s.kind,
		pattern: s.pattern,
		tokens:  make([]string, n),
		special: make([]bool, n),
		bos:     -1,
		eos:     -1,
	}
	isAdded := make([]bool, n)
	for _, a := range s.added {
		isAdded[a.ID] = true
	}
	switch s.kind {
	case kindBPE:
		bl := newByteLevel()
		for id, tok := range s.vocab {
			if tok == "" || isAdded[id] {
				continue
			}
			raw, err := bl.decode(tok)
			if err != nil {
				return nil, fmt.Errorf("id %d: %w", id, err)
			}
			t.tokens[id] = raw
		}
		ids := make(map[string]int32, len(s.vocab))
		for id, tok := range s.vocab {
			if tok != "" && !isAdded[id] {
				if _, dup := ids[tok]; !dup {
					ids[tok] = int32(id)
				}
			}
		}
		rules := make([]mergeRule, len(s.merges))
		for i, mg := range s.merges {
			l, okl := ids[mg[0]]
			r, okr := ids[mg[1]]
			if !okl || !okr {
				return nil, fmt.Errorf("merge %d (%q %q) names an unknown token", i, mg[0], mg[1])
			}
			// Byte-level text maps byte by byte, so it concatenates like the bytes.
			merged, ok := ids[mg[0]+mg[1]]
			if !ok {
				return nil, fmt.Errorf("merge %d (%q %q): result is not a known token", i, mg[0], mg[1])
			}
			rules[i] = mergeRule{l, r, merged}
		}
		m, err := newBPE(t.tokens, rules)
		if err != nil {
			return nil, err
		}
		t.bpe = m
	case kindSPM:
		if len(s.scores) != len(s.vocab) {
			return nil, fmt.Errorf("%d scores for %d tokens", len(s.scores), len(s.vocab))
		}
		m := &spm{pieces: make(map[string]int32, len(s.vocab)), scores: s.scores, unk: s.unk, addSpacePrefix: s.addSpacePrefix, wordByWord: true}
		for i := range m.byteID {
			m.byteID[i] = -1
		}
		for id, piece := range s.vocab {
			isByte := id < len(s.byteTokens) && s.byteTokens[id]
			text, err := decodeSPMPiece(piece, isByte)
			if err != nil {
				return nil, fmt.Errorf("id %d: %w", id, err)
			}
			if isByte {
				m.byteID[text[0]] = int32(id)
			} else if piece != "" && !isAdded[id] {
				if _, dup := m.pieces[piece]; !dup {
					m.pieces[piece] = int32(id)
				}
				if strings.Contains(strings.TrimLeft(piece, spmSpace), spmSpace) {
					m.wordByWord = false
				}
			}
			if !isAdded[id] {
				t.tokens[id] = text
			}
		}
		t.spm = m
	}
	seen := map[string]bool{}
	var added []AddedToken
	for _, a := range s.added {
		t.tokens[a.ID] = a.Content
		t.special[a.ID] = true
		if !seen[a.Content] {
			seen[a.Content] = true
			added = append(added, a)
		}
	}
	t.added = newAddedSet(added)
	if s.bos >= 0 && s.bos < n {
		t.bos = s.bos
	}
	if s.eos >= 0 && s.eos < n {
		t.eos = s.eos
	}
	t.wantBOS = s.wantBOS
	if s.template != "" {
		t.chat, _ = recognizeTemplate(s.template)
	}
	addStop := func(id int) {
		if id >= 0 && id < n && !slices.Contains(t.stop, id) {
			t.stop = append(t.stop, id)
		}
	}
	addStop(t.eos)
	for _, id := range s.stopIDs {
		addStop(id)
	}
	if eot := t.chat.endOfTurn(); eot != "" {
		for _, a := range added {
			if a.Content == eot {
				addStop(a.ID)
			}
		}
	}
	return t, nil
}
