package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// spm is a llama-style SentencePiece BPE model (GGUF tokenizer.ggml.model
// "llama"): pieces merge by score, spaces are written as U+2581, and
// characters without a piece fall back to <0xXX> byte tokens. It follows
// llama.cpp's llm_tokenizer_spm.
type spm struct {
	pieces         map[string]int32 // piece text (with U+2581) → id
	scores         []float32
	byteID         [256]int32
	unk            int
	addSpacePrefix bool
	// wordByWord is set when no piece has U+2581 after another character,
	// so text can be merged one word at a time.
	wordByWord bool
}

const spmSpace = "\u2581"

// spmSymbol is one symbol of the text being merged, in a linked list.
type spmSymbol struct {
	start, end int // byte range in the escaped text
	prev, next int
}

type spmBigram struct {
	score       float32
	left, right int
	size        int // byte length of the merged text, to drop stale entries
}

func (a spmBigram) better(b spmBigram) bool {
	return a.score > b.score || (a.score == b.score && a.left < b.left)
}

// encode appends the ids of text; first is true at the start of the input
// and after an added token, where the dummy-prefix space is added.
func (m *spm) encode(dst []int, text string, first bool) []int {
	if text == "" {
		return dst
	}
	s := text
	if m.addSpacePrefix && first {
		s = " " + s
	}
	s = strings.ReplaceAll(s, " ", spmSpace)
	if !m.wordByWord {
		return m.encodeWord(&spmScratch{}, dst, s)
	}
	// No merge can cross the start of a run of spaces, so each word (with
	// the spaces before it) merges alone, in scratch memory of its size.
	var sc spmScratch
	for len(s) > 0 {
		end := len(s)
		k := len(s) - len(strings.TrimLeft(s, spmSpace))
		if j := strings.Index(s[k:], spmSpace); j >= 0 {
			end = k + j
		}
		dst = m.encodeWord(&sc, dst, s[:end])
		s = s[end:]
	}
	return dst
}

// spmScratch is the memory encodeWord reuses from one word to the next.
type spmScratch struct {
	syms []spmSymbol
	heap []spmBigram
}

// encodeWord merges s, text with spaces already written as U+2581, and
// appends its ids.
func (m *spm) encodeWord(sc *spmScratch, dst []int, s string) []int {
	syms := sc.syms[:0]
	for i := 0; i < len(s); {
		_, n := utf8.DecodeRuneInString(s[i:])
		syms = append(syms, spmSymbol{start: i, end: i + n, prev: len(syms) - 1, next: len(syms) + 1})
		i += n
	}
	syms[len(syms)-1].next = -1
	sc.syms = syms
	heap := sc.heap[:0]
	push := func(l, r int) {
		if l < 0 || r < 0 {
			return
		}
		text := s[syms[l].start:syms[r].end]
		id, ok := m.pieces[text]
		if !ok {
			return
		}
		b := spmBigram{score: m.scores[id], left: l, right: r, size: len(text)}
		heap = append(heap, b)
		for i := len(heap) - 1; i > 0; {
			p := (i - 1) / 2
			if !heap[i].better(heap[p]) {
				break
			}
			heap[i], heap[p] = heap[p], heap[i]
			i = p
		}
	}
	pop := func() spmBigram {
		top := heap[0]
		last := len(heap) - 1
		heap[0] = heap[last]
		heap = heap[:last]
		for i := 0; ; {
			l, r, b := 2*i+1, 2*i+2, i
			if l < len(heap) && heap[l].better(heap[b]) {
				b = l
			}
			if r < len(heap) && heap[r].better(heap[b]) {
				b = r
			}
			if b == i {
				break
			}
			heap[i], heap[b] = heap[b], heap[i]
			i = b
		}
		return top
	}
	for i := 1; i < len(syms); i++ {
		push(i-1, i)
	}
	for len(heap) > 0 {
		b := pop()
		l, r := &syms[b.left], &syms[b.right]
		if l.end == l.start || r.end == r.start || l.next != b.right || r.end-l.start != b.size {
			continue // stale
		}
		l.end = r.end
		r.start = r.end // mark merged
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = b.left
		}
		push(l.prev, b.left)
		push(b.left, l.next)
	}
	sc.heap = heap
	for i := 0; i >= 0; i = syms[i].next {
		piece := s[syms[i].start:syms[i].end]
		if id, ok := m.pieces[piece]; ok {
			dst = append(dst, int(id))
			continue
		}
		for j := 0; j < len(piece); j++ {
			if id := m.byteID[piece[j]]; id >= 0 {
				dst = append(dst, int(id))
			} else if m.unk >= 0 {
				dst = append(dst, m.unk)
			}
		}
	}
	return dst
}

// decodePiece returns the text of an SPM piece: U+2581 becomes a space and
// <0xXX> byte tokens become their byte.
func decodeSPMPiece(piece string, isByte bool) (string, error) {
	if isByte {
		var b byte
		if _, err := fmt.Sscanf(piece, "<0x%02X>", &b); err != nil || len(piece) != 6 {
			return "", fmt.Errorf("byte token %q is not <0xXX>", piece)
		}
		return string([]byte{b}), nil
	}
	return strings.ReplaceAll(piece, spmSpace, " "), nil
}
