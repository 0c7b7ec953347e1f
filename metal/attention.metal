// Causal grouped-query attention over the KV cache (F16, F32 or Q8_0), split over the
// sequence (flash-decoding): attn_partial computes, for each (head, token,
// split), the running max, the softmax denominator and the unnormalised
// weighted sum of values over its chunk of positions; attn_reduce combines
// the splits. The same pair serves decode (n_tok = 1) and prefill (query
// row t sees positions 0..pos0+t).
// attn_partial_* grid: (n_heads, n_tok, n_split) threadgroups of 32 threads
// (one simdgroup): lane j scores position base+j, then every lane
// accumulates its own head dimensions. head_dim <= 256. With a single
// split it writes the normalised output itself.
#include <metal_stdlib>
#include "args.h"
#include "quant.h"
using namespace metal;

#define MAX_DIMS_PER_LANE 8

// Cache element access: one position of one head is a row of row_bytes(hd).
struct KVF16 {
    static uint row_bytes(uint hd) { return 2 * hd; }
    static float get(device const uchar* row, uint d) { return float(((device const half*)row)[d]); }
};
struct KVF32 {
    static uint row_bytes(uint hd) { return 4 * hd; }
    static float get(device const uchar* row, uint d) { return ((device const float*)row)[d]; }
};
struct KVQ8_0 {
    static uint row_bytes(uint hd) { return hd / 32 * BYTES_Q8_0; }
    static float get(device const uchar* row, uint d) { return elem_q8_0(row, d); }
};

template <typename KV>
inline void attn_partial_impl(device const float* qkv, device const uchar* kcache, device const uchar* vcache,
                              device float* part, device float* dst, constant AttnArgs& a, uint3 tg, uint lane,
                              threadgroup float* probs) {
    uint h = tg.x, t = tg.y, sp = tg.z;
    uint kvh = h / (a.n_heads / a.n_kv_heads);
    uint kv_len = a.pos0 + t + 1;
    uint start = sp * a.chunk;
    uint end = min(start + a.chunk, kv_len);
    device const float* q = qkv + t * a.q_stride + h * a.head_dim;
    uint rb = KV::row_bytes(a.head_dim);
    device const uchar* kh = kcache + ulong(kvh) * a.ctx * rb;
    device const uchar* vh = vcache + ulong(kvh) * a.ctx * rb;
    float m = -INFINITY, l = 0.0f;
    float acc[MAX_DIMS_PER_LANE];
    for (uint j = 0; j < MAX_DIMS_PER_LANE; j++) acc[j] = 0.0f;
    for (uint base = start; base < end; base += 32) {
        uint p = base + lane;
        float score = -INFINITY;
        if (p < end) {
            device const uchar* k = kh + ulong(p) * rb;
            float s = 0.0f;
            for (uint d = 0; d < a.head_dim; d++) s += q[d] * KV::get(k, d);
            score = s * a.scale;
        }
        float mnew = max(m, simd_max(score));
        float pr = p < end ? exp(score - mnew) : 0.0f;
        float corr = exp(m - mnew);
        l = l * corr + simd_sum(pr);
        m = mnew;
        probs[lane] = pr;
        simdgroup_barrier(mem_flags::mem_threadgroup);
        uint n = min(32u, end - base);
        for (uint j = 0; j < MAX_DIMS_PER_LANE; j++) {
            uint d = lane + 32 * j;
            if (d >= a.head_dim) break;
            float s = acc[j] * corr;
            for (uint i = 0; i < n; i++) s += probs[i] * KV::get(vh + ulong(base + i) * rb, d);
            acc[j] = s;
        }
        simdgroup_barrier(mem_flags::mem_threadgroup);
    }
    if (a.n_split == 1) {
        // One split: this is the whole softmax, write the output directly
        // (attn_reduce is not dispatched).
        for (uint j = 0; j < MAX_DIMS_PER_LANE; j++) {
            uint d = lane + 32 * j;
            if (d < a.head_dim) dst[t * a.dst_stride + h * a.head_dim + d] = acc[j] / l;
        }
        return;
    }
    device float* out = part + ((ulong(t) * a.n_heads + h) * a.n_split + sp) * (2 + a.head_dim);
    if (lane == 0) {
        out[0] = m;
        out[1] = l;
    }
    for (uint j = 0; j < MAX_DIMS_PER_LANE; j++) {
        uint d = lane + 32 * j;
        if (d < a.head_dim) out[2 + d] = acc[j];
    }
}

kernel void attn_partial_f16(device const float* qkv [[buffer(0)]],
                             device const uchar* kcache [[buffer(1)]],
                             device const uchar* vcache [[buffer(2)]],
                             device float* part [[buffer(3)]],
                             constant AttnArgs& a [[buffer(4)]],
                             device float* dst [[buffer(5)]],
                             uint3 tg [[threadgroup_position_in_grid]],
                             uint lane [[thread_index_in_simdgroup]]) {
    threadgroup float probs[32];
    attn_partial_impl<KVF16>(qkv, kcache, vcache, part, dst, a, tg, lane, probs);
}

kernel void attn_partial_f32(device const float* qkv [[buffer(0)]],
                             device const uchar* kcache [[buffer(1)]],
                             device const uchar* vcache [[buffer(2)]],
                             device float* part [[buffer(3)]],
                             constant AttnArgs& a [[buffer(4)]],
                             device float* dst [[buffer(5)]],
                             uint3 tg [[threadgroup_position_in_grid]],
                             uint lane [[thread_index_in_simdgroup]]) {
    threadgroup float probs[32];
    attn_partial_impl<KVF32>(qkv, kcache, vcache, part, dst, a, tg, lane, probs);
}

kernel void attn_partial_q8_0(device const float* qkv [[buffer(0)]],
                              device const uchar* kcache [[buffer(1)]],
                              device const uchar* vcache [[buffer(2)]],
                              device float* part [[buffer(3)]],
                              constant AttnArgs& a [[buffer(4)]],
                              device float* dst [[buffer(5)]],
                              uint3 tg [[threadgroup_position_in_grid]],
                              uint lane [[thread_index_in_simdgroup]]) {
    threadgroup float probs[32];
    attn_partial_impl<KVQ8_0>(qkv, kcache, vcache, part, dst, a, tg, lane, probs);
}

// attn_reduce grid: (n_heads, n_tok) threadgroups of 32 threads.
kernel void attn_reduce(device const float* part [[buffer(0)]],
                        device float* dst [[buffer(1)]],
                        constant AttnArgs& a [[buffer(2)]],
                        uint2 tg [[threadgroup_position_in_grid]],
                        uint lane [[thread_index_in_threadgroup]]) {
    uint h = tg.x, t = tg.y;
    device const float* p = part + (ulong(t) * a.n_heads + h) * a.n_split * (2 + a.head_dim);
    float m = -INFINITY;
    for (uint s = 0; s < a.n_split; s++) m = max(m, p[s * (2 + a.head_dim)]);
    float l = 0.0f;
    for (uint s = 0; s < a.n_split; s++) {
        float ms = p[s * (2 + a.head_dim)];
        if (ms > -INFINITY) l += p[s * (2 + a.head_dim) + 1] * exp(ms - m);
    }
    for (uint d = lane; d < a.head_dim; d += 32) {
        float acc = 0.0f;
        for (uint s = 0; s < a.n_split; s++) {
            float ms = p[s * (2 + a.head_dim)];
            if (ms > -INFINITY) acc += p[s * (2 + a.head_dim) + 2 + d] * exp(ms - m);
        }
        dst[t * a.dst_stride + h * a.head_dim + d] = acc / l;
    }
}
