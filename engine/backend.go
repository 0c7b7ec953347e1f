package engine

import (
	"context"

	"github.com/phi4mac/phi4mac/engine/quant"
	"github.com/phi4mac/phi4mac/engine/weights"
)

// Backend executes the coarse operations of the forward pass. The forward
// pass itself is written once, in this package, as a sequence of Backend
// calls; a backend decides how each operation runs.
//
// A CPU backend runs each operation eagerly. A GPU backend may instead record
// the operations into a command list and submit them together: nothing is
// observable on the host until Read or Argmax is called, which is the only
// synchronisation point. Operations therefore return no errors; a backend
// that fails while executing recorded work reports it from the next Read,
// Argmax or Sync. Shape misuse (buffers that do not match an operation) is a
// programming error and may panic.
//
// All activation buffers hold float32 values (a backend may compute in
// another precision internally as long as its results stay within the
// engine's reference tolerances). Buffers are row-major matrices
// [rows, cols]: one row per token of a batch.
//
// A Backend is used by one goroutine at a time: the engine serialises the
// forward passes of all sessions of a model.
type Backend interface {
	// Name identifies the backend in logs and benchmark reports, e.g. "cpu".
	Name() string

	// LoadWeights hands the model's tensors to the backend once, at load,
	// and returns one handle per tensor in the same order. The tensors'
	// Data may alias a read-only memory map that stays valid until the
	// model is closed; a backend may use it in place (zero copy) or upload
	// it. It is called before any other operation.
	LoadWeights(ctx context.Context, ts []*weights.Tensor) ([]Weight, error)

	// NewBuffer allocates a float32 activation buffer of rows×cols,
	// initially zero.
	NewBuffer(rows, cols int) Buffer

	// NewKVCache allocates the key/value cache of one session.
	NewKVCache(spec KVSpec) (KVCache, error)

	// Embed writes row ids[i] of the embedding table into row i of dst
	// (dst is [len(ids), hidden]; the table may be in any weight format).
	Embed(dst Buffer, table Weight, ids []int)

	// RMSNorm writes x·w/sqrt(mean(x²)+eps) row by row into dst (which may
	// be x itself). w is an F32 vector of length x.Cols().
	RMSNorm(dst, x Buffer, w Weight, eps float32)

	// MatMul computes dst = x·Wᵀ: x is [n, in], W is [out, in] (a linear
	// layer in [out, in] layout, any supported format), dst is [n, out].
	// dst and x do not overlap.
	MatMul(dst, x Buffer, w Weight)

	// RoPE rotates, in place, the query and key heads held in the fused
	// qkv buffer ([n, (heads+2·kvHeads)·headDim]: all query heads, then
	// the key heads, then the value heads). Row i is the token at position
	// pos0+i.
	RoPE(qkv Buffer, pos0 int, r *Rope)

	// Attention appends the key and value heads of qkv (rows at positions
	// pos0..pos0+n-1) to layer's slots of the cache, then computes causal
	// scaled-dot-product attention of every query head of qkv over cache
	// positions 0..pos0+i (inclusive) for row i, with grouped-query
	// sharing (query head h reads KV head h/(heads/kvHeads)) and scale
	// 1/sqrt(headDim). dst is [n, heads·headDim].
	Attention(dst, qkv Buffer, cache KVCache, layer, pos0 int)

	// SiLUMul computes dst = silu(gateUp[:, :f]) * gateUp[:, f:] where
	// gateUp is [n, 2f] (gate first, then up) and dst is [n, f].
	SiLUMul(dst, gateUp Buffer)

	// Add computes dst += x element by element.
	Add(dst, x Buffer)

	// Rows returns a view of rows [start, start+n) of b: it shares b's
	// storage and stays valid as long as b does.
	Rows(b Buffer, start, n int) Buffer

	// Read waits for all queued work and copies the contents of b
	// (rows×cols float32, row-major) into dst, which must be at least that
	// long.
	Read(b Buffer, dst []float32) error

	// Argmax waits for all queued work and returns, for each row of b, the
	// index of its largest value (the lowest index among equal values).
	Argmax(b Buffer) ([]int, error)

	// Sync waits for all queued work and reports any error it met.
	Sync() error

	// Close releases the backend's resources; weights, buffers and caches
	// must not be used afterwards.
	Close() error
}

// BandwidthProber is implemented by backends that can measure how fast
// their device reads memory, the ceiling of a memory-bound decode step;
// Model.Bench uses it for the roofline.
type BandwidthProber interface {
	// MeasureBandwidth streams size bytes a few times and returns the best
	// read bandwidth in GB/s (10⁹ bytes per second).
	MeasureBandwidth(ctx context.Context, size int) (float64, error)
}

// Buffer is a float32 activation matrix owned by a Backend.
type Buffer interface {
	// Rows returns the number of rows (tokens).
	Rows() int
	// Cols returns the number of columns (features).
	Cols() int
}

// Weight is a model tensor as held by a Backend.
type Weight interface {
	// Type returns the tensor's storage format.
	Type() quant.Type
	// Shape returns the tensor's dimensions, outermost first ([out, in]
	// for a linear layer).
	Shape() []int
}

// KVSpec describes a key/value cache.
type KVSpec struct {
	Layers  int        // number of transformer layers
	Ctx     int        // positions per layer
	KVHeads int        // key/value heads per position
	HeadDim int        // dimension of one head
	Type    quant.Type // element type: quant.F16 or quant.F32
}

// KVCache holds the keys and values of one session. The engine tracks
// which positions are valid; the cache only stores them.
type KVCache interface {
	// Spec returns the cache's shape and element type.
	Spec() KVSpec
	// Bytes returns the cache's size in bytes.
	Bytes() int64
	// Close releases the cache's memory.
	Close() error
}

// RopeMode selects which dimensions of a head RoPE rotates together.
type RopeMode int

const (
	// RopeNeox rotates dimension i with dimension i+rotDim/2 (HF
	// rotate_half; Phi-3/Phi-4, llama.cpp's NEOX type).
	RopeNeox RopeMode = iota
	// RopeNorm rotates adjacent dimensions 2i and 2i+1 (llama.cpp's NORM
	// type, used for Llama GGUFs whose q/k rows the converter permuted).
	RopeNorm
)

// Rope describes the rotary position embedding of one model and context.
// It is fixed for the lifetime of a session, so a backend may cache
// anything it derives from it (keyed by the pointer).
type Rope struct {
	Mode    RopeMode
	Heads   int // query heads
	KVHeads int // key/value heads
	HeadDim int // dimension of one head
	// InvFreq holds, for each rotated pair i in [0, RotDim/2), the angle
	// per position: position p rotates pair i by p·InvFreq[i] radians.
	// len(InvFreq)*2 = RotDim ≤ HeadDim; dimensions past RotDim are left
	// unchanged.
	InvFreq []float64
	// Scale multiplies cos and sin (LongRoPE's attention factor; 1
	// otherwise). It applies only to the rotated dimensions.
	Scale float64
}

// RotDim returns the number of rotated dimensions per head.
func (r *Rope) RotDim() int { return 2 * len(r.InvFreq) }
