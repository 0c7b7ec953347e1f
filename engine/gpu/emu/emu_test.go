//go:build !darwin && cgo

package emu

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/engine/gpu"
)

func TestParseKernels(t *testing.T) {
	src := `// kernel void commented_out(device float* x [[buffer(0)]]) {}
/* kernel void also_not(device float* x [[buffer(0)]]) */
kernel void k1(device const float* x [[buffer(0)]],
               constant Args& a [[buffer(3)]], // trailing comment
               threadgroup float* sh [[threadgroup(1)]],
               uint2 gid [[thread_position_in_grid]], ushort lane [[thread_index_in_simdgroup]]) {}
kernel void k2(device half* y [[ buffer( 7 ) ]]) {}`
	ks, err := ParseKernels(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 2 || ks[0].Name != "k1" || ks[1].Name != "k2" {
		t.Fatalf("kernels: %+v", ks)
	}
	want := []Param{
		{Type: "device const float*", Name: "x", Attr: "buffer", Index: 0},
		{Type: "constant Args&", Name: "a", Attr: "buffer", Index: 3},
		{Type: "threadgroup float*", Name: "sh", Attr: "threadgroup", Index: 1},
		{Type: "uint2", Name: "gid", Attr: "thread_position_in_grid"},
		{Type: "ushort", Name: "lane", Attr: "thread_index_in_simdgroup"},
	}
	for i, p := range want {
		if ks[0].Params[i] != p {
			t.Errorf("param %d: got %+v, want %+v", i, ks[0].Params[i], p)
		}
	}
	if ks[1].Params[0].Index != 7 {
		t.Errorf("k2 buffer index %d", ks[1].Params[0].Index)
	}
	for _, bad := range []string{
		"kernel void b(device float* x) {}",
		"kernel void b(device float* x [[buffer(0)]], uint q [[no_such_builtin]]) {}",
		"kernel void b(device float x [[buffer(0)]]) {}",
		"kernel void b(device float* x [[buffer(31)]]) {}",
		"kernel void b(device float* x [[buffer(0)]] {}",
	} {
		if _, err := ParseKernels(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestRewriteThreadgroupArrays(t *testing.T) {
	got := Rewrite("  threadgroup float sh[32];\n  threadgroup float* p = sh;\n  threadgroup uint two[4][8];\n")
	if strings.Count(got, "emu::tg_alloc") != 2 || !strings.Contains(got, "threadgroup float* p = sh;") {
		t.Errorf("rewrite:\n%s", got)
	}
	if strings.Count(got, "\n") != 3 {
		t.Errorf("rewrite changed the line count:\n%s", got)
	}
}

// testKernels exist only to test the emulator's semantics.
const testKernels = `#include <metal_stdlib>
using namespace metal;

kernel void reverse_barrier(device uint* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]], uint n [[threads_per_threadgroup]]) {
    threadgroup uint sh[1024];
    sh[tid] = tid * 10u;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[tid] = sh[n - 1 - tid];
}

kernel void reverse_no_barrier(device uint* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]], uint n [[threads_per_threadgroup]]) {
    threadgroup uint sh[1024];
    sh[tid] = tid * 10u;
    out[tid] = sh[n - 1 - tid];
}

kernel void simd_ops(device float* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]],
                     uint lane [[thread_index_in_simdgroup]], uint sg [[simdgroup_index_in_threadgroup]]) {
    float v = float(tid + 1);
    out[4 * tid + 0] = simd_sum(v);
    out[4 * tid + 1] = simd_max(v);
    out[4 * tid + 2] = simd_shuffle_down(v, 1);
    out[4 * tid + 3] = simd_broadcast(v, 0) + float(sg) * 1000.0f + float(lane) * 0.0f;
}

kernel void divergent_barrier(device uint* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]]) {
    if (tid == 0) return;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[tid] = 1u;
}

kernel void divergent_simd(device float* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]]) {
    float v = 1.0f;
    if (tid % 2 == 0) v = simd_sum(v);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[tid] = v;
}

kernel void big_threadgroup(device float* out [[buffer(0)]], uint tid [[thread_index_in_threadgroup]]) {
    threadgroup float big[9000];
    big[tid] = 1.0f;
    out[tid] = big[tid];
}

kernel void grid_ids(device uint* out [[buffer(0)]], uint3 gid [[thread_position_in_grid]], uint3 ngrid [[threads_per_grid]],
                     ushort2 tg [[threadgroup_position_in_grid]]) {
    uint i = (gid.z * ngrid.y + gid.y) * ngrid.x + gid.x;
    out[2 * i] = gid.x + 100u * gid.y + 10000u * gid.z;
    out[2 * i + 1] = uint(tg.x) + 100u * uint(tg.y);
}

kernel void write_past_end(device uint* out [[buffer(0)]], constant uint& n [[buffer(1)]], uint tid [[thread_index_in_threadgroup]]) {
    out[n + 1024u * tid] = 1u;
}

kernel void nonuniform_matrix(device float* out [[buffer(0)]], uint lane [[thread_index_in_simdgroup]]) {
    simdgroup_float8x8 a = make_filled_simdgroup_matrix<float, 8, 8>(float(lane));
    simdgroup_float8x8 c;
    simdgroup_multiply(c, a, a);
    simdgroup_store(c, out, 8);
}

kernel void dyn_threadgroup(device float* out [[buffer(0)]], threadgroup float* sh [[threadgroup(0)]],
                            uint tid [[thread_index_in_threadgroup]], uint n [[threads_per_threadgroup]]) {
    sh[tid] = float(tid);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[tid] = sh[(tid + 1) % n];
}
`

func newTestDevice(t *testing.T, opts Options) *Device {
	t.Helper()
	opts.Extra = map[string]string{"emu_test.metal": testKernels}
	d, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func alloc(t *testing.T, d *Device, n int) gpu.Buffer {
	t.Helper()
	b, err := d.Alloc(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Release() })
	return b
}

func uints(b []byte) []uint32 {
	out := make([]uint32, len(b)/4)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return out
}

func floats(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func one(kernel string, groups, threads [3]int, bufs ...gpu.Buffer) []gpu.Dispatch {
	d := gpu.Dispatch{Kernel: kernel, Groups: groups, Threads: threads}
	for _, b := range bufs {
		d.Buffers = append(d.Buffers, gpu.Binding{Buf: b})
	}
	return []gpu.Dispatch{d}
}

// TestMissingBarrierFailsDeterministically: with a barrier the exchange
// through threadgroup memory is right under every lane order; without it,
// it is wrong under every order, every run.
func TestMissingBarrierFailsDeterministically(t *testing.T) {
	const n = 96
	for _, order := range []Order{OrderForward, OrderReverse, OrderAlternate, OrderShuffle} {
		d := newTestDevice(t, Options{Order: order, Seed: 7})
		out := alloc(t, d, 4*n)
		for _, k := range []string{"reverse_barrier", "reverse_no_barrier"} {
			for run := 0; run < 2; run++ {
				if err := d.Run(context.Background(), one(k, [3]int{1, 1, 1}, [3]int{n, 1, 1}, out)); err != nil {
					t.Fatal(err)
				}
				bad := 0
				for i, v := range uints(out.Bytes()) {
					if v != uint32(10*(n-1-i)) {
						bad++
					}
				}
				if k == "reverse_barrier" && bad != 0 {
					t.Errorf("order %d: %s: %d wrong values", order, k, bad)
				}
				if k == "reverse_no_barrier" && bad == 0 {
					t.Errorf("order %d: %s: the missing barrier went unnoticed", order, k)
				}
			}
		}
	}
}

func TestSimdgroupOps(t *testing.T) {
	d := newTestDevice(t, Options{})
	const n = 80 // two full simdgroups and one of 16 lanes
	out := alloc(t, d, 16*n)
	if err := d.Run(context.Background(), one("simd_ops", [3]int{1, 1, 1}, [3]int{n, 1, 1}, out)); err != nil {
		t.Fatal(err)
	}
	got := floats(out.Bytes())
	for tid := 0; tid < n; tid++ {
		sg, lane := tid/32, tid%32
		lo, hi := sg*32, min(sg*32+32, n)
		var sum, mx float32
		for i := lo; i < hi; i++ {
			sum += float32(i + 1)
			mx = max(mx, float32(i+1))
		}
		down := float32(tid + 1)
		if tid+1 < hi {
			down = float32(tid + 2)
		}
		want := []float32{sum, mx, down, float32(lo+1) + float32(sg)*1000}
		for j, w := range want {
			if got[4*tid+j] != w {
				t.Errorf("thread %d (sg %d lane %d) op %d: got %v, want %v", tid, sg, lane, j, got[4*tid+j], w)
			}
		}
	}
}

func TestDivergenceAndLimitsAreErrors(t *testing.T) {
	d := newTestDevice(t, Options{})
	out := alloc(t, d, 4*1024)
	tests := []struct {
		kernel string
		want   string
	}{
		{"divergent_barrier", "returned without it"},
		{"divergent_simd", "deadlock"},
		{"big_threadgroup", "threadgroup memory"},
		{"nonuniform_matrix", "operands that differ"},
	}
	for _, tc := range tests {
		err := d.Run(context.Background(), one(tc.kernel, [3]int{1, 1, 1}, [3]int{64, 1, 1}, out))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error mentioning %q", tc.kernel, err, tc.want)
		}
	}
	if err := d.Run(context.Background(), one("grid_ids", [3]int{1, 1, 1}, [3]int{1025, 1, 1}, out)); err == nil {
		t.Error("1025 threads per threadgroup accepted")
	}
	if err := d.Run(context.Background(), one("no_such_kernel", [3]int{1, 1, 1}, [3]int{1, 1, 1}, out)); err == nil {
		t.Error("unknown kernel accepted")
	}
	if err := d.Run(context.Background(), one("grid_ids", [3]int{1, 1, 1}, [3]int{1, 1, 1})); err == nil {
		t.Error("unbound buffer accepted")
	}
}

func TestGridBuiltins(t *testing.T) {
	d := newTestDevice(t, Options{})
	groups, threads := [3]int{3, 2, 2}, [3]int{4, 3, 1}
	nx, ny, nz := 12, 6, 2
	out := alloc(t, d, 8*nx*ny*nz)
	if err := d.Run(context.Background(), one("grid_ids", groups, threads, out)); err != nil {
		t.Fatal(err)
	}
	got := uints(out.Bytes())
	for z := 0; z < nz; z++ {
		for y := 0; y < ny; y++ {
			for x := 0; x < nx; x++ {
				i := (z*ny+y)*nx + x
				if got[2*i] != uint32(x+100*y+10000*z) || got[2*i+1] != uint32(x/4+100*(y/3)) {
					t.Fatalf("thread (%d,%d,%d): got %d %d", x, y, z, got[2*i], got[2*i+1])
				}
			}
		}
	}
}

func TestDynamicThreadgroupMemory(t *testing.T) {
	d := newTestDevice(t, Options{})
	const n = 64
	out := alloc(t, d, 4*n)
	ds := one("dyn_threadgroup", [3]int{2, 1, 1}, [3]int{n, 1, 1}, out)
	ds[0].ThreadgroupMem = []int{4 * n}
	if err := d.Run(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
	for i, v := range floats(out.Bytes()) {
		if v != float32((i+1)%n) {
			t.Fatalf("thread %d: got %v", i, v)
		}
	}
	ds[0].ThreadgroupMem = nil
	if err := d.Run(context.Background(), ds); err == nil {
		t.Error("missing [[threadgroup(0)]] size accepted")
	}
}

// TestGuardPage: a kernel writing past the end of a buffer from Alloc hits
// the guard page and crashes at once (checked in a child process).
func TestGuardPage(t *testing.T) {
	if os.Getenv("EMU_GUARD_CHILD") == "1" {
		d := newTestDevice(t, Options{})
		out := alloc(t, d, 4*100)
		n := binary.LittleEndian.AppendUint32(nil, 100)
		ds := one("write_past_end", [3]int{1, 1, 1}, [3]int{2, 1, 1}, out)
		ds[0].Buffers = append(ds[0].Buffers, gpu.Binding{Bytes: n})
		err := d.Run(context.Background(), ds)
		t.Fatalf("write past the end did not fault (err %v)", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestGuardPage$", "-test.count=1")
	cmd.Env = append(os.Environ(), "EMU_GUARD_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("child passed:\n%s", out)
	}
	if !strings.Contains(string(out), "SIGSEGV") {
		t.Errorf("child failed without a segmentation fault:\n%s", out)
	}
}
