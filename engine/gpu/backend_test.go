//go:build !darwin && cgo

package gpu_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/gpu"
	"github.com/phi4mac/phi4mac/engine/gpu/emu"
	"github.com/phi4mac/phi4mac/engine/quant"
	"github.com/phi4mac/phi4mac/engine/weights"
)

var (
	devOnce sync.Once
	dev     *emu.Device
	devErr  error
)

// device returns the emulator shared by the tests of this package.
func device(t testing.TB) *emu.Device {
	t.Helper()
	devOnce.Do(func() { dev, devErr = emu.New(context.Background(), emu.Options{}) })
	if devErr != nil {
		t.Fatal(devErr)
	}
	return dev
}

func newBackend(t testing.TB, span int) *gpu.Backend {
	b := gpu.New(device(t), gpu.Options{AttnSpan: span})
	t.Cleanup(func() { b.Close() })
	return b
}

func randFloats(r *rand.Rand, n int, scale float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32((r.Float64()*2 - 1) * scale)
	}
	return out
}

// makeTensor encodes vals ([rows, cols]) as typ. K-quant blocks get random
// bits with small scales (there is no reference K-quantiser).
func makeTensor(t testing.TB, r *rand.Rand, typ quant.Type, rows, cols int, vals []float32) *weights.Tensor {
	t.Helper()
	var data []byte
	switch typ {
	case quant.F32:
		for _, v := range vals {
			data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
		}
	case quant.F16:
		for _, v := range vals {
			data = binary.LittleEndian.AppendUint16(data, quant.F32ToF16(v))
		}
	case quant.BF16:
		for _, v := range vals {
			data = binary.LittleEndian.AppendUint16(data, quant.F32ToBF16(v))
		}
	case quant.Q4_K, quant.Q6_K:
		rb, err := typ.RowBytes(cols)
		if err != nil {
			t.Fatal(err)
		}
		data = make([]byte, rows*rb)
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		bb := typ.BlockBytes()
		for off := 0; off < len(data); off += bb {
			if typ == quant.Q4_K {
				binary.LittleEndian.PutUint16(data[off:], quant.F32ToF16(float32(r.Float64()*0.01)))
				binary.LittleEndian.PutUint16(data[off+2:], quant.F32ToF16(float32(r.Float64()*0.01)))
			} else {
				binary.LittleEndian.PutUint16(data[off+208:], quant.F32ToF16(float32(r.Float64()*0.01)))
			}
		}
	default:
		rb, err := typ.RowBytes(cols)
		if err != nil {
			t.Fatal(err)
		}
		data = make([]byte, rows*rb)
		if err := quant.Quantize(typ, vals, data); err != nil {
			t.Fatal(err)
		}
	}
	return &weights.Tensor{Name: typ.String(), Type: typ, Shape: []int{rows, cols}, Data: data}
}

// dequant returns the tensor's values as the reference sees them.
func dequant(t *testing.T, w *weights.Tensor) []float64 {
	t.Helper()
	n := w.Shape[0] * w.Shape[1]
	f := make([]float32, n)
	if err := quant.Dequantize(w.Type, w.Data, f); err != nil {
		t.Fatal(err)
	}
	out := make([]float64, n)
	for i, v := range f {
		out[i] = float64(v)
	}
	return out
}

func upload(t *testing.T, b *gpu.Backend, rows, cols int, vals []float32) engine.Buffer {
	t.Helper()
	buf := b.NewBuffer(rows, cols)
	// Write through a one-row-at-a-time embed of an F32 table would test
	// more than needed: the buffers are host-visible, so fill them via an
	// F32 weight and Embed.
	table := &weights.Tensor{Name: "x", Type: quant.F32, Shape: []int{rows, cols}}
	for _, v := range vals {
		table.Data = binary.LittleEndian.AppendUint32(table.Data, math.Float32bits(v))
	}
	ws, err := b.LoadWeights(context.Background(), []*weights.Tensor{table})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int, rows)
	for i := range ids {
		ids[i] = i
	}
	b.Embed(buf, ws[0], ids)
	return buf
}

func read(t *testing.T, b *gpu.Backend, x engine.Buffer) []float32 {
	t.Helper()
	out := make([]float32, x.Rows()*x.Cols())
	if err := b.Read(x, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// maxErr returns the largest |got-want| / (tol scale).
type errStat struct{ abs, rel float64 }

func compare(t *testing.T, what string, got []float32, want, scale []float64, tol float64) errStat {
	t.Helper()
	var st errStat
	for i := range want {
		d := math.Abs(float64(got[i]) - want[i])
		st.abs = max(st.abs, d)
		s := 1.0
		if scale != nil {
			s = max(scale[i], 1e-30)
		}
		st.rel = max(st.rel, d/s)
		if d > tol*s || math.IsNaN(float64(got[i])) {
			t.Errorf("%s: [%d] got %v, want %v (|Δ| %.3g, scale %.3g)", what, i, got[i], want[i], d, s)
			return st
		}
	}
	return st
}

func TestMatMul(t *testing.T) {
	b := newBackend(t, 0)
	r := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		typ        quant.Type
		out, in, n int
	}{
		{quant.F32, 13, 37, 3},
		{quant.F16, 13, 7, 2},   // odd rows: the scalar path
		{quant.F16, 21, 132, 3}, // half4 path and a tail of lanes
		{quant.BF16, 9, 64, 1},
		{quant.Q8_0, 13, 96, 3},
		{quant.Q4_0, 17, 64, 2},
		{quant.Q5_0, 11, 160, 1},
		{quant.Q4_K, 9, 512, 2},
		{quant.Q6_K, 10, 256, 3},
		{quant.Q8_0, 1, 32, 1},
		// Batches of 4+ tokens take the simdgroup-matrix GEMM: tiles of 32
		// rows x 16 tokens x 32 k, edges in every dimension.
		{quant.F32, 37, 37, 5},
		{quant.F16, 13, 7, 17},
		{quant.F16, 64, 96, 16},
		{quant.BF16, 33, 64, 4},
		{quant.Q8_0, 45, 96, 19},
		{quant.Q4_0, 17, 64, 6},
		{quant.Q5_0, 11, 160, 9},
		{quant.Q4_K, 40, 512, 5},
		{quant.Q6_K, 10, 256, 33},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s_%dx%d_n%d", tc.typ, tc.out, tc.in, tc.n), func(t *testing.T) {
			wt := makeTensor(t, r, tc.typ, tc.out, tc.in, randFloats(r, tc.out*tc.in, 1))
			ws, err := b.LoadWeights(context.Background(), []*weights.Tensor{wt})
			if err != nil {
				t.Fatal(err)
			}
			xv := randFloats(r, tc.n*tc.in, 1)
			x := upload(t, b, tc.n, tc.in, xv)
			y := b.NewBuffer(tc.n, tc.out)
			b.MatMul(y, x, ws[0])
			got := read(t, b, y)
			w := dequant(t, wt)
			want := make([]float64, tc.n*tc.out)
			scale := make([]float64, tc.n*tc.out)
			for i := 0; i < tc.n; i++ {
				for o := 0; o < tc.out; o++ {
					var s, a float64
					for k := 0; k < tc.in; k++ {
						p := w[o*tc.in+k] * float64(xv[i*tc.in+k])
						s += p
						a += math.Abs(p)
					}
					want[i*tc.out+o], scale[i*tc.out+o] = s, a
				}
			}
			st := compare(t, "matmul", got, want, scale, 1e-5)
			t.Logf("max |Δ| %.3g, max |Δ|/Σ|w·x| %.3g", st.abs, st.rel)
		})
	}
}

// TestBF16BeyondHalfRange checks that BF16 weights too large for F16 (the
// format BF16 is converted to at load) still multiply and embed exactly.
func TestBF16BeyondHalfRange(t *testing.T) {
	b := newBackend(t, 0)
	r := rand.New(rand.NewPCG(35, 36))
	const out, in = 9, 64
	vals := randFloats(r, out*in, 1)
	vals[3], vals[70], vals[200] = 1e5, -3e38, 70000
	wt := makeTensor(t, r, quant.BF16, out, in, vals)
	ws, err := b.LoadWeights(context.Background(), []*weights.Tensor{wt})
	if err != nil {
		t.Fatal(err)
	}
	w := dequant(t, wt)
	xv := randFloats(r, 2*in, 1e-3)
	x := upload(t, b, 2, in, xv)
	y := b.NewBuffer(2, out)
	b.MatMul(y, x, ws[0])
	got := read(t, b, y)
	want := make([]float64, 2*out)
	scale := make([]float64, 2*out)
	for i := 0; i < 2; i++ {
		for o := 0; o < out; o++ {
			for k := 0; k < in; k++ {
				p := w[o*in+k] * float64(xv[i*in+k])
				want[i*out+o] += p
				scale[i*out+o] += math.Abs(p)
			}
		}
	}
	compare(t, "bf16 matmul", got, want, scale, 1e-5)
	emb := b.NewBuffer(3, in)
	b.Embed(emb, ws[0], []int{0, 1, 3})
	got = read(t, b, emb)
	for i, row := range []int{0, 1, 3} {
		for k := 0; k < in; k++ {
			if g, w := float64(got[i*in+k]), w[row*in+k]; g != w {
				t.Fatalf("embed row %d [%d]: got %g, want %g", row, k, g, w)
			}
		}
	}
}

// TestMatMulAdd checks the fused residual (dst += x·Wᵀ) on the GEMV and
// GEMM paths.
func TestMatMulAdd(t *testing.T) {
	b := newBackend(t, 0)
	r := rand.New(rand.NewPCG(21, 22))
	for _, n := range []int{1, 6} {
		out, in := 19, 64
		wt := makeTensor(t, r, quant.Q8_0, out, in, randFloats(r, out*in, 1))
		ws, err := b.LoadWeights(context.Background(), []*weights.Tensor{wt})
		if err != nil {
			t.Fatal(err)
		}
		xv, yv := randFloats(r, n*in, 1), randFloats(r, n*out, 1)
		x, y := upload(t, b, n, in, xv), upload(t, b, n, out, yv)
		b.MatMulAdd(y, x, ws[0])
		got := read(t, b, y)
		w := dequant(t, wt)
		want := make([]float64, n*out)
		for i := 0; i < n; i++ {
			for o := 0; o < out; o++ {
				s := float64(yv[i*out+o])
				for k := 0; k < in; k++ {
					s += w[o*in+k] * float64(xv[i*in+k])
				}
				want[i*out+o] = s
			}
		}
		compare(t, fmt.Sprintf("matmul_add n=%d", n), got, want, nil, 1e-5)
	}
}

func TestEmbed(t *testing.T) {
	b := newBackend(t, 0)
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		typ        quant.Type
		rows, cols int
	}{
		{quant.F32, 7, 13}, {quant.F16, 7, 13}, {quant.BF16, 5, 64}, {quant.Q8_0, 9, 64},
		{quant.Q4_0, 9, 96}, {quant.Q5_0, 9, 32}, {quant.Q4_K, 4, 256}, {quant.Q6_K, 4, 512},
	} {
		t.Run(tc.typ.String(), func(t *testing.T) {
			wt := makeTensor(t, r, tc.typ, tc.rows, tc.cols, randFloats(r, tc.rows*tc.cols, 1))
			// Misaligned data (as a safetensors file may hold) is copied.
			shifted := make([]byte, len(wt.Data)+2)
			copy(shifted[2:], wt.Data)
			wt.Data = shifted[2:]
			ws, err := b.LoadWeights(context.Background(), []*weights.Tensor{wt})
			if err != nil {
				t.Fatal(err)
			}
			ids := []int{tc.rows - 1, 0, 2, 2}
			dst := b.NewBuffer(len(ids), tc.cols)
			b.Embed(dst, ws[0], ids)
			got := read(t, b, dst)
			w := dequant(t, wt)
			var want []float64
			for _, id := range ids {
				want = append(want, w[id*tc.cols:(id+1)*tc.cols]...)
			}
			compare(t, "embed", got, want, nil, 0)
		})
	}
}

func TestRMSNorm(t *testing.T) {
	b := newBackend(t, 0)
	r := rand.New(rand.NewPCG(5, 6))
	for _, cols := range []int{1, 31, 67, 300, 1000} {
		rows := 3
		xv := randFloats(r, rows*cols, 3)
		wv := randFloats(r, cols, 2)
		w := makeTensor(t, r, quant.F32, 1, cols, wv)
		w.Shape = []int{cols}
		ws, err := b.LoadWeights(context.Background(), []*weights.Tensor{w})
		if err != nil {
			t.Fatal(err)
		}
		x := upload(t, b, rows, cols, xv)
		y := b.NewBuffer(rows, cols)
		b.RMSNorm(y, x, ws[0], 1e-5)
		b.RMSNorm(x, x, ws[0], 1e-5) // in place
		got, inPlace := read(t, b, y), read(t, b, x)
		want := make([]float64, rows*cols)
		for i := 0; i < rows; i++ {
			var ss float64
			for k := 0; k < cols; k++ {
				ss += float64(xv[i*cols+k]) * float64(xv[i*cols+k])
			}
			rr := 1 / math.Sqrt(ss/float64(cols)+1e-5)
			for k := 0; k < cols; k++ {
				want[i*cols+k] = float64(xv[i*cols+k]) * rr * float64(wv[k])
			}
		}
		st := compare(t, fmt.Sprintf("rms_norm cols %d", cols), got, want, nil, 2e-5)
		compare(t, "rms_norm in place", inPlace, want, nil, 2e-5)
		t.Logf("cols %d: max |Δ| %.3g", cols, st.abs)
	}
}

// ropeRef rotates q and k heads of one qkv row in float64.
func ropeRef(row []float64, pos int, r *engine.Rope) {
	half := len(r.InvFreq)
	for h := 0; h < r.Heads+r.KVHeads; h++ {
		x := row[h*r.HeadDim:]
		for i := 0; i < half; i++ {
			a := float64(pos) * r.InvFreq[i]
			c, s := math.Cos(a)*r.Scale, math.Sin(a)*r.Scale
			i0, i1 := i, i+half
			if r.Mode == engine.RopeNorm {
				i0, i1 = 2*i, 2*i+1
			}
			x0, x1 := x[i0], x[i1]
			x[i0], x[i1] = x0*c-x1*s, x1*c+x0*s
		}
	}
}

func TestRoPE(t *testing.T) {
	b := newBackend(t, 0)
	r := rand.New(rand.NewPCG(7, 8))
	mk := func(mode engine.RopeMode, heads, kv, hd, rot int, theta, scale float64, factors []float64) *engine.Rope {
		rp := &engine.Rope{Mode: mode, Heads: heads, KVHeads: kv, HeadDim: hd, Scale: scale}
		for i := 0; i < rot/2; i++ {
			f := 1.0
			if factors != nil {
				f = factors[i%len(factors)]
			}
			rp.InvFreq = append(rp.InvFreq, 1/(f*math.Pow(theta, float64(2*i)/float64(rot))))
		}
		return rp
	}
	for _, tc := range []struct {
		name string
		rope *engine.Rope
		pos0 int
	}{
		{"neox_full", mk(engine.RopeNeox, 4, 1, 16, 16, 250000, 1, nil), 0},
		{"neox_partial_longrope", mk(engine.RopeNeox, 2, 1, 64, 48, 10000, math.Sqrt(1.5), []float64{4.55, 5.17, 13.3, 1.26}), 431},
		{"norm_gqa", mk(engine.RopeNorm, 8, 4, 8, 8, 10000, 1, nil), 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rp := tc.rope
			n, cols := 3, (rp.Heads+2*rp.KVHeads)*rp.HeadDim
			xv := randFloats(r, n*cols, 1)
			x := upload(t, b, n, cols, xv)
			b.RoPE(x, tc.pos0, rp)
			got := read(t, b, x)
			want := make([]float64, n*cols)
			for i := range xv {
				want[i] = float64(xv[i])
			}
			for i := 0; i < n; i++ {
				ropeRef(want[i*cols:(i+1)*cols], tc.pos0+i, rp)
			}
			// float32 angles: position·inv_freq loses ~pos·2^-24 radians.
			tol := 2e-6 * float64(tc.pos0+n+8)
			st := compare(t, "rope", got, want, nil, tol)
			t.Logf("max |Δ| %.3g (tolerance %.3g)", st.abs, tol)
		})
	}
}

func TestSiLUMulAdd(t *testing.T) {
	b := newBackend(t, 0)
	r := rand.New(rand.NewPCG(9, 10))
	n, f := 3, 300
	gv := randFloats(r, n*2*f, 4)
	g := upload(t, b, n, 2*f, gv)
	act := b.NewBuffer(n, f)
	b.SiLUMul(act, g)
	av := randFloats(r, n*f, 1)
	acc := upload(t, b, n, f, av)
	b.Add(acc, act)
	gotAct, gotAcc := read(t, b, act), read(t, b, acc)
	wantAct := make([]float64, n*f)
	wantAcc := make([]float64, n*f)
	for i := 0; i < n; i++ {
		for k := 0; k < f; k++ {
			gate, up := float64(gv[i*2*f+k]), float64(gv[i*2*f+f+k])
			wantAct[i*f+k] = gate / (1 + math.Exp(-gate)) * up
			wantAcc[i*f+k] = float64(av[i*f+k]) + wantAct[i*f+k]
		}
	}
	compare(t, "silu_mul", gotAct, wantAct, nil, 1e-5)
	compare(t, "add", gotAcc, wantAcc, nil, 1e-5)
}

func TestArgmax(t *testing.T) {
	b := newBackend(t, 0)
	r := rand.New(rand.NewPCG(11, 12))
	cols := 1000
	v := randFloats(r, 3*cols, 1)
	v[0*cols+777] = 5
	v[0*cols+900] = 5 // tie: the lower index wins
	v[1*cols+3] = 2
	for k := 0; k < cols; k++ {
		v[2*cols+k] = -1
	}
	x := upload(t, b, 3, cols, v)
	got, err := b.Argmax(x)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{777, 3, 0}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("argmax %v, want %v", got, want)
	}
}

// TestAttention runs a prefill then decode steps through the cache and
// compares with float64 attention over the cached (F16-rounded) keys and
// values. A span of 4 positions makes every step use several splits.
func TestAttention(t *testing.T) {
	for _, tc := range []struct {
		heads, kv, hd int
		kvType        quant.Type
		span          int
	}{
		{4, 1, 16, quant.F16, 4},
		{4, 2, 40, quant.F32, 3},
		{2, 2, 64, quant.F16, 256},
		{6, 3, 96, quant.F16, 5},
		{4, 2, 64, quant.Q8_0, 4},
		{8, 1, 128, quant.Q8_0, 256},
	} {
		t.Run(fmt.Sprintf("h%d_kv%d_d%d_%s_span%d", tc.heads, tc.kv, tc.hd, tc.kvType, tc.span), func(t *testing.T) {
			b := newBackend(t, tc.span)
			r := rand.New(rand.NewPCG(13, uint64(tc.hd)))
			cache, err := b.NewKVCache(engine.KVSpec{Layers: 2, Ctx: 16, KVHeads: tc.kv, HeadDim: tc.hd, Type: tc.kvType})
			if err != nil {
				t.Fatal(err)
			}
			defer cache.Close()
			cols := (tc.heads + 2*tc.kv) * tc.hd
			var keys, vals [][]float64 // per position, kv*hd
			// The reference attends over the cache's values: rounded to
			// F16, or quantised to Q8_0 by engine/quant's reference.
			store := func(row []float32) []float64 {
				out := make([]float64, len(row))
				switch tc.kvType {
				case quant.Q8_0:
					deq := make([]float32, len(row))
					if err := quant.Dequantize(quant.Q8_0, quant.QuantizeQ8_0(row), deq); err != nil {
						t.Fatal(err)
					}
					for i, v := range deq {
						out[i] = float64(v)
					}
				case quant.F16:
					for i, v := range row {
						out[i] = float64(quant.F16ToF32(quant.F32ToF16(v)))
					}
				default:
					for i, v := range row {
						out[i] = float64(v)
					}
				}
				return out
			}
			pos := 0
			for step, n := range []int{5, 1, 1, 3, 1} {
				qv := randFloats(r, n*cols, 2)
				q := upload(t, b, n, cols, qv)
				out := b.NewBuffer(n, tc.heads*tc.hd)
				b.Attention(out, q, cache, 1, pos)
				got := read(t, b, out)
				want := make([]float64, n*tc.heads*tc.hd)
				for i := 0; i < n; i++ {
					row := qv[i*cols:]
					var k, v []float64
					for g := 0; g < tc.kv; g++ { // one head at a time: Q8_0 blocks never span heads
						k = append(k, store(row[(tc.heads+g)*tc.hd:(tc.heads+g+1)*tc.hd])...)
						v = append(v, store(row[(tc.heads+tc.kv+g)*tc.hd:(tc.heads+tc.kv+g+1)*tc.hd])...)
					}
					keys, vals = append(keys, k), append(vals, v)
					for h := 0; h < tc.heads; h++ {
						g := h / (tc.heads / tc.kv)
						scores := make([]float64, len(keys))
						mx := math.Inf(-1)
						for p := range keys {
							var s float64
							for d := 0; d < tc.hd; d++ {
								s += float64(row[h*tc.hd+d]) * keys[p][g*tc.hd+d]
							}
							scores[p] = s / math.Sqrt(float64(tc.hd))
							mx = max(mx, scores[p])
						}
						var sum float64
						for p := range scores {
							scores[p] = math.Exp(scores[p] - mx)
							sum += scores[p]
						}
						for d := 0; d < tc.hd; d++ {
							var a float64
							for p := range scores {
								a += scores[p] / sum * vals[p][g*tc.hd+d]
							}
							want[(i*tc.heads+h)*tc.hd+d] = a
						}
					}
				}
				st := compare(t, fmt.Sprintf("step %d", step), got, want, nil, 2e-5)
				t.Logf("step %d (%d tokens at %d): max |Δ| %.3g", step, n, pos, st.abs)
				pos += n
			}
		})
	}
}

// smallGPU reports a tiny working set, like a Mac whose GPU cannot wire
// the model.
type smallGPU struct{ gpu.Device }

func (s smallGPU) Limits() gpu.Limits {
	l := s.Device.Limits()
	l.WorkingSet = 1000
	return l
}

// budgetGPU reports a working set of ws bytes.
type budgetGPU struct {
	gpu.Device
	ws int64
}

func (g budgetGPU) Limits() gpu.Limits {
	l := g.Device.Limits()
	l.WorkingSet = g.ws
	return l
}

// TestWorkingSetCountsKVCaches checks that KV caches count against the
// GPU's working set with the weights: a model whose weights fit but whose
// cache does not is refused with the numbers, and closing a cache frees
// its share.
func TestWorkingSetCountsKVCaches(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	wt := makeTensor(t, r, quant.F16, 40, 32, randFloats(r, 40*32, 1))                 // 2560 bytes
	spec := engine.KVSpec{Layers: 2, Ctx: 8, KVHeads: 1, HeadDim: 32, Type: quant.F16} // 2048 bytes
	b := gpu.New(budgetGPU{device(t), 2560 + 2048 + 100}, gpu.Options{})
	defer b.Close()
	if _, err := b.LoadWeights(context.Background(), []*weights.Tensor{wt}); err != nil {
		t.Fatal(err)
	}
	c1, err := b.NewKVCache(spec)
	if err != nil {
		t.Fatalf("a cache that fits: %v", err)
	}
	if _, err := b.NewKVCache(spec); err == nil || !strings.Contains(err.Error(), "recommendedMaxWorkingSetSize") {
		t.Errorf("a second cache past the working set: got %v, want a refusal with the sizes", err)
	}
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c1.Close(); err != nil { // twice: counted once
		t.Fatal(err)
	}
	c2, err := b.NewKVCache(spec)
	if err != nil {
		t.Fatalf("a cache after closing the first: %v", err)
	}
	c2.Close()
	if _, err := b.LoadWeights(context.Background(), []*weights.Tensor{wt}); err == nil {
		t.Error("a second copy of the weights past the working set accepted")
	}
}

func TestBadInputIsAnError(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	wt := makeTensor(t, r, quant.F16, 40, 32, randFloats(r, 40*32, 1))

	small := gpu.New(smallGPU{device(t)}, gpu.Options{})
	defer small.Close()
	if _, err := small.LoadWeights(context.Background(), []*weights.Tensor{wt}); err == nil || !strings.Contains(err.Error(), "GB") {
		t.Errorf("oversized model: got %v, want a refusal with the sizes", err)
	}

	b := newBackend(t, 0)
	odd := &weights.Tensor{Name: "odd", Type: quant.Q8_0, Shape: []int{2, 33}, Data: make([]byte, 2*34)}
	if _, err := b.LoadWeights(context.Background(), []*weights.Tensor{odd}); err == nil {
		t.Error("Q8_0 rows of 33 values accepted")
	}
	if _, err := b.NewKVCache(engine.KVSpec{Layers: 1, Ctx: 8, KVHeads: 1, HeadDim: 32, Type: quant.Q4_0}); err == nil {
		t.Error("Q4_0 KV cache accepted")
	}
	if _, err := b.NewKVCache(engine.KVSpec{Layers: 1, Ctx: 8, KVHeads: 1, HeadDim: 512, Type: quant.F16}); err == nil {
		t.Error("head_dim 512 accepted")
	}
	if _, err := b.NewKVCache(engine.KVSpec{Layers: 1, Ctx: 8, KVHeads: 1, HeadDim: 16, Type: quant.Q8_0}); err == nil {
		t.Error("Q8_0 KV cache with head_dim 16 (not whole blocks) accepted")
	}
	cache, err := b.NewKVCache(engine.KVSpec{Layers: 1, Ctx: 4, KVHeads: 1, HeadDim: 16, Type: quant.F16})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	q := b.NewBuffer(2, 3*16)
	out := b.NewBuffer(2, 16)
	b.Attention(out, q, cache, 0, 3) // positions 3 and 4 of a 4-position cache
	if err := b.Sync(); err == nil || !strings.Contains(err.Error(), "outside the cache") {
		t.Errorf("attention past the cache: got %v", err)
	}
	if err := b.Sync(); err != nil {
		t.Errorf("the error was reported twice: %v", err)
	}
	ws, err := b.LoadWeights(context.Background(), []*weights.Tensor{wt})
	if err != nil {
		t.Fatal(err)
	}
	emb := b.NewBuffer(1, 32)
	b.Embed(emb, ws[0], []int{40})
	if _, err := b.Argmax(emb); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("token past the table: got %v", err)
	}
}

// recordOnly is a device whose Run does nothing: it isolates the host
// side's allocations.
type recordOnly struct{ gpu.Device }

func (recordOnly) Run(context.Context, []gpu.Dispatch) error { return nil }

// decodeLayer returns a function that records one decode layer of a small
// model on b and submits it.
func decodeLayer(t testing.TB, b *gpu.Backend) func() {
	r := rand.New(rand.NewPCG(41, 42))
	const hidden, heads, kv, hd, ffn = 64, 4, 1, 16, 96
	mk := func(typ quant.Type, rows, cols int) engine.Weight {
		ws, err := b.LoadWeights(context.Background(), []*weights.Tensor{makeTensor(t, r, typ, rows, cols, randFloats(r, rows*cols, 1))})
		if err != nil {
			t.Fatal(err)
		}
		return ws[0]
	}
	norm := &weights.Tensor{Name: "n", Type: quant.F32, Shape: []int{hidden}, Data: make([]byte, 4*hidden)}
	nw, err := b.LoadWeights(context.Background(), []*weights.Tensor{norm})
	if err != nil {
		t.Fatal(err)
	}
	qkvW, outW, guW, downW := mk(quant.Q8_0, (heads+2*kv)*hd, hidden), mk(quant.Q4_0, hidden, heads*hd), mk(quant.Q8_0, 2*ffn, hidden), mk(quant.F16, hidden, ffn)
	x, h := b.NewBuffer(1, hidden), b.NewBuffer(1, hidden)
	qkv, att, o := b.NewBuffer(1, (heads+2*kv)*hd), b.NewBuffer(1, heads*hd), b.NewBuffer(1, hidden)
	gu, act := b.NewBuffer(1, 2*ffn), b.NewBuffer(1, ffn)
	cache, err := b.NewKVCache(engine.KVSpec{Layers: 1, Ctx: 64, KVHeads: kv, HeadDim: hd, Type: quant.F16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	rope := &engine.Rope{Heads: heads, KVHeads: kv, HeadDim: hd, InvFreq: []float64{1, 0.1, 0.01, 0.001, 1e-4, 1e-5, 1e-6, 1e-7}, Scale: 1}
	pos := 0
	step := func() {
		b.Embed(x, guW, []int{3})
		b.RMSNorm(h, x, nw[0], 1e-5)
		b.MatMul(qkv, h, qkvW)
		b.RoPE(qkv, pos, rope)
		b.Attention(att, qkv, cache, 0, pos)
		b.MatMul(o, att, outW)
		b.Add(x, o)
		b.RMSNorm(h, x, nw[0], 1e-5)
		b.MatMul(gu, h, guW)
		b.SiLUMul(act, gu)
		b.MatMulAdd(x, act, downW)
		if err := b.Sync(); err != nil {
			t.Fatal(err)
		}
		pos = (pos + 1) % 64
	}
	return step
}

// TestDecodeStepAllocatesNothing records a whole decode layer (and the
// submission) and checks that, once warm, the host side allocates nothing.
func TestDecodeStepAllocatesNothing(t *testing.T) {
	b := gpu.New(recordOnly{device(t)}, gpu.Options{})
	defer b.Close()
	step := decodeLayer(t, b)
	step()
	step()
	if n := testing.AllocsPerRun(20, step); n != 0 {
		t.Errorf("a decode layer allocates %v times on the host", n)
	}
}

// BenchmarkRecordDecodeLayer: host cost of recording and submitting one
// decode layer (11 operations, 13 dispatches) with a device that does
// nothing: the CPU time a Mac spends per layer outside the GPU.
func BenchmarkRecordDecodeLayer(bm *testing.B) {
	b := gpu.New(recordOnly{device(bm)}, gpu.Options{})
	defer b.Close()
	step := decodeLayer(bm, b)
	bm.ReportAllocs()
	for bm.Loop() {
		step()
	}
}

// BenchmarkEmulatedDecodeLayer: the same layer run by the emulator (how
// fast the test infrastructure is, not a GPU figure).
func BenchmarkEmulatedDecodeLayer(bm *testing.B) {
	b := gpu.New(device(bm), gpu.Options{})
	defer b.Close()
	step := decodeLayer(bm, b)
	for bm.Loop() {
		step()
	}
}

func TestMeasureBandwidth(t *testing.T) {
	gbs, err := gpu.MeasureBandwidth(context.Background(), device(t), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if gbs <= 0 || math.IsInf(gbs, 0) {
		t.Errorf("bandwidth %v GB/s", gbs)
	}
	t.Logf("emulator read bandwidth %.3f GB/s", gbs)
	if _, err := gpu.MeasureBandwidth(context.Background(), device(t), 8); err == nil {
		t.Error("8-byte probe accepted")
	}
}

// hugeAllocGuard is the emulator, failing the test on any allocation past
// 1 GiB instead of making it.
type hugeAllocGuard struct {
	*emu.Device
	t *testing.T
}

func (d hugeAllocGuard) Alloc(size int) (gpu.Buffer, error) {
	if size > 1<<30 {
		d.t.Errorf("allocated a %d-byte buffer", size)
		return nil, errors.New("refused by the test")
	}
	return d.Device.Alloc(size)
}

// TestMeasureBandwidthTooLarge checks that a probe whose 16-byte count
// does not fit the kernel's uint32 argument is refused before anything is
// allocated: the kernel would read only the truncated count while the
// bandwidth was computed from the full size.
func TestMeasureBandwidthTooLarge(t *testing.T) {
	for _, size := range []int{16 << 32, 16<<32 + 16, math.MaxInt} {
		if _, err := gpu.MeasureBandwidth(context.Background(), hugeAllocGuard{device(t), t}, size); err == nil {
			t.Errorf("%d-byte probe accepted", size)
		}
	}
}

// TestRoPEAttentionFusion: RoPE followed by Attention on the same rows runs
// as one rope_append dispatch; its results (outputs and cache) must equal
// the separate kernels' (forced by a Sync in between).
func TestRoPEAttentionFusion(t *testing.T) {
	for _, mode := range []engine.RopeMode{engine.RopeNeox, engine.RopeNorm} {
		for _, kvType := range []quant.Type{quant.F16, quant.F32} {
			b := newBackend(t, 4)
			r := rand.New(rand.NewPCG(51, 52))
			heads, kv, hd := 4, 2, 64
			rope := &engine.Rope{Mode: mode, Heads: heads, KVHeads: kv, HeadDim: hd, Scale: 1.2}
			for i := 0; i < 24; i++ { // partial rotary: 48 of 64 dims
				rope.InvFreq = append(rope.InvFreq, 1/math.Pow(10000, float64(2*i)/48))
			}
			spec := engine.KVSpec{Layers: 1, Ctx: 16, KVHeads: kv, HeadDim: hd, Type: kvType}
			fused, err := b.NewKVCache(spec)
			if err != nil {
				t.Fatal(err)
			}
			separate, err := b.NewKVCache(spec)
			if err != nil {
				t.Fatal(err)
			}
			cols := (heads + 2*kv) * hd
			pos := 0
			for _, n := range []int{5, 1, 2} {
				v := randFloats(r, n*cols, 1)
				q1, q2 := upload(t, b, n, cols, v), upload(t, b, n, cols, v)
				o1, o2 := b.NewBuffer(n, heads*hd), b.NewBuffer(n, heads*hd)
				b.RoPE(q1, pos, rope)
				b.Attention(o1, q1, fused, 0, pos)
				b.RoPE(q2, pos, rope)
				if err := b.Sync(); err != nil { // no fusion across a submission
					t.Fatal(err)
				}
				b.Attention(o2, q2, separate, 0, pos)
				g1, g2 := read(t, b, o1), read(t, b, o2)
				for i := range g1 {
					if g1[i] != g2[i] {
						t.Fatalf("mode %d %s step at %d: [%d] fused %v, separate %v", mode, kvType, pos, i, g1[i], g2[i])
					}
				}
				pos += n
			}
			fused.Close()
			separate.Close()
		}
	}
}

// TestMatMulThenAddFusion: MatMul(o) then Add(y, o) runs as one product
// whose epilogue also adds into y; o must still hold the product.
func TestMatMulThenAddFusion(t *testing.T) {
	b := newBackend(t, 0)
	r := rand.New(rand.NewPCG(61, 62))
	for _, n := range []int{1, 6} {
		out, in := 21, 64
		wt := makeTensor(t, r, quant.Q4_0, out, in, randFloats(r, out*in, 1))
		ws, err := b.LoadWeights(context.Background(), []*weights.Tensor{wt})
		if err != nil {
			t.Fatal(err)
		}
		xv, yv := randFloats(r, n*in, 1), randFloats(r, n*out, 1)
		x, y := upload(t, b, n, in, xv), upload(t, b, n, out, yv)
		o := b.NewBuffer(n, out)
		b.MatMul(o, x, ws[0])
		b.Add(y, o)
		gotO, gotY := read(t, b, o), read(t, b, y)
		w := dequant(t, wt)
		wantO, wantY := make([]float64, n*out), make([]float64, n*out)
		for i := 0; i < n; i++ {
			for j := 0; j < out; j++ {
				var s float64
				for k := 0; k < in; k++ {
					s += w[j*in+k] * float64(xv[i*in+k])
				}
				wantO[i*out+j], wantY[i*out+j] = s, float64(yv[i*out+j])+s
			}
		}
		compare(t, fmt.Sprintf("product n=%d", n), gotO, wantO, nil, 1e-5)
		compare(t, fmt.Sprintf("residual n=%d", n), gotY, wantY, nil, 1e-5)
		// Adding a buffer into itself must not fuse (it would read and
		// write the same memory).
		b.MatMul(o, x, ws[0])
		b.Add(o, o)
		got := read(t, b, o)
		for i := range wantO {
			wantO[i] *= 2
		}
		compare(t, fmt.Sprintf("self add n=%d", n), got, wantO, nil, 1e-5)
		// Adding the product into the product's own input must not fuse
		// either (other threadgroups still read it). Square weights.
		sq := makeTensor(t, r, quant.Q8_0, in, in, randFloats(r, in*in, 1))
		sw, err := b.LoadWeights(context.Background(), []*weights.Tensor{sq})
		if err != nil {
			t.Fatal(err)
		}
		x2 := upload(t, b, n, in, xv)
		o2 := b.NewBuffer(n, in)
		b.MatMul(o2, x2, sw[0])
		b.Add(x2, o2)
		got = read(t, b, x2)
		ws2 := dequant(t, sq)
		want := make([]float64, n*in)
		for i := 0; i < n; i++ {
			for j := 0; j < in; j++ {
				s := float64(xv[i*in+j])
				for k := 0; k < in; k++ {
					s += ws2[j*in+k] * float64(xv[i*in+k])
				}
				want[i*in+j] = s
			}
		}
		compare(t, fmt.Sprintf("add into the input n=%d", n), got, want, nil, 1e-5)
	}
}

// allocLog is a device that records the sizes it allocates.
type allocLog struct {
	gpu.Device
	sizes *[]int
}

func (a allocLog) Alloc(size int) (gpu.Buffer, error) {
	*a.sizes = append(*a.sizes, size)
	return a.Device.Alloc(size)
}

// TestPrefillAttentionDoesNotSplit checks a prefill batch wide enough to
// fill the GPU with (head, token) threadgroups: it attends in one split
// (no split scratch: nothing near its size is allocated) and agrees with
// a float64 reference, as does the split path of a narrower batch before
// it.
func TestPrefillAttentionDoesNotSplit(t *testing.T) {
	const heads, kv, hd = 8, 2, 32
	var sizes []int
	b := gpu.New(allocLog{device(t), &sizes}, gpu.Options{AttnSpan: 4})
	defer b.Close()
	cache, err := b.NewKVCache(engine.KVSpec{Layers: 1, Ctx: 200, KVHeads: kv, HeadDim: hd, Type: quant.F32})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	r := rand.New(rand.NewPCG(37, 38))
	cols := (heads + 2*kv) * hd
	var rows [][]float32 // every qkv row so far
	pos := 0
	for _, n := range []int{64, 128} { // 8·64 threadgroups split; 8·128 do not
		qv := randFloats(r, n*cols, 1)
		q := upload(t, b, n, cols, qv)
		out := b.NewBuffer(n, heads*hd)
		sizes = sizes[:0]
		b.Attention(out, q, cache, 0, pos)
		got := read(t, b, out)
		if n == 128 {
			splitScratch := 4 * n * heads * ((pos + n + 3) / 4) * (2 + hd)
			for _, s := range sizes {
				if s >= splitScratch/2 {
					t.Errorf("prefill of %d tokens allocated %d bytes (the split scratch is %d)", n, s, splitScratch)
				}
			}
		}
		for i := 0; i < n; i++ {
			rows = append(rows, qv[i*cols:(i+1)*cols])
		}
		want := make([]float64, n*heads*hd)
		for i := 0; i < n; i++ {
			row := rows[pos+i]
			for h := 0; h < heads; h++ {
				g := h / (heads / kv)
				scores := make([]float64, pos+i+1)
				mx := math.Inf(-1)
				for p := range scores {
					var s float64
					for d := 0; d < hd; d++ {
						s += float64(row[h*hd+d]) * float64(rows[p][(heads+g)*hd+d])
					}
					scores[p] = s / math.Sqrt(hd)
					mx = max(mx, scores[p])
				}
				var sum float64
				for p := range scores {
					scores[p] = math.Exp(scores[p] - mx)
					sum += scores[p]
				}
				for d := 0; d < hd; d++ {
					var a float64
					for p := range scores {
						a += scores[p] / sum * float64(rows[p][(heads+kv+g)*hd+d])
					}
					want[(i*heads+h)*hd+d] = a
				}
			}
		}
		compare(t, fmt.Sprintf("%d tokens at %d", n, pos), got, want, nil, 2e-5)
		pos += n
	}
}
