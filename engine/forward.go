package engine

import (
	"context"
	"fmt"
)

// scratch holds a session's activation buffers, sized for batch tokens.
type scratch struct {
	batch                      int
	x, h, qkv, att, o, gu, act Buffer
	logits                     Buffer // [1, vocab]
	allLogits                  Buffer // [min(batch, logitRows), vocab], allocated on first use
}

// logitRows is the most positions whose logits a forward pass computes at
// once when it needs every position's: phi-4's 100352-entry vocabulary
// makes a row 392 KiB, so a 512-token batch at once would take 196 MiB.
const logitRows = 64

// scratchBytes is the size of the buffers a session's forward passes use:
// newScratch's, and the all-positions logits allocated on first use.
func scratchBytes(c *Config, batch int) int64 {
	qkv := int64(c.Heads+2*c.KVHeads) * int64(c.HeadDim)
	row := 3*int64(c.Hidden) + qkv + int64(c.Heads)*int64(c.HeadDim) + 3*int64(c.FFN)
	return 4 * (int64(batch)*row + int64(1+min(batch, logitRows))*int64(c.Vocab))
}

func newScratch(b Backend, c *Config, batch int) *scratch {
	qkv := (c.Heads + 2*c.KVHeads) * c.HeadDim
	return &scratch{
		batch:  batch,
		x:      b.NewBuffer(batch, c.Hidden),
		h:      b.NewBuffer(batch, c.Hidden),
		qkv:    b.NewBuffer(batch, qkv),
		att:    b.NewBuffer(batch, c.Heads*c.HeadDim),
		o:      b.NewBuffer(batch, c.Hidden),
		gu:     b.NewBuffer(batch, 2*c.FFN),
		act:    b.NewBuffer(batch, c.FFN),
		logits: b.NewBuffer(1, c.Vocab),
	}
}

// forward runs ids (at most s.batch of them) at positions pos0.. through the
// model, filling the KV cache, and returns the last position's logits
// ([1, vocab]). With emit set it instead computes every position's logits,
// at most logitRows positions at a time, hands each group to emit with the
// index in ids of its first position, and returns the last group's. The
// caller holds m.mu.
func (m *Model) forward(s *scratch, cache KVCache, rope *Rope, ids []int, pos0 int, emit func(Buffer, int) error) (Buffer, error) {
	b, c, n := m.backend, &m.cfg, len(ids)
	v := func(buf Buffer) Buffer {
		if n == buf.Rows() {
			return buf
		}
		return b.Rows(buf, 0, n)
	}
	x, h, qkv, att, o, gu, act := v(s.x), v(s.h), v(s.qkv), v(s.att), v(s.o), v(s.gu), v(s.act)
	eps := float32(c.RMSEps)
	b.Embed(x, m.w.embed, ids)
	for l := range m.w.layers {
		w := &m.w.layers[l]
		b.RMSNorm(h, x, w.attnNorm, eps)
		b.MatMul(qkv, h, w.qkv)
		b.RoPE(qkv, pos0, rope)
		b.Attention(att, qkv, cache, l, pos0)
		b.MatMul(o, att, w.out)
		b.Add(x, o)
		b.RMSNorm(h, x, w.ffnNorm, eps)
		b.MatMul(gu, h, w.gateUp)
		b.SiLUMul(act, gu)
		b.MatMul(o, act, w.down)
		b.Add(x, o)
	}
	if emit != nil {
		if s.allLogits == nil {
			s.allLogits = b.NewBuffer(min(s.batch, logitRows), c.Vocab)
		}
		var out Buffer
		for r0 := 0; r0 < n; r0 += logitRows {
			k := min(logitRows, n-r0)
			hr := b.Rows(h, r0, k)
			b.RMSNorm(hr, b.Rows(x, r0, k), m.w.outNorm, eps)
			out = s.allLogits
			if k != out.Rows() {
				out = b.Rows(out, 0, k)
			}
			b.MatMul(out, hr, m.w.output)
			if err := emit(out, r0); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	last := b.Rows(x, n-1, 1)
	hl := b.Rows(h, n-1, 1)
	b.RMSNorm(hl, last, m.w.outNorm, eps)
	b.MatMul(s.logits, hl, m.w.output)
	return s.logits, nil
}

// checkIDs rejects token ids outside the vocabulary.
func (m *Model) checkIDs(ids []int) error {
	for i, id := range ids {
		if id < 0 || id >= m.cfg.Vocab {
			return fmt.Errorf("token %d at index %d is outside the vocabulary [0, %d)", id, i, m.cfg.Vocab)
		}
	}
	return nil
}

// prefill runs ids through the model in batches starting at pos0. With
// emit set, every position's logits are computed and handed to emit in
// groups (see forward), with the index in ids of the group's first
// position. It returns the last logits buffer computed.
func (m *Model) prefill(ctx context.Context, s *scratch, cache KVCache, rope *Rope, ids []int, pos0 int, emit func(Buffer, int) error) (Buffer, error) {
	var out Buffer
	for i := 0; i < len(ids); i += s.batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		j := min(i+s.batch, len(ids))
		var e func(Buffer, int) error
		if emit != nil {
			e = func(b Buffer, r int) error { return emit(b, i+r) }
		}
		var err error
		if out, err = m.forward(s, cache, rope, ids[i:j], pos0+i, e); err != nil {
			return nil, err
		}
	}
	return out, nil
}
