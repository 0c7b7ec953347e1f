// Package cpu is phi4mac's CPU backend: the engine's coarse operations on
// float32 activations, with weights used in place from the memory-mapped
// model file. Matrix products fuse dequantisation into the dot product,
// run in parallel over rows on a pool of worker goroutines, and use AVX2,
// FMA and F16C assembly on amd64 when the CPU has them (pure Go elsewhere).
package cpu

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/quant"
	"github.com/phi4mac/phi4mac/engine/weights"
)

// Options configures a CPU backend.
type Options struct {
	// Threads is the number of threads the kernels run on; 0 means
	// runtime.NumCPU().
	Threads int
	// Generic forces the pure-Go kernels even where SIMD ones exist (for
	// tests and comparisons).
	Generic bool
	// Exact keeps activations in float32 for every matrix-vector product.
	// By default the products with quantized weights (Q8_0, Q4_0, Q5_0,
	// Q4_K, Q6_K) first quantise the activation vector to 8 bits, as
	// llama.cpp does, and run on integer SIMD instructions: several times
	// faster, with logits within about 0.1–0.4 of the exact ones. Exact
	// is what the reference tests and other backends' checks use.
	Exact bool
}

// Backend implements engine.Backend on the CPU.
type Backend struct {
	pool    *pool
	k       *kernels
	exact   bool
	scratch [][]float32 // per worker
	q8      q8Acts      // the activation vector of the current product, quantised
	xpack   []float32   // the activations of the current prefill product, packed (packTokens)
	// attnPack holds one KV group's keys and values as micro-kernel
	// panels during blocked prefill attention.
	attnPack []float32
}

var _ engine.Backend = (*Backend)(nil)

// New returns a CPU backend.
func New(opts Options) *Backend {
	threads := opts.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	k := genericKernels()
	if !opts.Generic {
		k = simdKernels(k)
	}
	return &Backend{pool: newPool(threads), k: k, exact: opts.Exact, scratch: make([][]float32, threads)}
}

// Name returns "cpu".
func (b *Backend) Name() string { return "cpu" }

// Kernels names the kernel set in use: "go" or a SIMD set such as "avx2".
func (b *Backend) Kernels() string { return b.k.name }

// Threads returns the number of threads the backend runs on.
func (b *Backend) Threads() int { return b.pool.threads }

// Close stops the worker goroutines.
func (b *Backend) Close() error {
	b.pool.close()
	return nil
}

type buffer struct {
	data       []float32
	rows, cols int
}

func (b *buffer) Rows() int { return b.rows }
func (b *buffer) Cols() int { return b.cols }

func buf(x engine.Buffer) *buffer { return x.(*buffer) }

// NewBuffer allocates a zeroed rows×cols buffer.
func (b *Backend) NewBuffer(rows, cols int) engine.Buffer {
	return &buffer{data: make([]float32, rows*cols), rows: rows, cols: cols}
}

// Rows returns a view of n rows of x starting at start.
func (b *Backend) Rows(x engine.Buffer, start, n int) engine.Buffer {
	s := buf(x)
	if start < 0 || n < 0 || start+n > s.rows {
		panic(fmt.Sprintf("cpu: rows [%d,%d) of a %d-row buffer", start, start+n, s.rows))
	}
	return &buffer{data: s.data[start*s.cols : (start+n)*s.cols], rows: n, cols: s.cols}
}

// Weight is a tensor as the CPU backend holds it: its bytes in place.
type Weight struct {
	typ      quant.Type
	shape    []int
	data     []byte
	rowLen   int // elements per row (innermost dimension)
	rowBytes int
	f        format
}

// Type returns the tensor's format.
func (w *Weight) Type() quant.Type { return w.typ }

// Shape returns the tensor's dimensions, outermost first.
func (w *Weight) Shape() []int { return w.shape }

func (w *Weight) row(i int) []byte { return w.data[i*w.rowBytes : (i+1)*w.rowBytes] }

func (w *Weight) rows() int { return len(w.data) / max(w.rowBytes, 1) }

// LoadWeights wraps the tensors without copying them.
func (b *Backend) LoadWeights(ctx context.Context, ts []*weights.Tensor) ([]engine.Weight, error) {
	out := make([]engine.Weight, len(ts))
	for i, t := range ts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		w, err := b.wrap(t)
		if err != nil {
			return nil, err
		}
		out[i] = w
	}
	return out, nil
}

func (b *Backend) wrap(t *weights.Tensor) (*Weight, error) {
	f, err := b.k.format(t.Type)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	if len(t.Shape) == 0 {
		return nil, fmt.Errorf("tensor %s: no dimensions", t.Name)
	}
	rowLen := t.Shape[len(t.Shape)-1]
	rowBytes, err := t.Type.RowBytes(rowLen)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	rows := t.Elements() / max(rowLen, 1)
	if len(t.Data) != rows*rowBytes {
		return nil, fmt.Errorf("tensor %s: %d bytes of data, want %d for %s %v", t.Name, len(t.Data), rows*rowBytes, t.Type, t.Shape)
	}
	return &Weight{typ: t.Type, shape: t.Shape, data: t.Data, rowLen: rowLen, rowBytes: rowBytes, f: f}, nil
}

func (b *Backend) scratchFor(worker, n int) []float32 {
	if cap(b.scratch[worker]) < n {
		b.scratch[worker] = make([]float32, n)
	}
	return b.scratch[worker][:n]
}

// Embed copies (dequantising) rows ids of the table into dst.
func (b *Backend) Embed(dst engine.Buffer, table engine.Weight, ids []int) {
	d, w := buf(dst), table.(*Weight)
	if d.rows != len(ids) || d.cols != w.rowLen {
		panic(fmt.Sprintf("cpu: embed %d ids of width %d into %dx%d", len(ids), w.rowLen, d.rows, d.cols))
	}
	for i, id := range ids {
		w.f.dequant(w.row(id), d.data[i*d.cols:(i+1)*d.cols])
	}
}

// RMSNorm normalises each row of x and scales it by w.
func (b *Backend) RMSNorm(dst, x engine.Buffer, w engine.Weight, eps float32) {
	d, s, ww := buf(dst), buf(x), w.(*Weight)
	if d.rows != s.rows || d.cols != s.cols || ww.typ != quant.F32 || ww.rowLen != s.cols {
		panic("cpu: rms_norm shape mismatch")
	}
	g := bytesAsF32(ww.data, s.cols)
	b.rowsParallel(s.rows, s.cols, func(r int) {
		in := s.data[r*s.cols : (r+1)*s.cols]
		out := d.data[r*s.cols : (r+1)*s.cols]
		var ss float64
		for _, v := range in {
			ss += float64(v) * float64(v)
		}
		scale := float32(1 / math.Sqrt(ss/float64(len(in))+float64(eps)))
		for i, v := range in {
			out[i] = v * scale * g[i]
		}
	})
}

// rowsParallel calls fn for each of n rows of width cols, spread over the
// threads when there is enough work to pay for the hand-off.
func (b *Backend) rowsParallel(n, cols int, fn func(r int)) {
	if n*cols < 1<<15 {
		for r := 0; r < n; r++ {
			fn(r)
		}
		return
	}
	b.pool.parallel(n, b.pool.grainFor(n, 1), func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			fn(r)
		}
	})
}

// MatMul computes dst = x·Wᵀ.
func (b *Backend) MatMul(dst, x engine.Buffer, w engine.Weight) {
	d, s, ww := buf(dst), buf(x), w.(*Weight)
	out := ww.rows()
	if s.cols != ww.rowLen || d.cols != out || d.rows != s.rows {
		panic(fmt.Sprintf("cpu: matmul [%d,%d]·[%d,%d]ᵀ into [%d,%d]", s.rows, s.cols, out, ww.rowLen, d.rows, d.cols))
	}
	if s.rows == 1 {
		b.gemv(d.data, s.data, ww)
		return
	}
	b.gemm(d, s, ww)
}

func (b *Backend) gemv(dst, x []float32, w *Weight) {
	if dotq := w.f.dotq; dotq != nil && !b.exact {
		if usesQ8K(w.typ) {
			b.k.quantizeQ8K(x, &b.q8.k)
		} else {
			b.k.quantizeQ8(x, &b.q8)
		}
		a := &b.q8
		rows := w.f.dotqRows
		b.pool.parallel(len(dst), max(16, len(dst)/(16*b.pool.threads)), func(_, lo, hi int) {
			if rows != nil {
				rows(w.data[lo*w.rowBytes:hi*w.rowBytes], a, dst[lo:hi])
				return
			}
			for r := lo; r < hi; r++ {
				dst[r] = dotq(w.row(r), a)
			}
		})
		return
	}
	if w.typ == quant.F16 {
		b.pool.parallel(len(dst), max(16, len(dst)/(16*b.pool.threads))&^3, func(_, lo, hi int) {
			b.k.dotF16Rows(w.data[lo*w.rowBytes:], w.rowBytes, x, dst[lo:hi])
		})
		return
	}
	dot := w.f.dot
	b.pool.parallel(len(dst), b.pool.grainFor(len(dst), 16), func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			dst[r] = dot(w.row(r), x)
		}
	})
}

// RoPE rotates the query and key heads of qkv in place.
func (b *Backend) RoPE(qkv engine.Buffer, pos0 int, r *engine.Rope) {
	s := buf(qkv)
	hd := r.HeadDim
	half := len(r.InvFreq)
	if s.cols != (r.Heads+2*r.KVHeads)*hd || 2*half > hd {
		panic("cpu: rope shape mismatch")
	}
	cs := make([]float32, 2*half)
	for i := 0; i < s.rows; i++ {
		p := float64(pos0 + i)
		for j, f := range r.InvFreq {
			sn, c := math.Sincos(p * f)
			cs[2*j], cs[2*j+1] = float32(c*r.Scale), float32(sn*r.Scale)
		}
		row := s.data[i*s.cols : (i+1)*s.cols]
		for h := 0; h < r.Heads+r.KVHeads; h++ {
			v := row[h*hd : (h+1)*hd]
			if r.Mode == engine.RopeNeox {
				for j := 0; j < half; j++ {
					c, sn := cs[2*j], cs[2*j+1]
					a, bb := v[j], v[j+half]
					v[j] = a*c - bb*sn
					v[j+half] = bb*c + a*sn
				}
			} else {
				for j := 0; j < half; j++ {
					c, sn := cs[2*j], cs[2*j+1]
					a, bb := v[2*j], v[2*j+1]
					v[2*j] = a*c - bb*sn
					v[2*j+1] = bb*c + a*sn
				}
			}
		}
	}
}

// SiLUMul computes silu(gate)·up.
func (b *Backend) SiLUMul(dst, gateUp engine.Buffer) {
	d, s := buf(dst), buf(gateUp)
	f := d.cols
	if s.cols != 2*f || s.rows != d.rows {
		panic("cpu: silu_mul shape mismatch")
	}
	b.rowsParallel(d.rows, f, func(r int) {
		g := s.data[r*2*f : r*2*f+f]
		u := s.data[r*2*f+f : (r+1)*2*f]
		b.k.siluMul(g, u, d.data[r*f:(r+1)*f])
	})
}

// Add computes dst += x.
func (b *Backend) Add(dst, x engine.Buffer) {
	d, s := buf(dst), buf(x)
	if len(d.data) != len(s.data) {
		panic("cpu: add shape mismatch")
	}
	for i, v := range s.data {
		d.data[i] += v
	}
}

// Read copies b into dst.
func (b *Backend) Read(x engine.Buffer, dst []float32) error {
	s := buf(x)
	if len(dst) < len(s.data) {
		return fmt.Errorf("cpu: read %d values into %d", len(s.data), len(dst))
	}
	copy(dst, s.data)
	return nil
}

// Argmax returns the index of each row's largest value.
func (b *Backend) Argmax(x engine.Buffer) ([]int, error) {
	s := buf(x)
	out := make([]int, s.rows)
	for r := range out {
		row := s.data[r*s.cols : (r+1)*s.cols]
		best := 0
		for i, v := range row {
			if v > row[best] {
				best = i
			}
		}
		out[r] = best
	}
	return out, nil
}

// Sync returns nil: the CPU backend runs every operation eagerly.
func (b *Backend) Sync() error { return nil }

var errKVType = errors.New("cpu: KV cache type must be F16 or F32")
