package tokenizer

import (
	"fmt"
	"math"
)

// noMerge is the rank of a pair that has no merge rule.
const noMerge = math.MaxUint32

// pairTable maps a pair of token ids (left, right) to the rank of their merge
// rule and the id of the merged token. It is an open-addressing hash table
// keyed by the pair packed into a uint64, so a lookup costs no allocation and
// no hashing of byte strings.
type pairTable struct {
	keys  []uint64 // left<<32 | right; emptyPair marks a free slot
	vals  []uint64 // rank<<32 | merged id
	shift uint
}

const emptyPair = math.MaxUint64

func newPairTable(n int) pairTable {
	size, shift := 16, uint(60)
	for size < 2*n {
		size *= 2
		shift--
	}
	t := pairTable{keys: make([]uint64, size), vals: make([]uint64, size), shift: shift}
	for i := range t.keys {
		t.keys[i] = emptyPair
	}
	return t
}

func (t *pairTable) slot(key uint64) uint64 { return (key * 0x9E3779B97F4A7C15) >> t.shift }

// put adds a rule; an existing rule for the same pair is kept (the earlier,
// higher-priority one wins, as in HF tokenizers).
func (t *pairTable) put(left, right int32, rank uint32, merged int32) {
	key := uint64(uint32(left))<<32 | uint64(uint32(right))
	mask := uint64(len(t.keys) - 1)
	for i := t.slot(key); ; i = (i + 1) & mask {
		switch t.keys[i] {
		case emptyPair:
			t.keys[i] = key
			t.vals[i] = uint64(rank)<<32 | uint64(uint32(merged))
			return
		case key:
			return
		}
	}
}

// get returns the rank and merged id for the pair, or rank noMerge.
func (t *pairTable) get(left, right int32) (uint32, int32) {
	key := uint64(uint32(left))<<32 | uint64(uint32(right))
	mask := uint64(len(t.keys) - 1)
	for i := t.slot(key); ; i = (i + 1) & mask {
		switch t.keys[i] {
		case key:
			v := t.vals[i]
			return uint32(v >> 32), int32(uint32(v))
		case emptyPair:
			return noMerge, -1
		}
	}
}

// bpe is a byte-level BPE model: byte tokens, merge rules, and a direct
// lookup for pieces that are a token as a whole.
type bpe struct {
	byteID [256]int32
	merges pairTable
	// whole maps the bytes of every token that byte-pair merging can build
	// (the 256 byte tokens and every merge result) to its id. A piece found
	// here is emitted as one token without merging, as tiktoken does.
	whole map[string]int32
}

// newBPE builds the model from tokens (raw bytes per id, "" for none) and
// merge rules given as pairs of ids in priority order.
func newBPE(tokens []string, merges [][2]int32) (*bpe, error) {
	m := &bpe{merges: newPairTable(len(merges)), whole: make(map[string]int32, len(merges)+256)}
	for i := range m.byteID {
		m.byteID[i] = -1
	}
	all := make(map[string]int32, len(tokens))
	for id, tok := range tokens {
		if tok == "" {
			continue
		}
		if _, dup := all[tok]; !dup {
			all[tok] = int32(id)
		}
		if len(tok) == 1 && m.byteID[tok[0]] < 0 {
			m.byteID[tok[0]] = int32(id)
			m.whole[tok] = int32(id)
		}
	}
	for b, id := range m.byteID {
		if id < 0 {
			return nil, fmt.Errorf("vocabulary has no token for byte %#02x", b)
		}
	}
	for rank, mg := range merges {
		l, r := mg[0], mg[1]
		merged := tokens[l] + tokens[r]
		id, ok := all[merged]
		if !ok {
			return nil, fmt.Errorf("merge %d (%q %q): result is not a known token", rank, tokens[l], tokens[r])
		}
		m.merges.put(l, r, uint32(rank), id)
		if _, ok := m.whole[merged]; !ok {
			m.whole[merged] = id
		}
	}
	return m, nil
}

// smallPiece is the longest piece merged with the simple quadratic loop on
// stack arrays; longer pieces use a heap.
const smallPiece = 48

// encode appends the ids of one pre-token to dst.
func (m *bpe) encode(dst []int, piece string) []int {
	if id, ok := m.whole[piece]; ok {
		return append(dst, int(id))
	}
	if len(piece) > smallPiece {
		return m.encodeLong(dst, piece)
	}
	var idBuf, mergedBuf [smallPiece]int32
	var rankBuf [smallPiece]uint32
	n := len(piece)
	ids, merged, ranks := idBuf[:n], mergedBuf[:n], rankBuf[:n]
	for i := 0; i < n; i++ {
		ids[i] = m.byteID[piece[i]]
	}
	for i := 0; i < n-1; i++ {
		ranks[i], merged[i] = m.merges.get(ids[i], ids[i+1])
	}
	ranks[n-1] = noMerge
	for n > 1 {
		best, bi := uint32(noMerge), -1
		for i := 0; i < n-1; i++ {
			if ranks[i] < best {
				best, bi = ranks[i], i
			}
		}
		if bi < 0 {
			break
		}
		ids[bi] = merged[bi]
		copy(ids[bi+1:n-1], ids[bi+2:n])
		copy(ranks[bi+1:n-1], ranks[bi+2:n])
		copy(merged[bi+1:n-1], merged[bi+2:n])
		n--
		ranks[n-1] = noMerge
		if bi+1 < n {
			ranks[bi], merged[bi] = m.merges.get(ids[bi], ids[bi+1])
		} else {
			ranks[bi] = noMerge
		}
		if bi > 0 {
			ranks[bi-1], merged[bi-1] = m.merges.get(ids[bi-1], ids[bi])
		}
	}
	for _, id := range ids[:n] {
		dst = append(dst, int(id))
	}
	return dst
}

// encodeLong merges a long piece in O(n log n): the parts form a linked
// list, and candidate merges wait in a binary min-heap of rank<<32|position
// (lowest rank first, then leftmost). Entries made stale by earlier merges
// are recognised when popped: the pair at that position no longer has the
// entry's rank.
func (m *bpe) encodeLong(dst []int, piece string) []int {
	type part struct{ id, prev, next int32 }
	n := len(piece)
	parts := make([]part, n)
	for i := 0; i < n; i++ {
		parts[i] = part{id: m.byteID[piece[i]], prev: int32(i - 1), next: int32(i + 1)}
	}
	parts[n-1].next = -1
	h := make(rankHeap, 0, n)
	for i := 0; i < n-1; i++ {
		if rank, _ := m.merges.get(parts[i].id, parts[i+1].id); rank != noMerge {
			h = append(h, uint64(rank)<<32|uint64(i))
		}
	}
	h.init()
	for len(h) > 0 {
		top := h.pop()
		rank, l := uint32(top>>32), int32(uint32(top))
		r := parts[l].next
		if parts[l].id < 0 || r < 0 {
			continue
		}
		got, merged := m.merges.get(parts[l].id, parts[r].id)
		if got != rank {
			continue // stale
		}
		parts[l].id = merged
		parts[r].id = -1
		nr := parts[r].next
		parts[l].next = nr
		if nr >= 0 {
			parts[nr].prev = l
			if rank, _ := m.merges.get(merged, parts[nr].id); rank != noMerge {
				h.push(uint64(rank)<<32 | uint64(l))
			}
		}
		if p := parts[l].prev; p >= 0 {
			if rank, _ := m.merges.get(parts[p].id, merged); rank != noMerge {
				h.push(uint64(rank)<<32 | uint64(p))
			}
		}
	}
	for i := int32(0); i >= 0; i = parts[i].next {
		dst = append(dst, int(parts[i].id))
	}
	return dst
}

// rankHeap is a binary min-heap of packed rank<<32|position keys.
type rankHeap []uint64

func (h rankHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *rankHeap) push(v uint64) {
	*h = append(*h, v)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p] <= v {
			break
		}
		s[i] = s[p]
		i = p
	}
	s[i] = v
}

func (h *rankHeap) pop() uint64 {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	*h = s[:last]
	if last > 0 {
		h.down(0)
	}
	return top
}

func (h rankHeap) down(i int) {
	v := h[i]
	n := len(h)
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && h[c+1] < h[c] {
			c++
		}
		if h[c] >= v {
			break
		}
		h[i] = h[c]
		i = c
	}
	h[i] = v
}
