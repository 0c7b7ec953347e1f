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
	allLogits                  Buffer // [batch, vocab], allocated on first use
}

// scratchBytes is the size of the buffers newScratch allocates (without
// the all-positions logits, allocated on first use).
func scratchBytes(c *Config, batch int) int64 {
	qkv := int64(c.Heads+2*c.KVHeads) * int64(c.HeadDim)
	row := 3*int64(c.Hidden) + qkv + int64(c.Heads)*int64(c.HeadDim) + 3*int64(c.FFN)
	return 4 * (int64(batch)*row + int64(c.Vocab))
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
// model, filling the KV cache, and returns the logits buffer: the last
// position's logits ([1, vocab]), or every position's when all is set
// ([len(ids), vocab]). The caller holds m.mu.
func (m *Model) forward(s *scratch, cache KVCache, rope *Rope, ids []int, pos0 int, all bool) Buffer {
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
	if all {
		if s.allLogits == nil {
			s.allLogits = b.NewBuffer(s.batch, c.Vocab)
		}
		out := v(s.allLogits)
		b.RMSNorm(h, x, m.w.outNorm, eps)
		b.MatMul(out, h, m.w.output)
		return out
	}
	last := b.Rows(x, n-1, 1)
	hl := b.Rows(h, n-1, 1)
	b.RMSNorm(hl, last, m.w.outNorm, eps)
	b.MatMul(s.logits, hl, m.w.output)
	return s.logits
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

// prefill runs ids through the model in batches starting at pos0 and calls
// emit with each batch's logits when all is set; it returns the logits
// buffer of the last batch.
func (m *Model) prefill(ctx context.Context, s *scratch, cache KVCache, rope *Rope, ids []int, pos0 int, all bool, emit func(Buffer, int) error) (Buffer, error) {
	var out Buffer
	for i := 0; i < len(ids); i += s.batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		j := min(i+s.batch, len(ids))
		out = m.forward(s, cache, rope, ids[i:j], pos0+i, all)
		if emit != nil {
			if err := emit(out, i); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
