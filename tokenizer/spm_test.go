package tokenizer

import (
	"runtime"
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// TestSPMWordByWord: merging stories260K's text word by word (at each run of
// spaces) gives the ids of merging the whole text at once, and keeps the
// scratch memory of a long input small.
func TestSPMWordByWord(t *testing.T) {
	tok := mustLoad(t, testrefs.Path(t, "models", "stories260K", "stories260K.gguf"))
	m := tok.spm
	if !m.wordByWord {
		t.Fatal("stories260K has pieces with a space after another character")
	}
	docs := benchCorpus(t, 256<<10)
	docs = append(docs, "  lead", "trail  ", "a  b   c", "▁x▁▁y", "\xe2\x96 \xe2\x96\x81", "日本 語", " ", "")
	for _, d := range docs {
		whole := *m
		whole.wordByWord = false
		checkIDs(t, d[:min(len(d), 20)], m.encode(nil, d, true), whole.encode(nil, d, true))
	}
	text := strings.Repeat("Once upon a time, there was a little girl named Lily. ", 1<<15) // 1.7 MB
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	ids := tok.Encode(text, EncodeOptions{})
	runtime.ReadMemStats(&m1)
	if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 16*uint64(len(text)) {
		t.Errorf("encoding %d bytes allocated %d bytes", len(text), alloc)
	}
	if tok.Decode(ids) != text {
		t.Error("round trip")
	}
}

// TestSPMWordByWordNeedsVocab: a vocabulary with a piece that has a space
// after another character (it can merge across words) is merged whole.
func TestSPMWordByWordNeedsVocab(t *testing.T) {
	for _, tt := range []struct {
		pieces []string
		want   bool
	}{
		{[]string{"a", spmSpace, spmSpace + "a", spmSpace + spmSpace}, true},
		{[]string{"a", spmSpace, spmSpace + "a", "a" + spmSpace}, false},
		{[]string{"a", spmSpace, spmSpace + "a" + spmSpace + "a"}, false},
	} {
		s := newSpec()
		s.kind = kindSPM
		s.vocab = tt.pieces
		s.scores = make([]float32, len(tt.pieces))
		tok, err := build(s)
		if err != nil {
			t.Fatal(err)
		}
		if tok.spm.wordByWord != tt.want {
			t.Errorf("%q: wordByWord = %v", tt.pieces, tok.spm.wordByWord)
		}
		if got := tok.Decode(tok.Encode("a a  a", EncodeOptions{})); got != "a a  a" {
			t.Errorf("%q: round trip %q", tt.pieces, got)
		}
	}
}
