// Package selftest checks a GPU backend against the CPU backend, operation
// by operation and on a whole model, and writes a report a user can paste
// into an issue. On a Mac it proves the Metal kernels on the user's GPU;
// on Linux it runs the same checks on the emulator.
package selftest

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/quant"
	"github.com/phi4mac/phi4mac/engine/weights"
)

// Check is the outcome of one comparison.
type Check struct {
	Name   string
	MaxErr float64 // max |gpu - cpu|, relative to the scale of the values
	Tol    float64
	Err    error // the check could not run
}

// OK reports whether the check passed.
func (c Check) OK() bool { return c.Err == nil && c.MaxErr <= c.Tol }

// ModelCheck compares a model's logits and greedy tokens on both backends.
type ModelCheck struct {
	Name         string
	Positions    int     // prompt positions compared
	MaxErr       float64 // max |Δlogit| over the prompt positions
	Tol          float64
	SameTokens   int // leading greedy tokens that agree
	Tokens       int
	GPUTokensPer float64 // generated tokens per second, prompt included in the time
	CPUTokensPer float64
	Err          error
}

// OK reports whether the model check passed.
func (m ModelCheck) OK() bool {
	return m.Err == nil && m.MaxErr <= m.Tol && m.SameTokens == m.Tokens
}

// Report is everything a self-test found.
type Report struct {
	Device    string
	GOOS      string
	GOARCH    string
	Bandwidth float64 // measured read bandwidth, GB/s (0: not measured)
	Ops       []Check
	Model     *ModelCheck
}

// OK reports whether every check passed.
func (r *Report) OK() bool {
	for _, c := range r.Ops {
		if !c.OK() {
			return false
		}
	}
	return r.Model == nil || r.Model.OK()
}

// Write prints the report as plain text.
func (r *Report) Write(w io.Writer) {
	fmt.Fprintf(w, "phi4mac selftest: %s (%s/%s)\n", r.Device, r.GOOS, r.GOARCH)
	if r.Bandwidth > 0 {
		fmt.Fprintf(w, "  read bandwidth %.1f GB/s: phi-4 decode ceiling %.1f tokens/s at Q4_0, %.1f at Q8_0, %.1f at F16\n",
			r.Bandwidth, r.Bandwidth/7.99, r.Bandwidth/15.06, r.Bandwidth/28.33) // GB per token, empty cache (metal/README.md)
	}
	for _, c := range r.Ops {
		status := "ok  "
		if !c.OK() {
			status = "FAIL"
		}
		if c.Err != nil {
			fmt.Fprintf(w, "  %s %-28s error: %v\n", status, c.Name, c.Err)
			continue
		}
		fmt.Fprintf(w, "  %s %-28s max err %.3g (tolerance %.3g)\n", status, c.Name, c.MaxErr, c.Tol)
	}
	if m := r.Model; m != nil {
		status := "ok  "
		if !m.OK() {
			status = "FAIL"
		}
		if m.Err != nil {
			fmt.Fprintf(w, "  %s model %s: error: %v\n", status, m.Name, m.Err)
		} else {
			fmt.Fprintf(w, "  %s model %s: %d positions, max |Δlogit| %.3g (tolerance %.3g); greedy %d/%d identical; generate %.1f tokens/s (cpu %.1f)\n",
				status, m.Name, m.Positions, m.MaxErr, m.Tol, m.SameTokens, m.Tokens, m.GPUTokensPer, m.CPUTokensPer)
		}
	}
	if r.OK() {
		fmt.Fprintln(w, "result: PASS")
	} else {
		fmt.Fprintln(w, "result: FAIL")
	}
}

// Ops compares every operation of gpu with cpu on small random inputs
// whose shapes exercise the kernels' edges (rows that are not a multiple of
// a tile, odd lengths, grouped-query attention, several attention splits,
// GEMV and GEMM batch sizes).
func Ops(ctx context.Context, gpu, cpu engine.Backend) []Check {
	r := rand.New(rand.NewPCG(1, 2))
	var out []Check
	add := func(name string, tol float64, f func() (float64, error)) {
		if ctx.Err() != nil {
			return
		}
		e, err := f()
		out = append(out, Check{Name: name, MaxErr: e, Tol: tol, Err: err})
	}
	for _, typ := range []quant.Type{quant.F32, quant.F16, quant.BF16, quant.Q8_0, quant.Q4_0, quant.Q5_0, quant.Q4_K, quant.Q6_K} {
		for _, n := range []int{1, 7} {
			add(fmt.Sprintf("matmul %s x%d", typ, n), 1e-5, func() (float64, error) {
				return matmulDiff(ctx, r, gpu, cpu, typ, 45, 512, n)
			})
		}
		add(fmt.Sprintf("embed %s", typ), 1e-6, func() (float64, error) {
			return embedDiff(ctx, r, gpu, cpu, typ, 9, 256)
		})
	}
	add("rms_norm", 1e-5, func() (float64, error) { return normDiff(ctx, r, gpu, cpu, 3, 300) })
	add("rope neox partial", 1e-5, func() (float64, error) {
		return ropeDiff(r, gpu, cpu, engine.RopeNeox, 48, 64, 1.2247, 100)
	})
	add("rope norm", 1e-5, func() (float64, error) { return ropeDiff(r, gpu, cpu, engine.RopeNorm, 16, 16, 1, 3) })
	add("silu_mul", 1e-5, func() (float64, error) { return siluDiff(ctx, r, gpu, cpu, 3, 300) })
	for _, kv := range []quant.Type{quant.F16, quant.F32} {
		add(fmt.Sprintf("attention gqa %s", kv), 1e-4, func() (float64, error) {
			return attnDiff(ctx, r, gpu, cpu, kv)
		})
	}
	add("argmax", 0, func() (float64, error) { return argmaxDiff(ctx, r, gpu, cpu) })
	return out
}

func floatsTensor(name string, rows, cols int, v []float32) *weights.Tensor {
	t := &weights.Tensor{Name: name, Type: quant.F32, Shape: []int{rows, cols}}
	for _, x := range v {
		t.Data = binary.LittleEndian.AppendUint32(t.Data, math.Float32bits(x))
	}
	return t
}

func randFloats(r *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32((r.Float64()*2 - 1) * scale)
	}
	return v
}

// weightOf encodes random values as typ (random bits with small scales for
// the K-quants, which have no reference quantiser).
func weightOf(r *rand.Rand, typ quant.Type, rows, cols int) (*weights.Tensor, error) {
	v := randFloats(r, rows*cols, 1)
	t := &weights.Tensor{Name: typ.String(), Type: typ, Shape: []int{rows, cols}}
	rb, err := typ.RowBytes(cols)
	if err != nil {
		return nil, err
	}
	t.Data = make([]byte, rows*rb)
	switch typ {
	case quant.F32:
		return floatsTensor("f32", rows, cols, v), nil
	case quant.F16, quant.BF16:
		for i, x := range v {
			h := quant.F32ToF16(x)
			if typ == quant.BF16 {
				h = quant.F32ToBF16(x)
			}
			binary.LittleEndian.PutUint16(t.Data[2*i:], h)
		}
	case quant.Q4_K, quant.Q6_K:
		for i := range t.Data {
			t.Data[i] = byte(r.Uint32())
		}
		for off := 0; off < len(t.Data); off += typ.BlockBytes() {
			d := quant.F32ToF16(float32(r.Float64() * 0.01))
			if typ == quant.Q4_K {
				binary.LittleEndian.PutUint16(t.Data[off:], d)
				binary.LittleEndian.PutUint16(t.Data[off+2:], quant.F32ToF16(float32(r.Float64()*0.01)))
			} else {
				binary.LittleEndian.PutUint16(t.Data[off+208:], d)
			}
		}
	default:
		if err := quant.Quantize(typ, v, t.Data); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// pair holds the same data on both backends.
type pair struct{ g, c engine.Buffer }

func load(ctx context.Context, b engine.Backend, ts ...*weights.Tensor) ([]engine.Weight, error) {
	return b.LoadWeights(ctx, ts)
}

// upload fills a new rows x cols buffer on each backend with v (through an
// F32 embedding table: the interface has no host write).
func upload(ctx context.Context, gpu, cpu engine.Backend, rows, cols int, v []float32) (pair, error) {
	table := floatsTensor("x", rows, cols, v)
	ids := make([]int, rows)
	for i := range ids {
		ids[i] = i
	}
	var p pair
	for i, b := range []engine.Backend{gpu, cpu} {
		w, err := load(ctx, b, table)
		if err != nil {
			return p, err
		}
		buf := b.NewBuffer(rows, cols)
		b.Embed(buf, w[0], ids)
		if i == 0 {
			p.g = buf
		} else {
			p.c = buf
		}
	}
	return p, nil
}

// diff reads both buffers and returns max |g-c| / max(1, max |c|).
func diff(gpu, cpu engine.Backend, p pair) (float64, error) {
	n := p.g.Rows() * p.g.Cols()
	g, c := make([]float32, n), make([]float32, n)
	if err := gpu.Read(p.g, g); err != nil {
		return 0, err
	}
	if err := cpu.Read(p.c, c); err != nil {
		return 0, err
	}
	var d, scale float64
	for i := range c {
		d = max(d, math.Abs(float64(g[i])-float64(c[i])))
		scale = max(scale, math.Abs(float64(c[i])))
		if math.IsNaN(float64(g[i])) {
			return math.Inf(1), nil
		}
	}
	return d / max(1, scale), nil
}

func matmulDiff(ctx context.Context, r *rand.Rand, gpu, cpu engine.Backend, typ quant.Type, out, in, n int) (float64, error) {
	wt, err := weightOf(r, typ, out, in)
	if err != nil {
		return 0, err
	}
	x, err := upload(ctx, gpu, cpu, n, in, randFloats(r, n*in, 1))
	if err != nil {
		return 0, err
	}
	var y pair
	for i, b := range []engine.Backend{gpu, cpu} {
		w, err := load(ctx, b, wt)
		if err != nil {
			return 0, err
		}
		dst := b.NewBuffer(n, out)
		if i == 0 {
			b.MatMul(dst, x.g, w[0])
			y.g = dst
		} else {
			b.MatMul(dst, x.c, w[0])
			y.c = dst
		}
	}
	return diff(gpu, cpu, y)
}

func embedDiff(ctx context.Context, r *rand.Rand, gpu, cpu engine.Backend, typ quant.Type, rows, cols int) (float64, error) {
	wt, err := weightOf(r, typ, rows, cols)
	if err != nil {
		return 0, err
	}
	ids := []int{rows - 1, 0, 3, 3}
	var y pair
	for i, b := range []engine.Backend{gpu, cpu} {
		w, err := load(ctx, b, wt)
		if err != nil {
			return 0, err
		}
		dst := b.NewBuffer(len(ids), cols)
		b.Embed(dst, w[0], ids)
		if i == 0 {
			y.g = dst
		} else {
			y.c = dst
		}
	}
	return diff(gpu, cpu, y)
}

func normDiff(ctx context.Context, r *rand.Rand, gpu, cpu engine.Backend, rows, cols int) (float64, error) {
	x, err := upload(ctx, gpu, cpu, rows, cols, randFloats(r, rows*cols, 3))
	if err != nil {
		return 0, err
	}
	wt := floatsTensor("norm", 1, cols, randFloats(r, cols, 2))
	wt.Shape = []int{cols}
	for i, b := range []engine.Backend{gpu, cpu} {
		w, err := load(ctx, b, wt)
		if err != nil {
			return 0, err
		}
		if i == 0 {
			b.RMSNorm(x.g, x.g, w[0], 1e-5)
		} else {
			b.RMSNorm(x.c, x.c, w[0], 1e-5)
		}
	}
	return diff(gpu, cpu, x)
}

func ropeDiff(r *rand.Rand, gpu, cpu engine.Backend, mode engine.RopeMode, rot, hd int, scale float64, pos0 int) (float64, error) {
	rope := &engine.Rope{Mode: mode, Heads: 4, KVHeads: 2, HeadDim: hd, Scale: scale}
	for i := 0; i < rot/2; i++ {
		rope.InvFreq = append(rope.InvFreq, 1/(float64(1+i%3)*math.Pow(10000, float64(2*i)/float64(rot))))
	}
	cols := (rope.Heads + 2*rope.KVHeads) * hd
	x, err := upload(context.Background(), gpu, cpu, 3, cols, randFloats(r, 3*cols, 1))
	if err != nil {
		return 0, err
	}
	gpu.RoPE(x.g, pos0, rope)
	cpu.RoPE(x.c, pos0, rope)
	return diff(gpu, cpu, x)
}

func siluDiff(ctx context.Context, r *rand.Rand, gpu, cpu engine.Backend, rows, f int) (float64, error) {
	x, err := upload(ctx, gpu, cpu, rows, 2*f, randFloats(r, rows*2*f, 4))
	if err != nil {
		return 0, err
	}
	acc, err := upload(ctx, gpu, cpu, rows, f, randFloats(r, rows*f, 1))
	if err != nil {
		return 0, err
	}
	y := pair{gpu.NewBuffer(rows, f), cpu.NewBuffer(rows, f)}
	gpu.SiLUMul(y.g, x.g)
	cpu.SiLUMul(y.c, x.c)
	gpu.Add(acc.g, y.g)
	cpu.Add(acc.c, y.c)
	return diff(gpu, cpu, acc)
}

// attnDiff runs a 5-token prefill then 3 decode steps through a cache with
// 6 query heads sharing 2 KV heads of 40 dimensions.
func attnDiff(ctx context.Context, r *rand.Rand, gpu, cpu engine.Backend, kv quant.Type) (float64, error) {
	heads, kvh, hd := 6, 2, 40
	spec := engine.KVSpec{Layers: 2, Ctx: 32, KVHeads: kvh, HeadDim: hd, Type: kv}
	gc, err := gpu.NewKVCache(spec)
	if err != nil {
		return 0, err
	}
	defer gc.Close()
	cc, err := cpu.NewKVCache(spec)
	if err != nil {
		return 0, err
	}
	defer cc.Close()
	cols := (heads + 2*kvh) * hd
	var worst float64
	pos := 0
	for _, n := range []int{5, 1, 1, 1} {
		q, err := upload(ctx, gpu, cpu, n, cols, randFloats(r, n*cols, 2))
		if err != nil {
			return 0, err
		}
		out := pair{gpu.NewBuffer(n, heads*hd), cpu.NewBuffer(n, heads*hd)}
		gpu.Attention(out.g, q.g, gc, 1, pos)
		cpu.Attention(out.c, q.c, cc, 1, pos)
		d, err := diff(gpu, cpu, out)
		if err != nil {
			return 0, err
		}
		worst = max(worst, d)
		pos += n
	}
	return worst, nil
}

func argmaxDiff(ctx context.Context, r *rand.Rand, gpu, cpu engine.Backend) (float64, error) {
	cols := 1000
	v := randFloats(r, 2*cols, 1)
	v[321], v[654] = 3, 3 // a tie: the lower index
	x, err := upload(ctx, gpu, cpu, 2, cols, v)
	if err != nil {
		return 0, err
	}
	g, err := gpu.Argmax(x.g)
	if err != nil {
		return 0, err
	}
	c, err := cpu.Argmax(x.c)
	if err != nil {
		return 0, err
	}
	var bad float64
	for i := range c {
		if g[i] != c[i] {
			bad++
		}
	}
	return bad, nil
}

// Model compares the logits of every prompt position and a greedy
// continuation of tokens on the two models (the same file loaded on each
// backend), and times the decode on both.
func Model(ctx context.Context, name string, gpuModel, cpuModel *engine.Model, prompt []int, tokens int, tol float64) *ModelCheck {
	mc := &ModelCheck{Name: name, Positions: len(prompt), Tol: tol, Tokens: tokens}
	var logits [2][]float32
	var results [2]engine.Result
	var elapsed [2]time.Duration
	for i, m := range []*engine.Model{gpuModel, cpuModel} {
		s, err := m.NewSession(engine.SessionOptions{Ctx: len(prompt) + tokens + 1, KV: engine.KVF32})
		if err != nil {
			mc.Err = err
			return mc
		}
		logits[i], err = s.Forward(ctx, prompt, true)
		s.Close()
		if err != nil {
			mc.Err = err
			return mc
		}
		s, err = m.NewSession(engine.SessionOptions{Ctx: len(prompt) + tokens + 1, KV: engine.KVF32})
		if err != nil {
			mc.Err = err
			return mc
		}
		start := time.Now()
		results[i], err = s.Generate(ctx, engine.Request{Prompt: prompt, MaxTokens: tokens, StopIDs: []int{}}, nil)
		elapsed[i] = time.Since(start)
		s.Close()
		if err != nil {
			mc.Err = err
			return mc
		}
	}
	for j := range logits[1] {
		mc.MaxErr = max(mc.MaxErr, math.Abs(float64(logits[0][j])-float64(logits[1][j])))
	}
	for k := 0; k < tokens && k < len(results[0].Tokens) && k < len(results[1].Tokens); k++ {
		if results[0].Tokens[k] != results[1].Tokens[k] {
			break
		}
		mc.SameTokens++
	}
	rate := func(r engine.Result, d time.Duration) float64 {
		if d <= 0 {
			return 0
		}
		return float64(len(r.Tokens)) / d.Seconds()
	}
	mc.GPUTokensPer, mc.CPUTokensPer = rate(results[0], elapsed[0]), rate(results[1], elapsed[1])
	return mc
}

// NewReport starts a report for a device.
func NewReport(device string) *Report {
	return &Report{Device: device, GOOS: runtime.GOOS, GOARCH: runtime.GOARCH}
}
