package tokenizer

import (
	"fmt"
	"math"
	"slices"
)

// noMerge is the rank of a pair that has no merge rule.
const noMerge = math.MaxUint32

// pairTable maps a pair of token ids (left, right) to the rank of their merge
// rule and the id of the merged token. It is an open-addressing hash table
// keyed by the pair packed into a uint64, so a lookup costs no allocation and
// no hashing of byte strings; key and value share a cache line.
type pairTable struct {
	slots []pairSlot
	shift uint
}

type pairSlot struct {
	key uint64 // left<<32 | right; emptyPair marks a free slot
	val uint64 // rank<<32 | merged id
}

const emptyPair = math.MaxUint64

// tableSize returns a power-of-two size for n entries at load <= 1/2, and
// the shift that maps a 64-bit hash onto it.
func tableSize(n int) (int, uint) {
	size, shift := 16, uint(60)
	for size < 2*n {
		size *= 2
		shift--
	}
	return size, shift
}

func newPairTable(n int) pairTable {
	size, shift := tableSize(n)
	t := pairTable{slots: make([]pairSlot, size), shift: shift}
	for i := range t.slots {
		t.slots[i].key = emptyPair
	}
	return t
}

func (t *pairTable) slot(key uint64) uint64 { return (key * 0x9E3779B97F4A7C15) >> t.shift }

// put adds a rule; an existing rule for the same pair is kept (the earlier,
// higher-priority one wins, as in HF tokenizers).
func (t *pairTable) put(left, right int32, rank uint32, merged int32) {
	key := uint64(uint32(left))<<32 | uint64(uint32(right))
	mask := uint64(len(t.slots) - 1)
	for i := t.slot(key); ; i = (i + 1) & mask {
		switch t.slots[i].key {
		case emptyPair:
			t.slots[i] = pairSlot{key: key, val: uint64(rank)<<32 | uint64(uint32(merged))}
			return
		case key:
			return
		}
	}
}

// get returns the rank and merged id for the pair, or rank noMerge.
func (t *pairTable) get(left, right int32) (uint32, int32) {
	key := uint64(uint32(left))<<32 | uint64(uint32(right))
	mask := uint64(len(t.slots) - 1)
	for i := t.slot(key); ; i = (i + 1) & mask {
		sl := &t.slots[i]
		if sl.key == key {
			return uint32(sl.val >> 32), int32(uint32(sl.val))
		}
		if sl.key == emptyPair {
			return noMerge, -1
		}
	}
}

// wholeTable maps the bytes of a token to its id. Keys of up to 16 bytes
// live inline in an open-addressing table (no pointer chasing, no string
// hashing); longer ones in a Go map.
type wholeTable struct {
	slots []wholeSlot
	shift uint
	long  map[string]int32
}

type wholeSlot struct {
	k1, k2 uint64
	n      int32 // key length; 0 marks a free slot
	id     int32
}

const inlineKey = 16

// load8 reads up to 8 bytes of s little-endian.
func load8(s string) uint64 {
	switch len(s) {
	case 0:
		return 0
	case 1:
		return uint64(s[0])
	case 2:
		return uint64(s[0]) | uint64(s[1])<<8
	case 3:
		return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16
	case 4:
		return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24
	case 5:
		return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 | uint64(s[4])<<32
	case 6:
		return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 | uint64(s[4])<<32 | uint64(s[5])<<40
	case 7:
		return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 | uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48
	}
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func splitKey(s string) (k1, k2 uint64) {
	if len(s) <= 8 {
		return load8(s), 0
	}
	return load8(s[:8]), load8(s[8:])
}

// keyHash mixes an inline key of n bytes into 64 bits.
func keyHash(k1, k2 uint64, n int) uint64 {
	h := (k1 ^ uint64(n)<<59) * 0x9E3779B97F4A7C15
	h ^= k2 * 0xC2B2AE3D27D4EB4F
	return (h ^ h>>29) * 0x9E3779B97F4A7C15
}

func newWholeTable(n int) wholeTable {
	size, shift := tableSize(n)
	return wholeTable{slots: make([]wholeSlot, size), shift: shift, long: map[string]int32{}}
}

// add inserts s → id unless s is present; it reports whether s was new.
func (t *wholeTable) add(s string, id int32) bool {
	if len(s) == 0 {
		return false
	}
	if len(s) > inlineKey {
		if _, ok := t.long[s]; ok {
			return false
		}
		t.long[s] = id
		return true
	}
	k1, k2 := splitKey(s)
	mask := uint64(len(t.slots) - 1)
	for i := keyHash(k1, k2, len(s)) >> t.shift; ; i = (i + 1) & mask {
		sl := &t.slots[i]
		if sl.n == 0 {
			*sl = wholeSlot{k1: k1, k2: k2, n: int32(len(s)), id: id}
			return true
		}
		if sl.k1 == k1 && sl.k2 == k2 && int(sl.n) == len(s) {
			return false
		}
	}
}

// getInline looks up an inline key (n <= inlineKey) whose keyHash is h.
func (t *wholeTable) getInline(k1, k2 uint64, n int, h uint64) (int32, bool) {
	mask := uint64(len(t.slots) - 1)
	for i := h >> t.shift; ; i = (i + 1) & mask {
		sl := &t.slots[i]
		if sl.k1 == k1 && sl.k2 == k2 && int(sl.n) == n {
			return sl.id, true
		}
		if sl.n == 0 {
			return 0, false
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
	whole wholeTable
	// tokLen is each token's length in bytes (merged tokens are at most a
	// few hundred bytes long).
	tokLen []uint16
}

// mergeRule is one merge: left and right token ids and the merged token id.
type mergeRule struct{ left, right, merged int32 }

// newBPE builds the model from tokens (raw bytes per id, "" for none) and
// merge rules in priority order.
func newBPE(tokens []string, merges []mergeRule) (*bpe, error) {
	m := &bpe{merges: newPairTable(len(merges)), whole: newWholeTable(len(merges) + 256), tokLen: make([]uint16, len(tokens))}
	for i := range m.byteID {
		m.byteID[i] = -1
	}
	for id, tok := range tokens {
		if len(tok) > math.MaxUint16 {
			return nil, fmt.Errorf("token %d is %d bytes long", id, len(tok))
		}
		m.tokLen[id] = uint16(len(tok))
		if len(tok) == 1 && m.byteID[tok[0]] < 0 {
			m.byteID[tok[0]] = int32(id)
			m.whole.add(tok, int32(id))
		}
	}
	for b, id := range m.byteID {
		if id < 0 {
			return nil, fmt.Errorf("vocabulary has no token for byte %#02x", b)
		}
	}
	for rank, mg := range merges {
		if tokens[mg.left]+tokens[mg.right] != tokens[mg.merged] {
			return nil, fmt.Errorf("merge %d (%q %q) does not make token %d", rank, tokens[mg.left], tokens[mg.right], mg.merged)
		}
		m.merges.put(mg.left, mg.right, uint32(rank), mg.merged)
		m.whole.add(tokens[mg.merged], mg.merged)
	}
	return m, nil
}

// smallPiece is the longest piece merged with the simple quadratic loop on
// stack arrays; longer pieces use a heap.
const smallPiece = 48

// encState is the per-call scratch space of an encoding: a small
// direct-mapped cache of recent pieces and their ids (frequent words hit it
// and skip the large tables), and buffers for merging long pieces.
type encState struct {
	cache []cacheSlot
	parts []part
	heap  rankHeap
}

const (
	cacheBits = 13
	cacheIDs  = 4 // pieces of up to this many ids are cached
)

type cacheSlot struct {
	k1, k2 uint64
	n      uint8 // key length; 0 = empty
	count  uint8
	ids    [cacheIDs]int32
}

func newEncState() *encState {
	return &encState{cache: make([]cacheSlot, 1<<cacheBits)}
}

// encode appends the ids of one pre-token to dst.
func (m *bpe) encode(st *encState, dst []int, piece string) []int {
	if len(piece) > inlineKey {
		if id, ok := m.whole.long[piece]; ok {
			return append(dst, int(id))
		}
		return m.merge(st, dst, piece)
	}
	k1, k2 := splitKey(piece)
	h := keyHash(k1, k2, len(piece))
	c := &st.cache[h>>(64-cacheBits)]
	if c.k1 == k1 && c.k2 == k2 && int(c.n) == len(piece) {
		for _, id := range c.ids[:c.count] {
			dst = append(dst, int(id))
		}
		return dst
	}
	start := len(dst)
	if id, ok := m.whole.getInline(k1, k2, len(piece), h); ok {
		dst = append(dst, int(id))
	} else {
		dst = m.merge(st, dst, piece)
	}
	if n := len(dst) - start; n <= cacheIDs {
		*c = cacheSlot{k1: k1, k2: k2, n: uint8(len(piece)), count: uint8(n)}
		for i, id := range dst[start:] {
			c.ids[i] = int32(id)
		}
	}
	return dst
}

// merge appends the ids of a piece that is not a token as a whole.
func (m *bpe) merge(st *encState, dst []int, piece string) []int {
	if len(piece) > hugePiece {
		if out, ok := m.encodeHuge(dst, piece); ok {
			return out
		}
	}
	if len(piece) > smallPiece {
		return m.encodeLong(st, dst, piece)
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

// hugePiece is the length above which a piece is merged rank by rank
// (encodeHuge) rather than with a heap.
const hugePiece = 4096

// encodeHuge merges a very long piece (a 100 MB line of one letter, say) in
// linear time and with sequential memory access: it applies all merges of
// the lowest pending rank, in position order, before moving to the next
// rank. That is the heap's order as long as every merge a merge creates has
// a higher rank than the merge itself, which holds for merge tables learned
// by BPE (a rule's parts come from earlier rules); if a table breaks it,
// encodeHuge reports false and the heap takes over.
//
// Memory is 4 bytes per input byte plus 4 per pending merge: the part
// starting at position i is ids[i] (-1 inside a part), it ends after its
// token's length, and the previous part is found by stepping back over at
// most one token's length.
func (m *bpe) encodeHuge(dst []int, piece string) ([]int, bool) {
	n := int32(len(piece))
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = m.byteID[piece[i]]
	}
	next := func(l int32) int32 {
		if e := l + int32(m.tokLen[ids[l]]); e < n {
			return e
		}
		return -1
	}
	prev := func(l int32) int32 {
		for p := l - 1; p >= 0; p-- {
			if ids[p] >= 0 {
				return p
			}
		}
		return -1
	}
	// Pending merge positions by rank: lists[index[rank]].
	index := map[uint32]int{}
	var lists [][]int32
	var pending rankHeap // ranks with a list
	lastRank, lastList := uint32(noMerge), -1
	add := func(rank uint32, pos int32) {
		if rank != lastRank {
			k, ok := index[rank]
			if !ok {
				k = len(lists)
				lists = append(lists, nil)
				index[rank] = k
				pending.push(uint64(rank))
			}
			lastRank, lastList = rank, k
		}
		lists[lastList] = append(lists[lastList], pos)
	}
	for i := int32(0); i < n-1; i++ {
		if rank, _ := m.merges.get(ids[i], ids[i+1]); rank != noMerge {
			add(rank, i)
		}
	}
	for len(pending) > 0 {
		rank := uint32(pending.pop())
		k := index[rank]
		list := lists[k]
		lists[k] = nil
		delete(index, rank)
		lastRank = noMerge
		if !slices.IsSorted(list) {
			slices.Sort(list)
		}
		for _, l := range list {
			if ids[l] < 0 {
				continue
			}
			r := next(l)
			if r < 0 {
				continue
			}
			got, merged := m.merges.get(ids[l], ids[r])
			if got != rank {
				continue // stale
			}
			ids[l] = merged
			ids[r] = -1
			if nr := next(l); nr >= 0 {
				if nrank, _ := m.merges.get(merged, ids[nr]); nrank != noMerge {
					if nrank <= rank {
						return dst, false
					}
					add(nrank, l)
				}
			}
			if p := prev(l); p >= 0 {
				if prank, _ := m.merges.get(ids[p], merged); prank != noMerge {
					if prank <= rank {
						return dst, false
					}
					add(prank, p)
				}
			}
		}
	}
	for i := int32(0); i >= 0; i = next(i) {
		dst = append(dst, int(ids[i]))
	}
	return dst, true
}

// part is one part of a long piece being merged, in a linked list.
type part struct{ id, prev, next int32 }

// encodeLong merges a long piece in O(n log n): the parts form a linked
// list, and candidate merges wait in a binary min-heap of rank<<32|position
// (lowest rank first, then leftmost). Entries made stale by earlier merges
// are recognised when popped: the pair at that position no longer has the
// entry's rank.
func (m *bpe) encodeLong(st *encState, dst []int, piece string) []int {
	n := len(piece)
	if cap(st.parts) < n {
		st.parts = make([]part, n)
	}
	parts := st.parts[:n]
	for i := 0; i < n; i++ {
		parts[i] = part{id: m.byteID[piece[i]], prev: int32(i - 1), next: int32(i + 1)}
	}
	parts[n-1].next = -1
	h := st.heap[:0]
	defer func() { st.heap = h[:0] }()
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
