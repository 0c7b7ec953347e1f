// Matrix-matrix products for prefill: dst[t][r] = dot(W[r], x[t]) for a
// batch of tokens, with simdgroup_matrix 8x8 tiles (Apple7+ / M1+).
// A threadgroup of 4 simdgroups computes a tile of 32 rows x 16 tokens:
// each step stages 32x32 weights (dequantised into threadgroup memory, so
// every quantised format shares the same inner loop) and 32x16
// activations, then each simdgroup multiplies its 8 rows by the two 8x8
// token blocks. Edges (rows, tokens, k past the end) are zero-filled.
// Grid: (ceil(n/32), ceil(n_tok/16)) threadgroups of 128 threads.
#include <metal_stdlib>
#include "args.h"
#include "quant.h"
using namespace metal;

#define TM 32 // rows per tile
#define TN 16 // tokens per tile
#define TK 32 // k per step

struct ElemF32 { static float get(device const uchar* r, uint k) { return elem_f32(r, k); } };
struct ElemF16 { static float get(device const uchar* r, uint k) { return elem_f16(r, k); } };
struct ElemQ8_0 { static float get(device const uchar* r, uint k) { return elem_q8_0(r, k); } };
struct ElemQ4_0 { static float get(device const uchar* r, uint k) { return elem_q4_0(r, k); } };
struct ElemQ5_0 { static float get(device const uchar* r, uint k) { return elem_q5_0(r, k); } };
struct ElemQ4_K { static float get(device const uchar* r, uint k) { return elem_q4_k(r, k); } };
struct ElemQ6_K { static float get(device const uchar* r, uint k) { return elem_q6_k(r, k); } };

template <typename E>
inline void gemm_tiles(device const uchar* w, device const float* x, device float* dst, device float* acc,
                       constant GemmArgs& a,
                       uint2 tg, uint tid, uint sg, threadgroup float* ws, threadgroup float* xs,
                       threadgroup float* cs) {
    uint row0 = tg.x * TM, tok0 = tg.y * TN;
    simdgroup_float8x8 c0 = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
    simdgroup_float8x8 c1 = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
    for (uint k0 = 0; k0 < a.k; k0 += TK) {
        // Stage W[row0.., k0..] as ws[r][k] and x[tok0.., k0..] as xs[k][t].
        for (uint i = tid; i < TM * TK; i += 128) {
            uint r = i / TK, k = i % TK;
            float v = 0.0f;
            if (row0 + r < a.n && k0 + k < a.k) v = E::get(w + ulong(row0 + r) * a.row_bytes, k0 + k);
            ws[r * TK + k] = v;
        }
        for (uint i = tid; i < TN * TK; i += 128) {
            uint t = i / TK, k = i % TK;
            float v = 0.0f;
            if (tok0 + t < a.n_tok && k0 + k < a.k) v = x[(tok0 + t) * a.x_stride + k0 + k];
            xs[k * TN + t] = v;
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
        for (uint kk = 0; kk < TK; kk += 8) {
            simdgroup_float8x8 am, b0, b1;
            simdgroup_load(am, ws + sg * 8 * TK + kk, TK);
            simdgroup_load(b0, xs + kk * TN, TN);
            simdgroup_load(b1, xs + kk * TN + 8, TN);
            simdgroup_multiply_accumulate(c0, am, b0, c0);
            simdgroup_multiply_accumulate(c1, am, b1, c1);
        }
        threadgroup_barrier(mem_flags::mem_threadgroup);
    }
    // cs[r][t]: this simdgroup's 8 rows x 16 tokens.
    simdgroup_store(c0, cs + sg * 8 * TN, TN);
    simdgroup_store(c1, cs + sg * 8 * TN + 8, TN);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint i = tid; i < TM * TN; i += 128) {
        uint r = i / TN, t = i % TN;
        if (row0 + r < a.n && tok0 + t < a.n_tok) {
            device float* d = dst + (tok0 + t) * a.dst_stride + row0 + r;
            float v = cs[r * TN + t];
            *d = a.accumulate == 1 ? *d + v : v;
            if (a.accumulate == 2) acc[(tok0 + t) * a.acc_stride + row0 + r] += v;
        }
    }
}

kernel void gemm_f32(device const uchar* w [[buffer(0)]], device const float* x [[buffer(1)]],
                     device float* dst [[buffer(2)]], constant GemmArgs& a [[buffer(3)]],
                     device float* acc [[buffer(4)]], uint2 tg [[threadgroup_position_in_grid]], uint tid [[thread_index_in_threadgroup]],
                     uint sg [[simdgroup_index_in_threadgroup]]) {
    threadgroup float ws[TM * TK];
    threadgroup float xs[TK * TN];
    threadgroup float cs[TM * TN];
    gemm_tiles<ElemF32>(w, x, dst, acc, a, tg, tid, sg, ws, xs, cs);
}

kernel void gemm_f16(device const uchar* w [[buffer(0)]], device const float* x [[buffer(1)]],
                     device float* dst [[buffer(2)]], constant GemmArgs& a [[buffer(3)]],
                     device float* acc [[buffer(4)]], uint2 tg [[threadgroup_position_in_grid]], uint tid [[thread_index_in_threadgroup]],
                     uint sg [[simdgroup_index_in_threadgroup]]) {
    threadgroup float ws[TM * TK];
    threadgroup float xs[TK * TN];
    threadgroup float cs[TM * TN];
    gemm_tiles<ElemF16>(w, x, dst, acc, a, tg, tid, sg, ws, xs, cs);
}

kernel void gemm_q8_0(device const uchar* w [[buffer(0)]], device const float* x [[buffer(1)]],
                     device float* dst [[buffer(2)]], constant GemmArgs& a [[buffer(3)]],
                     device float* acc [[buffer(4)]], uint2 tg [[threadgroup_position_in_grid]], uint tid [[thread_index_in_threadgroup]],
                     uint sg [[simdgroup_index_in_threadgroup]]) {
    threadgroup float ws[TM * TK];
    threadgroup float xs[TK * TN];
    threadgroup float cs[TM * TN];
    gemm_tiles<ElemQ8_0>(w, x, dst, acc, a, tg, tid, sg, ws, xs, cs);
}

kernel void gemm_q4_0(device const uchar* w [[buffer(0)]], device const float* x [[buffer(1)]],
                     device float* dst [[buffer(2)]], constant GemmArgs& a [[buffer(3)]],
                     device float* acc [[buffer(4)]], uint2 tg [[threadgroup_position_in_grid]], uint tid [[thread_index_in_threadgroup]],
                     uint sg [[simdgroup_index_in_threadgroup]]) {
    threadgroup float ws[TM * TK];
    threadgroup float xs[TK * TN];
    threadgroup float cs[TM * TN];
    gemm_tiles<ElemQ4_0>(w, x, dst, acc, a, tg, tid, sg, ws, xs, cs);
}

kernel void gemm_q5_0(device const uchar* w [[buffer(0)]], device const float* x [[buffer(1)]],
                     device float* dst [[buffer(2)]], constant GemmArgs& a [[buffer(3)]],
                     device float* acc [[buffer(4)]], uint2 tg [[threadgroup_position_in_grid]], uint tid [[thread_index_in_threadgroup]],
                     uint sg [[simdgroup_index_in_threadgroup]]) {
    threadgroup float ws[TM * TK];
    threadgroup float xs[TK * TN];
    threadgroup float cs[TM * TN];
    gemm_tiles<ElemQ5_0>(w, x, dst, acc, a, tg, tid, sg, ws, xs, cs);
}

kernel void gemm_q4_k(device const uchar* w [[buffer(0)]], device const float* x [[buffer(1)]],
                     device float* dst [[buffer(2)]], constant GemmArgs& a [[buffer(3)]],
                     device float* acc [[buffer(4)]], uint2 tg [[threadgroup_position_in_grid]], uint tid [[thread_index_in_threadgroup]],
                     uint sg [[simdgroup_index_in_threadgroup]]) {
    threadgroup float ws[TM * TK];
    threadgroup float xs[TK * TN];
    threadgroup float cs[TM * TN];
    gemm_tiles<ElemQ4_K>(w, x, dst, acc, a, tg, tid, sg, ws, xs, cs);
}

kernel void gemm_q6_k(device const uchar* w [[buffer(0)]], device const float* x [[buffer(1)]],
                     device float* dst [[buffer(2)]], constant GemmArgs& a [[buffer(3)]],
                     device float* acc [[buffer(4)]], uint2 tg [[threadgroup_position_in_grid]], uint tid [[thread_index_in_threadgroup]],
                     uint sg [[simdgroup_index_in_threadgroup]]) {
    threadgroup float ws[TM * TK];
    threadgroup float xs[TK * TN];
    threadgroup float cs[TM * TN];
    gemm_tiles<ElemQ6_K>(w, x, dst, acc, a, tg, tid, sg, ws, xs, cs);
}
