// RoPE on the query and key heads of fused qkv rows, in place.
// Grid: (heads+kv_heads, n_tok) threadgroups of 32 threads; inv_freq holds
// the angle per position of each rotated pair (LongRoPE factors folded in).
#include <metal_stdlib>
#include "args.h"
using namespace metal;

inline void rope_head(device float* x, device const float* inv_freq, constant RopeArgs& a, uint t, uint lane,
                      uint ntg) {
    float pos = float(a.pos0 + t);
    for (uint i = lane; i < a.rot_half; i += ntg) {
        float angle = pos * inv_freq[i];
        float c = precise::cos(angle) * a.scale;
        float s = precise::sin(angle) * a.scale;
        uint i0 = a.mode == 0 ? i : 2 * i;
        uint i1 = a.mode == 0 ? i + a.rot_half : 2 * i + 1;
        float x0 = x[i0], x1 = x[i1];
        x[i0] = x0 * c - x1 * s;
        x[i1] = x1 * c + x0 * s;
    }
}

kernel void rope(device float* qkv [[buffer(0)]],
                 device const float* inv_freq [[buffer(1)]],
                 constant RopeArgs& a [[buffer(2)]],
                 uint2 tg [[threadgroup_position_in_grid]],
                 uint lane [[thread_index_in_threadgroup]],
                 uint ntg [[threads_per_threadgroup]]) {
    rope_head(qkv + tg.y * a.row_stride + tg.x * a.head_dim, inv_freq, a, tg.y, lane, ntg);
}

// RoPE fused with the KV append of attention: threadgroups of query heads
// rotate them in place; threadgroups of key heads rotate the key, then
// copy it and the matching value head into the cache. One dispatch instead
// of two. Grid: (heads + kv_heads, n_tok) threadgroups of 32 threads.
template <typename KV>
inline void rope_append(device float* qkv, device const float* inv_freq, device KV* kcache, device KV* vcache,
                        constant RopeArgs& a, constant KVAppendArgs& kv, uint2 tg, uint lane, uint ntg) {
    uint head = tg.x, t = tg.y;
    device float* x = qkv + t * a.row_stride + head * a.head_dim;
    rope_head(x, inv_freq, a, t, lane, ntg);
    if (head < kv.n_heads) return;
    threadgroup_barrier(mem_flags::mem_device); // the rotated key, written by other lanes
    uint h = head - kv.n_heads;
    device const float* v = qkv + t * a.row_stride + (kv.n_heads + kv.n_kv_heads + h) * a.head_dim;
    uint off = (h * kv.ctx + kv.pos0 + t) * kv.head_dim;
    for (uint i = lane; i < kv.head_dim; i += ntg) {
        kcache[off + i] = KV(x[i]);
        vcache[off + i] = KV(v[i]);
    }
}

kernel void rope_append_f16(device float* qkv [[buffer(0)]],
                            device const float* inv_freq [[buffer(1)]],
                            constant RopeArgs& a [[buffer(2)]],
                            device half* kcache [[buffer(3)]],
                            device half* vcache [[buffer(4)]],
                            constant KVAppendArgs& kv [[buffer(5)]],
                            uint2 tg [[threadgroup_position_in_grid]],
                            uint lane [[thread_index_in_threadgroup]],
                            uint ntg [[threads_per_threadgroup]]) {
    rope_append<half>(qkv, inv_freq, kcache, vcache, a, kv, tg, lane, ntg);
}

kernel void rope_append_f32(device float* qkv [[buffer(0)]],
                            device const float* inv_freq [[buffer(1)]],
                            constant RopeArgs& a [[buffer(2)]],
                            device float* kcache [[buffer(3)]],
                            device float* vcache [[buffer(4)]],
                            constant KVAppendArgs& kv [[buffer(5)]],
                            uint2 tg [[threadgroup_position_in_grid]],
                            uint lane [[thread_index_in_threadgroup]],
                            uint ntg [[threads_per_threadgroup]]) {
    rope_append<float>(qkv, inv_freq, kcache, vcache, a, kv, tg, lane, ntg);
}
