package gpu

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"unsafe"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/quant"
	"github.com/phi4mac/phi4mac/engine/weights"
)

// Backend runs the engine's forward pass on a Device: every operation is
// recorded as one or more dispatches, and the list is submitted (one
// command buffer) when the host needs a result (Read, Argmax, Sync).
type Backend struct {
	dev      Device
	opts     Options
	cmds     []Dispatch
	err      error    // first failure, reported by the next Read/Argmax/Sync
	pending  []Buffer // scratch replaced while commands still referenced it
	owned    []Buffer // released on Close
	upload   *arena   // small per-submission data (token ids)
	partial  Buffer   // attention split results, grown on demand
	argmaxed Buffer   // argmax results, grown on demand
	freqs    map[*engine.Rope]Buffer
	// resident counts the bytes of weights and open KV caches, checked
	// against the device's working set (KV caches may be opened and
	// closed from other goroutines than the one decoding).
	resident atomic.Int64
	// Bindings and argument bytes of the recorded dispatches live in slabs
	// reused from one submission to the next: recording allocates nothing
	// once they have grown.
	bindSlab []Binding
	argSlab  []byte
	// rope holds a recorded RoPE until the next operation: when that is the
	// attention over the same rows, the two fuse (rope_append_*: rotate and
	// append to the KV cache in one dispatch).
	rope struct {
		d     Dispatch
		q     tensor
		pos0  int
		valid bool
	}
	// mm holds a recorded matrix product until the next operation: when
	// that adds the product into another buffer (the residual), the add
	// happens in the product's epilogue (accumulate mode 2).
	mm struct {
		d     Dispatch
		in    tensor // the product's input
		dst   tensor
		gemm  bool
		args  GemvArgs // GemmArgs has the same fields
		valid bool
	}
}

// Options tune a Backend.
type Options struct {
	// AttnSpan is the number of cache positions per attention split
	// (flash-decoding); 0 means 256.
	AttnSpan int
	// Name overrides the backend's name (default "gpu:" + device name).
	Name string
	// GemmMinTokens is the smallest batch that uses the simdgroup-matrix
	// GEMM instead of the GEMV kernels; 0 means 4, -1 never.
	GemmMinTokens int
}

var _ engine.Backend = (*Backend)(nil)

// New returns a Backend over dev.
func New(dev Device, opts Options) *Backend {
	if opts.AttnSpan <= 0 {
		opts.AttnSpan = defaultAttnSpan
	}
	if opts.GemmMinTokens == 0 {
		opts.GemmMinTokens = defaultGemmMin
	}
	return &Backend{dev: dev, opts: opts, freqs: map[*engine.Rope]Buffer{}, upload: &arena{}}
}

// Name implements engine.Backend.
func (b *Backend) Name() string {
	if b.opts.Name != "" {
		return b.opts.Name
	}
	return "gpu:" + b.dev.Name()
}

// Device returns the device the backend runs on.
func (b *Backend) Device() Device { return b.dev }

func (b *Backend) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

func (b *Backend) record(d Dispatch) {
	b.flushRope()
	b.cmds = append(b.cmds, d)
}

// flushRope records a pending RoPE or matrix product as its own dispatch.
func (b *Backend) flushRope() {
	if b.rope.valid {
		b.rope.valid = false
		b.cmds = append(b.cmds, b.rope.d)
	}
	if b.mm.valid {
		b.mm.valid = false
		b.cmds = append(b.cmds, b.mm.d)
	}
}

// tensor is an activation matrix in a device buffer.
type tensor struct {
	buf        Buffer
	off        int // bytes
	rows, cols int
}

func (t *tensor) Rows() int { return t.rows }
func (t *tensor) Cols() int { return t.cols }

func (t *tensor) bind() Binding { return Binding{Buf: t.buf, Offset: t.off} }

func asTensor(x engine.Buffer) *tensor {
	t, ok := x.(*tensor)
	if !ok {
		panic(fmt.Sprintf("gpu: buffer %T is not from this backend", x))
	}
	return t
}

// weight is a model tensor wrapped (or converted) into a device buffer.
type weight struct {
	buf      Buffer
	typ      quant.Type
	shape    []int
	rowBytes int
}

func (w *weight) Type() quant.Type { return w.typ }
func (w *weight) Shape() []int     { return w.shape }

func asWeight(x engine.Weight) *weight {
	w, ok := x.(*weight)
	if !ok {
		panic(fmt.Sprintf("gpu: weight %T is not from this backend", x))
	}
	return w
}

// LoadWeights implements engine.Backend: tensors the kernels read as they
// are are wrapped without copying; BF16 is converted to F16 once.
func (b *Backend) LoadWeights(ctx context.Context, ts []*weights.Tensor) ([]engine.Weight, error) {
	var total int64
	for _, t := range ts {
		total += int64(len(t.Data))
	}
	if ws := b.dev.Limits().WorkingSet; ws > 0 && b.resident.Load()+total > ws {
		return nil, fmt.Errorf("gpu: the model's weights need %.2f GB (%.2f GB already in use) but the GPU may use only %.2f GB (recommendedMaxWorkingSetSize); use a smaller quantisation or --backend cpu",
			float64(total)/1e9, float64(b.resident.Load())/1e9, float64(ws)/1e9)
	}
	out := make([]engine.Weight, len(ts))
	for i, t := range ts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		w, err := b.loadWeight(t)
		if err != nil {
			return nil, fmt.Errorf("gpu: weight %s: %w", t.Name, err)
		}
		out[i] = w
	}
	b.resident.Add(total)
	return out, nil
}

func (b *Backend) loadWeight(t *weights.Tensor) (*weight, error) {
	if len(t.Shape) == 0 || len(t.Data) == 0 {
		return nil, errors.New("empty tensor")
	}
	in := t.Shape[len(t.Shape)-1]
	typ := t.Type
	data := t.Data
	if typ == quant.BF16 {
		return b.loadBF16(t, in)
	}
	if !typ.Known() {
		return nil, fmt.Errorf("unsupported type %s", typ)
	}
	rowBytes, err := typ.RowBytes(in)
	if err != nil {
		return nil, err
	}
	var buf Buffer
	if uintptr(unsafe.Pointer(&data[0]))%16 == 0 {
		buf, err = b.dev.Wrap(data) // zero copy: the kernels read the memory map
	} else {
		// Vector loads need aligned rows (GGUF aligns tensors; a
		// safetensors file may not): copy this one.
		if buf, err = b.dev.Alloc(len(data)); err == nil {
			copy(buf.Bytes(), data)
		}
	}
	if err != nil {
		return nil, err
	}
	b.owned = append(b.owned, buf)
	return &weight{buf: buf, typ: typ, shape: t.Shape, rowBytes: rowBytes}, nil
}

// maxHalf is the largest finite F16 value.
const maxHalf = 65504

// loadBF16 converts a BF16 tensor once, since Apple GPUs before M2 lack
// bfloat arithmetic: to F16 (same bytes, exact for BF16 values of normal
// F16 range), or to F32 when a value is beyond F16's range (F16 would
// turn it into infinity).
func (b *Backend) loadBF16(t *weights.Tensor, in int) (*weight, error) {
	data := t.Data
	n := len(data) / 2
	wide := false
	for j := 0; j < n; j++ {
		f := quant.BF16ToF32(binary.LittleEndian.Uint16(data[2*j:]))
		if f > maxHalf || f < -maxHalf {
			if !math.IsInf(float64(f), 0) {
				wide = true
				break
			}
		}
	}
	size := 2
	if wide {
		size = 4
	}
	conv, err := b.dev.Alloc(size * n)
	if err != nil {
		return nil, err
	}
	b.owned = append(b.owned, conv)
	dst := conv.Bytes()
	for j := 0; j < n; j++ {
		f := quant.BF16ToF32(binary.LittleEndian.Uint16(data[2*j:]))
		if wide {
			binary.LittleEndian.PutUint32(dst[4*j:], math.Float32bits(f))
		} else {
			binary.LittleEndian.PutUint16(dst[2*j:], quant.F32ToF16(f))
		}
	}
	if wide {
		return &weight{buf: conv, typ: quant.F32, shape: t.Shape, rowBytes: 4 * in}, nil
	}
	return &weight{buf: conv, typ: quant.F16, shape: t.Shape, rowBytes: 2 * in}, nil
}

// NewBuffer implements engine.Backend.
func (b *Backend) NewBuffer(rows, cols int) engine.Buffer {
	if rows <= 0 || cols <= 0 {
		panic(fmt.Sprintf("gpu: buffer %dx%d", rows, cols))
	}
	buf, err := b.dev.Alloc(4 * rows * cols)
	if err != nil {
		b.fail(fmt.Errorf("gpu: buffer %dx%d: %w", rows, cols, err))
		buf = nilBuffer{}
	} else {
		b.owned = append(b.owned, buf)
	}
	return &tensor{buf: buf, rows: rows, cols: cols}
}

// nilBuffer stands in for a failed allocation; the failure is reported by
// the next Sync.
type nilBuffer struct{}

func (nilBuffer) Bytes() []byte  { return nil }
func (nilBuffer) Release() error { return nil }

// overlaps reports whether two activation views share memory.
func overlaps(a, b *tensor) bool {
	if a.buf != b.buf {
		return false
	}
	aEnd, bEnd := a.off+4*a.rows*a.cols, b.off+4*b.rows*b.cols
	return a.off < bEnd && b.off < aEnd
}

// Rows implements engine.Buffer views.
func (b *Backend) Rows(x engine.Buffer, start, n int) engine.Buffer {
	t := asTensor(x)
	if start < 0 || n <= 0 || start+n > t.rows {
		panic(fmt.Sprintf("gpu: rows [%d,%d) of %d", start, start+n, t.rows))
	}
	return &tensor{buf: t.buf, off: t.off + 4*start*t.cols, rows: n, cols: t.cols}
}

// kvCache is one session's keys and values: K and V of all layers, each
// [layers][kv_heads][ctx] rows of rowBytes (head_dim values in F16, F32 or
// Q8_0 blocks).
type kvCache struct {
	spec     engine.KVSpec
	k, v     Buffer
	rowBytes int
	resident *atomic.Int64 // the backend's count, less Bytes on Close
	closed   atomic.Bool
}

func (c *kvCache) Spec() engine.KVSpec { return c.spec }
func (c *kvCache) Bytes() int64 {
	return 2 * int64(c.spec.Layers) * int64(c.spec.KVHeads) * int64(c.spec.Ctx) * int64(c.rowBytes)
}
func (c *kvCache) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.resident.Add(-c.Bytes())
	return errors.Join(c.k.Release(), c.v.Release())
}

// NewKVCache implements engine.Backend. Besides F16 and F32 it offers a
// Q8_0 cache (about half of F16's memory; head_dim a multiple of 32).
func (b *Backend) NewKVCache(spec engine.KVSpec) (engine.KVCache, error) {
	if spec.Layers <= 0 || spec.Ctx <= 0 || spec.KVHeads <= 0 || spec.HeadDim <= 0 || spec.HeadDim > attnMaxHeadDim {
		return nil, fmt.Errorf("gpu: KV cache %+v: bad shape (head_dim at most %d)", spec, attnMaxHeadDim)
	}
	var rowBytes int
	switch spec.Type {
	case quant.F16:
		rowBytes = 2 * spec.HeadDim
	case quant.F32:
		rowBytes = 4 * spec.HeadDim
	case quant.Q8_0:
		if spec.HeadDim%32 != 0 {
			return nil, fmt.Errorf("gpu: Q8_0 KV cache needs head_dim a multiple of 32, not %d", spec.HeadDim)
		}
		rowBytes = spec.HeadDim / 32 * 34
	default:
		return nil, fmt.Errorf("gpu: KV cache type %s: want F16, F32 or Q8_0", spec.Type)
	}
	size := int64(spec.Layers) * int64(spec.KVHeads) * int64(spec.Ctx) * int64(rowBytes)
	if size > b.dev.Limits().MaxBufferLength {
		return nil, fmt.Errorf("gpu: KV cache of %d bytes per tensor exceeds the device's buffer limit", size)
	}
	if ws, used := b.dev.Limits().WorkingSet, b.resident.Load(); ws > 0 && used+2*size > ws {
		return nil, fmt.Errorf("gpu: a KV cache of %d positions needs %.2f GB, with %.2f GB of weights and caches in use the GPU may use only %.2f GB (recommendedMaxWorkingSetSize); use a shorter context or --backend cpu",
			spec.Ctx, float64(2*size)/1e9, float64(used)/1e9, float64(ws)/1e9)
	}
	k, err := b.dev.Alloc(int(size))
	if err != nil {
		return nil, fmt.Errorf("gpu: KV cache: %w", err)
	}
	v, err := b.dev.Alloc(int(size))
	if err != nil {
		k.Release()
		return nil, fmt.Errorf("gpu: KV cache: %w", err)
	}
	b.resident.Add(2 * size)
	return &kvCache{spec: spec, k: k, v: v, rowBytes: rowBytes, resident: &b.resident}, nil
}

// arena holds small host-written data (token ids) for the commands of one
// submission; it is reset after each submission.
type arena struct {
	buf  Buffer
	used int
}

func (b *Backend) uploadU32(vals []int) (Binding, error) {
	need := 4 * len(vals)
	a := b.upload
	if a.buf == nil || a.used+need > len(a.buf.Bytes()) {
		size := max(4096, 2*(a.used+need))
		nb, err := b.dev.Alloc(size)
		if err != nil {
			return Binding{}, err
		}
		if a.buf != nil {
			b.pending = append(b.pending, a.buf)
		}
		a.buf, a.used = nb, 0
	}
	mem := a.buf.Bytes()[a.used:]
	for i, v := range vals {
		binary.LittleEndian.PutUint32(mem[4*i:], uint32(v))
	}
	bind := Binding{Buf: a.buf, Offset: a.used}
	a.used += (need + 15) &^ 15
	return bind, nil
}

// scratch returns *cur grown to at least size bytes; a replaced buffer is
// kept until the next submission (recorded commands may still use it).
func (b *Backend) scratch(cur *Buffer, size int) (Buffer, error) {
	if *cur != nil && len((*cur).Bytes()) >= size {
		return *cur, nil
	}
	nb, err := b.dev.Alloc(max(size, 4096))
	if err != nil {
		return nil, err
	}
	if *cur != nil {
		b.pending = append(b.pending, *cur)
	}
	*cur = nb
	return nb, nil
}

// Embed implements engine.Backend.
func (b *Backend) Embed(dst engine.Buffer, table engine.Weight, ids []int) {
	d, w := asTensor(dst), asWeight(table)
	if len(ids) != d.rows || w.shape[len(w.shape)-1] != d.cols {
		panic(fmt.Sprintf("gpu: embed %d ids into %dx%d from %v", len(ids), d.rows, d.cols, w.shape))
	}
	k, err := embedKernel(w.typ)
	if err != nil {
		b.fail(err)
		return
	}
	for i, id := range ids {
		if id < 0 || id >= w.shape[0] {
			b.fail(fmt.Errorf("gpu: embed: token %d at %d outside [0,%d)", id, i, w.shape[0]))
			return
		}
	}
	idb, err := b.uploadU32(ids)
	if err != nil {
		b.fail(err)
		return
	}
	b.record(Dispatch{
		Kernel:  k,
		Groups:  [3]int{len(ids), 1, 1},
		Threads: [3]int{laneThreads, 1, 1},
		Buffers: b.binds(Binding{Buf: w.buf}, idb, d.bind(), packArgs(b, EmbedArgs{
			K: uint32(d.cols), RowBytes: uint32(w.rowBytes), NTok: uint32(len(ids)),
			DstStride: uint32(d.cols), NRows: uint32(w.shape[0]),
		})),
	})
}

// RMSNorm implements engine.Backend.
func (b *Backend) RMSNorm(dst, x engine.Buffer, w engine.Weight, eps float32) {
	d, s, wt := asTensor(dst), asTensor(x), asWeight(w)
	if d.rows != s.rows || d.cols != s.cols || wt.typ != quant.F32 || wt.shape[len(wt.shape)-1] != s.cols {
		panic(fmt.Sprintf("gpu: rms_norm %dx%d -> %dx%d with %s %v", s.rows, s.cols, d.rows, d.cols, wt.typ, wt.shape))
	}
	b.record(Dispatch{
		Kernel:  "rms_norm",
		Groups:  [3]int{s.rows, 1, 1},
		Threads: [3]int{groupThreads(s.cols, normThreads), 1, 1},
		Buffers: b.binds(s.bind(), Binding{Buf: wt.buf}, d.bind(), packArgs(b, RMSNormArgs{
			N: uint32(s.cols), XStride: uint32(s.cols), DstStride: uint32(d.cols), Eps: eps,
		})),
	})
}

// MatMul implements engine.Backend.
func (b *Backend) MatMul(dst, x engine.Buffer, w engine.Weight) {
	b.matmul(dst, x, w, false)
}

// MatMulAdd computes dst += x·Wᵀ in one dispatch (the residual add fused
// into the matrix product's output): the engine may use it instead of
// MatMul into a scratch buffer followed by Add, saving a dispatch and a
// pass over the activations.
func (b *Backend) MatMulAdd(dst, x engine.Buffer, w engine.Weight) {
	b.matmul(dst, x, w, true)
}

func (b *Backend) matmul(dst, x engine.Buffer, w engine.Weight, accumulate bool) {
	d, s, wt := asTensor(dst), asTensor(x), asWeight(w)
	if len(wt.shape) != 2 || wt.shape[1] != s.cols || wt.shape[0] != d.cols || d.rows != s.rows {
		panic(fmt.Sprintf("gpu: matmul %dx%d by %v into %dx%d", s.rows, s.cols, wt.shape, d.rows, d.cols))
	}
	acc := uint32(0)
	if accumulate {
		acc = 1
	}
	args := GemvArgs{
		K: uint32(s.cols), N: uint32(d.cols), RowBytes: uint32(wt.rowBytes), NTok: uint32(s.rows),
		XStride: uint32(s.cols), DstStride: uint32(d.cols), Accumulate: acc, AccStride: uint32(d.cols),
	}
	gemm := b.opts.GemmMinTokens > 0 && s.rows >= b.opts.GemmMinTokens
	k, err := gemvKernel(wt.typ)
	if gemm {
		k, err = gemmKernel(wt.typ)
	}
	if err != nil {
		b.fail(err)
		return
	}
	ds := b.matmulDispatch(k, gemm, wt, s, d, d, args)
	if accumulate {
		b.record(ds)
		return
	}
	b.flushRope()
	b.mm.d, b.mm.in, b.mm.dst, b.mm.gemm, b.mm.args, b.mm.valid = ds, *s, *d, gemm, args, true
}

// matmulDispatch builds the dispatch of a GEMV or GEMM (acc is bound at
// [[buffer(4)]]; only accumulate mode 2 writes it).
func (b *Backend) matmulDispatch(k string, gemm bool, wt *weight, s, d, acc *tensor, args GemvArgs) Dispatch {
	if gemm {
		return Dispatch{
			Kernel:  k,
			Groups:  [3]int{ceilDiv(d.cols, gemmRowsPerTG), ceilDiv(s.rows, gemmTokensPerTG), 1},
			Threads: [3]int{gemmThreads, 1, 1},
			Buffers: b.binds(Binding{Buf: wt.buf}, s.bind(), d.bind(), packArgs(b, GemmArgs(args)), acc.bind()),
		}
	}
	return Dispatch{
		Kernel:  k,
		Groups:  [3]int{ceilDiv(d.cols, gemvRowsPerTG), s.rows, 1},
		Threads: [3]int{gemvThreads, 1, 1},
		Buffers: b.binds(Binding{Buf: wt.buf}, s.bind(), d.bind(), packArgs(b, args), acc.bind()),
	}
}

// RoPE implements engine.Backend.
func (b *Backend) RoPE(qkv engine.Buffer, pos0 int, r *engine.Rope) {
	q := asTensor(qkv)
	if q.cols != (r.Heads+2*r.KVHeads)*r.HeadDim || r.RotDim() > r.HeadDim || pos0 < 0 {
		panic(fmt.Sprintf("gpu: rope on %dx%d with %d+2x%d heads of %d", q.rows, q.cols, r.Heads, r.KVHeads, r.HeadDim))
	}
	if len(r.InvFreq) == 0 {
		return
	}
	fb, ok := b.freqs[r]
	if !ok {
		buf, err := b.dev.Alloc(4 * len(r.InvFreq))
		if err != nil {
			b.fail(err)
			return
		}
		mem := buf.Bytes()
		for i, f := range r.InvFreq {
			binary.LittleEndian.PutUint32(mem[4*i:], math.Float32bits(float32(f)))
		}
		b.freqs[r] = buf
		fb = buf
	}
	mode := uint32(0)
	if r.Mode == engine.RopeNorm {
		mode = 1
	}
	b.flushRope()
	b.rope.d = Dispatch{
		Kernel:  "rope",
		Groups:  [3]int{r.Heads + r.KVHeads, q.rows, 1},
		Threads: [3]int{laneThreads, 1, 1},
		Buffers: b.binds(q.bind(), Binding{Buf: fb}, packArgs(b, RopeArgs{
			NTok: uint32(q.rows), NHeads: uint32(r.Heads + r.KVHeads), HeadDim: uint32(r.HeadDim),
			RotHalf: uint32(len(r.InvFreq)), RowStride: uint32(q.cols), Pos0: uint32(pos0), Mode: mode,
			Scale: float32(r.Scale),
		})),
	}
	b.rope.q, b.rope.pos0, b.rope.valid = *q, pos0, true
}

// Attention implements engine.Backend: KV append (fused with a RoPE
// recorded just before on the same rows), split attention, and the
// reduction of the splits when there is more than one: two to three
// dispatches, RoPE included.
func (b *Backend) Attention(dst, qkv engine.Buffer, cache engine.KVCache, layer, pos0 int) {
	d, q := asTensor(dst), asTensor(qkv)
	c, ok := cache.(*kvCache)
	if !ok {
		panic(fmt.Sprintf("gpu: cache %T is not from this backend", cache))
	}
	sp := c.spec
	heads := d.cols / sp.HeadDim
	n := q.rows
	if d.rows != n || heads*sp.HeadDim != d.cols || q.cols != (heads+2*sp.KVHeads)*sp.HeadDim || heads%sp.KVHeads != 0 {
		panic(fmt.Sprintf("gpu: attention %dx%d -> %dx%d with %d kv heads of %d", q.rows, q.cols, d.rows, d.cols, sp.KVHeads, sp.HeadDim))
	}
	if layer < 0 || layer >= sp.Layers || pos0 < 0 || pos0+n > sp.Ctx {
		b.fail(fmt.Errorf("gpu: attention at layer %d positions [%d,%d) outside the cache (%d layers, %d positions)", layer, pos0, pos0+n, sp.Layers, sp.Ctx))
		return
	}
	layerBytes := sp.KVHeads * sp.Ctx * c.rowBytes
	kb := Binding{Buf: c.k, Offset: layer * layerBytes}
	vb := Binding{Buf: c.v, Offset: layer * layerBytes}
	appendK, fusedK, partialK := "kv_append_f16", "rope_append_f16", "attn_partial_f16"
	switch sp.Type {
	case quant.F32:
		appendK, fusedK, partialK = "kv_append_f32", "rope_append_f32", "attn_partial_f32"
	case quant.Q8_0:
		appendK, fusedK, partialK = "kv_append_q8_0", "", "attn_partial_q8_0"
	}
	kvArgs := packArgs(b, KVAppendArgs{
		NTok: uint32(n), NHeads: uint32(heads), NKVHeads: uint32(sp.KVHeads), HeadDim: uint32(sp.HeadDim),
		RowStride: uint32(q.cols), Ctx: uint32(sp.Ctx), Pos0: uint32(pos0),
	})
	if pr := &b.rope; fusedK != "" && pr.valid && pr.q == *q && pr.pos0 == pos0 && pr.d.Groups[0] == heads+sp.KVHeads {
		// The RoPE just recorded on these rows: rotate and append at once.
		pr.valid = false
		rb := pr.d.Buffers
		b.record(Dispatch{
			Kernel:  fusedK,
			Groups:  pr.d.Groups,
			Threads: pr.d.Threads,
			Buffers: b.binds(rb[0], rb[1], rb[2], kb, vb, kvArgs),
		})
	} else {
		b.record(Dispatch{
			Kernel:  appendK,
			Groups:  [3]int{sp.KVHeads, n, 1},
			Threads: [3]int{laneThreads, 1, 1},
			Buffers: b.binds(q.bind(), kb, vb, kvArgs),
		})
	}
	span := b.opts.AttnSpan
	nsplit := ceilDiv(pos0+n, span)
	if heads*n >= attnParallelGroups {
		// A prefill batch has threadgroups enough in (heads, tokens):
		// splitting the sequence too would only add the reduction and a
		// scratch of n·heads·splits·(2+head_dim) floats (680 MB for 512
		// phi-4 tokens at position 16K).
		span, nsplit = pos0+n, 1
	}
	partBind := d.bind() // one split: attn_partial writes dst and never part
	if nsplit > 1 {
		part, err := b.scratch(&b.partial, 4*n*heads*nsplit*(2+sp.HeadDim))
		if err != nil {
			b.fail(err)
			return
		}
		partBind = Binding{Buf: part}
	}
	args := packArgs(b, AttnArgs{
		NTok: uint32(n), NHeads: uint32(heads), NKVHeads: uint32(sp.KVHeads), HeadDim: uint32(sp.HeadDim),
		QStride: uint32(q.cols), DstStride: uint32(d.cols), Ctx: uint32(sp.Ctx), Pos0: uint32(pos0),
		Chunk: uint32(span), NSplit: uint32(nsplit), Scale: float32(1 / math.Sqrt(float64(sp.HeadDim))),
	})
	b.record(Dispatch{
		Kernel:  partialK,
		Groups:  [3]int{heads, n, nsplit},
		Threads: [3]int{laneThreads, 1, 1},
		Buffers: b.binds(q.bind(), kb, vb, partBind, args, d.bind()),
	})
	if nsplit == 1 {
		return // attn_partial wrote the output
	}
	b.record(Dispatch{
		Kernel:  "attn_reduce",
		Groups:  [3]int{heads, n, 1},
		Threads: [3]int{laneThreads, 1, 1},
		Buffers: b.binds(partBind, d.bind(), args),
	})
}

// SiLUMul implements engine.Backend.
func (b *Backend) SiLUMul(dst, gateUp engine.Buffer) {
	d, g := asTensor(dst), asTensor(gateUp)
	if g.cols != 2*d.cols || g.rows != d.rows {
		panic(fmt.Sprintf("gpu: silu_mul %dx%d -> %dx%d", g.rows, g.cols, d.rows, d.cols))
	}
	b.elementwise("silu_mul", g, d)
}

// Add implements engine.Backend.
func (b *Backend) Add(dst, x engine.Buffer) {
	d, s := asTensor(dst), asTensor(x)
	if d.rows != s.rows || d.cols != s.cols {
		panic(fmt.Sprintf("gpu: add %dx%d to %dx%d", s.rows, s.cols, d.rows, d.cols))
	}
	if m := &b.mm; m.valid && m.dst == *s && !overlaps(d, s) && !overlaps(d, &m.in) {
		// dst += the product just recorded: done in its epilogue, which
		// still writes the product to s as well.
		m.valid = false
		args := m.args
		args.Accumulate, args.AccStride = 2, uint32(d.cols)
		rb := m.d.Buffers
		ds := m.d
		if m.gemm {
			ds.Buffers = b.binds(rb[0], rb[1], rb[2], packArgs(b, GemmArgs(args)), d.bind())
		} else {
			ds.Buffers = b.binds(rb[0], rb[1], rb[2], packArgs(b, args), d.bind())
		}
		b.record(ds)
		return
	}
	b.elementwise("add", s, d)
}

func (b *Backend) elementwise(kernel string, src, dst *tensor) {
	b.record(Dispatch{
		Kernel:  kernel,
		Groups:  [3]int{ceilDiv(dst.cols, elementThreads), dst.rows, 1},
		Threads: [3]int{elementThreads, 1, 1},
		Buffers: b.binds(src.bind(), dst.bind(), packArgs(b, ElementwiseArgs{
			N: uint32(dst.cols), NTok: uint32(dst.rows), SrcStride: uint32(src.cols), DstStride: uint32(dst.cols),
		})),
	})
}

// Sync implements engine.Backend: submits the recorded dispatches and
// waits for them.
func (b *Backend) Sync() error {
	b.flushRope()
	cmds := b.cmds
	b.cmds = b.cmds[:0]
	if b.err != nil {
		err := b.err
		b.err = nil
		b.afterSubmit()
		return err
	}
	var err error
	if len(cmds) > 0 {
		err = b.dev.Run(context.Background(), cmds)
	}
	b.afterSubmit()
	if err != nil {
		return fmt.Errorf("gpu: %w", err)
	}
	return nil
}

// binds copies a dispatch's bindings into the slab.
func (b *Backend) binds(bs ...Binding) []Binding {
	start := len(b.bindSlab)
	b.bindSlab = append(b.bindSlab, bs...)
	return b.bindSlab[start:len(b.bindSlab):len(b.bindSlab)]
}

// packArgs copies an argument struct (4-byte fields only, see args.go)
// into the argument slab; both Metal targets and the emulator's hosts are
// little endian, so the struct's memory is the kernel's layout.
func packArgs[T any](b *Backend, v T) Binding {
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&v)), unsafe.Sizeof(v))
	start := len(b.argSlab)
	b.argSlab = append(b.argSlab, raw...)
	return Binding{Bytes: b.argSlab[start:len(b.argSlab):len(b.argSlab)]}
}

func (b *Backend) afterSubmit() {
	clear(b.bindSlab) // drop references to buffers
	b.bindSlab = b.bindSlab[:0]
	b.argSlab = b.argSlab[:0]
	for _, p := range b.pending {
		p.Release()
	}
	b.pending = b.pending[:0]
	b.upload.used = 0
}

// Read implements engine.Backend.
func (b *Backend) Read(x engine.Buffer, dst []float32) error {
	t := asTensor(x)
	if len(dst) < t.rows*t.cols {
		return fmt.Errorf("gpu: read %dx%d into %d floats", t.rows, t.cols, len(dst))
	}
	if err := b.Sync(); err != nil {
		return err
	}
	mem := t.buf.Bytes()
	if len(mem) < t.off+4*t.rows*t.cols {
		return errors.New("gpu: read from a failed buffer")
	}
	src := unsafe.Slice((*float32)(unsafe.Pointer(&mem[t.off])), t.rows*t.cols)
	copy(dst, src)
	return nil
}

// Argmax implements engine.Backend (on the device: only the indices come
// back).
func (b *Backend) Argmax(x engine.Buffer) ([]int, error) {
	t := asTensor(x)
	out, err := b.scratch(&b.argmaxed, 4*t.rows)
	if err != nil {
		return nil, err
	}
	b.record(Dispatch{
		Kernel:  "argmax",
		Groups:  [3]int{t.rows, 1, 1},
		Threads: [3]int{groupThreads(t.cols, argmaxThreads), 1, 1},
		Buffers: b.binds(t.bind(), Binding{Buf: out}, packArgs(b, ArgmaxArgs{N: uint32(t.cols), NRows: uint32(t.rows), Stride: uint32(t.cols)})),
	})
	if err := b.Sync(); err != nil {
		return nil, err
	}
	mem := out.Bytes()
	ids := make([]int, t.rows)
	for i := range ids {
		ids[i] = int(binary.LittleEndian.Uint32(mem[4*i:]))
	}
	return ids, nil
}

// Close implements engine.Backend.
func (b *Backend) Close() error {
	var errs []error
	for _, buf := range b.owned {
		errs = append(errs, buf.Release())
	}
	for _, buf := range b.freqs {
		errs = append(errs, buf.Release())
	}
	for _, buf := range append(b.pending, b.partial, b.argmaxed, b.upload.buf) {
		if buf != nil {
			errs = append(errs, buf.Release())
		}
	}
	b.owned, b.pending, b.partial, b.argmaxed, b.upload.buf = nil, nil, nil, nil, nil
	return errors.Join(errs...)
}
