package cpu

import (
	"fmt"
	"math"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/quant"
)

// kvCache stores, per layer, keys and values as [kvHeads][ctx][headDim]
// elements (F16 or F32), so each head's keys are contiguous.
type kvCache struct {
	spec engine.KVSpec
	elem int      // bytes per element
	k, v [][]byte // per layer
}

func (c *kvCache) Spec() engine.KVSpec { return c.spec }
func (c *kvCache) Bytes() int64 {
	return 2 * int64(c.spec.Layers) * int64(c.spec.KVHeads) * int64(c.spec.Ctx) * int64(c.spec.HeadDim) * int64(c.elem)
}
func (c *kvCache) Close() error { c.k, c.v = nil, nil; return nil }

// slot returns the bytes of position p of head g in one layer's k or v.
func (c *kvCache) slot(layer []byte, g, p int) []byte {
	hd := c.spec.HeadDim
	off := ((g*c.spec.Ctx + p) * hd) * c.elem
	return layer[off : off+hd*c.elem]
}

// NewKVCache allocates a zeroed cache.
func (b *Backend) NewKVCache(spec engine.KVSpec) (engine.KVCache, error) {
	var elem int
	switch spec.Type {
	case quant.F16:
		elem = 2
	case quant.F32:
		elem = 4
	default:
		return nil, fmt.Errorf("%w, not %s", errKVType, spec.Type)
	}
	if spec.Layers <= 0 || spec.Ctx <= 0 || spec.KVHeads <= 0 || spec.HeadDim <= 0 {
		return nil, fmt.Errorf("cpu: invalid KV cache shape %+v", spec)
	}
	c := &kvCache{spec: spec, elem: elem}
	per := spec.KVHeads * spec.Ctx * spec.HeadDim * elem
	for l := 0; l < spec.Layers; l++ {
		c.k = append(c.k, make([]byte, per))
		c.v = append(c.v, make([]byte, per))
	}
	return c, nil
}

// Attention stores the new keys and values and attends over the cache.
func (b *Backend) Attention(dst, qkv engine.Buffer, cache engine.KVCache, layer, pos0 int) {
	d, s, c := buf(dst), buf(qkv), cache.(*kvCache)
	sp := c.spec
	hd, kvh := sp.HeadDim, sp.KVHeads
	heads := d.cols / hd
	n := s.rows
	if s.cols != (heads+2*kvh)*hd || d.rows != n || heads%kvh != 0 {
		panic(fmt.Sprintf("cpu: attention shape mismatch: qkv [%d,%d], dst [%d,%d], %d kv heads of %d", s.rows, s.cols, d.rows, d.cols, kvh, hd))
	}
	if pos0 < 0 || pos0+n > sp.Ctx {
		panic(fmt.Sprintf("cpu: attention positions [%d,%d) outside the %d-position cache", pos0, pos0+n, sp.Ctx))
	}
	kl, vl := c.k[layer], c.v[layer]
	for i := 0; i < n; i++ {
		row := s.data[i*s.cols : (i+1)*s.cols]
		for g := 0; g < kvh; g++ {
			kx := row[(heads+g)*hd : (heads+g+1)*hd]
			vx := row[(heads+kvh+g)*hd : (heads+kvh+g+1)*hd]
			if c.elem == 2 {
				b.k.f16Row(kx, c.slot(kl, g, pos0+i))
				b.k.f16Row(vx, c.slot(vl, g, pos0+i))
			} else {
				copy(c.slot(kl, g, pos0+i), f32AsBytes(kx))
				copy(c.slot(vl, g, pos0+i), f32AsBytes(vx))
			}
		}
	}
	if useBlockedAttention(c, n) && c.finiteValues(layer, pos0, n) {
		b.attendBlocked(d, s, c, layer, pos0, heads)
		return
	}
	group := heads / kvh
	scale := float32(1 / math.Sqrt(float64(hd)))
	// One task per token and KV group: the group's query heads (up to four
	// at a time) share each key and value row as it is loaded and
	// converted, so the cache is read once per group, not once per head.
	tasks := n * kvh
	b.pool.parallel(tasks, b.pool.grainFor(tasks, 1), func(worker, lo, hi int) {
		scores := b.scratchFor(worker, min(group, attnHeads)*(pos0+n))
		for t := lo; t < hi; t++ {
			i, g := t/kvh, t%kvh
			np := pos0 + i + 1
			keys := kl[g*sp.Ctx*hd*c.elem : (g*sp.Ctx+np)*hd*c.elem]
			vals := vl[g*sp.Ctx*hd*c.elem : (g*sp.Ctx+np)*hd*c.elem]
			for h0 := g * group; h0 < (g+1)*group; h0 += attnHeads {
				gn := min(attnHeads, (g+1)*group-h0)
				q := s.data[i*s.cols+h0*hd : i*s.cols+(h0+gn)*hd]
				out := d.data[i*d.cols+h0*hd : i*d.cols+(h0+gn)*hd]
				sc := scores[:gn*np]
				if c.elem == 2 {
					b.k.attnScoresF16(q, gn, keys, np, scale, sc, np)
				} else {
					for h := 0; h < gn; h++ {
						for p := 0; p < np; p++ {
							sc[h*np+p] = b.k.dotF32(bytesAsF32(keys[p*hd*4:], hd), q[h*hd:(h+1)*hd]) * scale
						}
					}
				}
				// Softmax numerators; each head's output is divided by its
				// denominator at the end (hd values rather than np weights).
				var inv [attnHeads]float32
				for h := 0; h < gn; h++ {
					row := sc[h*np : (h+1)*np]
					inv[h] = 1 / b.k.expSubSum(row, b.k.maxF32(row))
				}
				if c.elem == 2 {
					b.k.attnValuesF16(sc, np, vals, np, out, gn)
				} else {
					for h := 0; h < gn; h++ {
						o := out[h*hd : (h+1)*hd]
						clear(o)
						for p, e := range sc[h*np : (h+1)*np] {
							b.k.axpyF32(e, bytesAsF32(vals[p*hd*4:], hd), o)
						}
					}
				}
				for h := 0; h < gn; h++ {
					o := out[h*hd : (h+1)*hd]
					for i := range o {
						o[i] *= inv[h]
					}
				}
			}
		}
	})
}

// attnHeads is the number of query heads the attention kernels serve in
// one pass over a KV group's cache.
const attnHeads = 4
