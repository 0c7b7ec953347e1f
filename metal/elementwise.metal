// Element-wise kernels: SiLU-gated MLP on fused gate_up, residual add, KV
// append into the F16 cache, and embedding row fetch with dequantisation.
#include <metal_stdlib>
#include "args.h"
#include "quant.h"
using namespace metal;

// dst[t][i] = silu(src[t][i]) * src[t][n+i]. Grid: (ceil(n/tg), n_tok).
kernel void silu_mul(device const float* src [[buffer(0)]],
                     device float* dst [[buffer(1)]],
                     constant ElementwiseArgs& a [[buffer(2)]],
                     uint2 gid [[thread_position_in_grid]]) {
    uint i = gid.x, t = gid.y;
    if (i >= a.n || t >= a.n_tok) return;
    float g = src[t * a.src_stride + i];
    float u = src[t * a.src_stride + a.n + i];
    dst[t * a.dst_stride + i] = g / (1.0f + exp(-g)) * u;
}

// dst[t][i] += src[t][i]. Grid: (ceil(n/tg), n_tok).
kernel void add(device const float* src [[buffer(0)]],
                device float* dst [[buffer(1)]],
                constant ElementwiseArgs& a [[buffer(2)]],
                uint2 gid [[thread_position_in_grid]]) {
    uint i = gid.x, t = gid.y;
    if (i >= a.n || t >= a.n_tok) return;
    dst[t * a.dst_stride + i] += src[t * a.src_stride + i];
}

// Copies k and v heads of qkv rows into the cache ([kv_heads][ctx][head_dim]
// halves each). Grid: (kv_heads, n_tok) threadgroups.
kernel void kv_append_f16(device const float* qkv [[buffer(0)]],
                          device half* kcache [[buffer(1)]],
                          device half* vcache [[buffer(2)]],
                          constant KVAppendArgs& a [[buffer(3)]],
                          uint2 tg [[threadgroup_position_in_grid]],
                          uint lane [[thread_index_in_threadgroup]],
                          uint ntg [[threads_per_threadgroup]]) {
    uint h = tg.x, t = tg.y;
    device const float* k = qkv + t * a.row_stride + (a.n_heads + h) * a.head_dim;
    device const float* v = qkv + t * a.row_stride + (a.n_heads + a.n_kv_heads + h) * a.head_dim;
    uint off = (h * a.ctx + a.pos0 + t) * a.head_dim;
    for (uint i = lane; i < a.head_dim; i += ntg) {
        kcache[off + i] = half(k[i]);
        vcache[off + i] = half(v[i]);
    }
}

kernel void kv_append_f32(device const float* qkv [[buffer(0)]],
                          device float* kcache [[buffer(1)]],
                          device float* vcache [[buffer(2)]],
                          constant KVAppendArgs& a [[buffer(3)]],
                          uint2 tg [[threadgroup_position_in_grid]],
                          uint lane [[thread_index_in_threadgroup]],
                          uint ntg [[threads_per_threadgroup]]) {
    uint h = tg.x, t = tg.y;
    device const float* k = qkv + t * a.row_stride + (a.n_heads + h) * a.head_dim;
    device const float* v = qkv + t * a.row_stride + (a.n_heads + a.n_kv_heads + h) * a.head_dim;
    uint off = (h * a.ctx + a.pos0 + t) * a.head_dim;
    for (uint i = lane; i < a.head_dim; i += ntg) {
        kcache[off + i] = k[i];
        vcache[off + i] = v[i];
    }
}

// Q8_0 cache: each position of a head is head_dim/32 blocks (half scale,
// 32 int8), quantised like GGML's reference (d = max|x|/127, round half
// away from zero). Lane b quantises block b; head_dim % 32 == 0, <= 256.
inline void q8_0_block(device const float* x, device uchar* out) {
    float amax = 0.0f;
    for (int i = 0; i < 32; i++) amax = max(amax, fabs(x[i]));
    float d = amax / 127.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    *(device half*)out = half(d);
    device char* q = (device char*)(out + 2);
    for (int i = 0; i < 32; i++) q[i] = char(round(x[i] * id));
}

kernel void kv_append_q8_0(device const float* qkv [[buffer(0)]],
                           device uchar* kcache [[buffer(1)]],
                           device uchar* vcache [[buffer(2)]],
                           constant KVAppendArgs& a [[buffer(3)]],
                           uint2 tg [[threadgroup_position_in_grid]],
                           uint lane [[thread_index_in_threadgroup]]) {
    uint h = tg.x, t = tg.y;
    device const float* k = qkv + t * a.row_stride + (a.n_heads + h) * a.head_dim;
    device const float* v = qkv + t * a.row_stride + (a.n_heads + a.n_kv_heads + h) * a.head_dim;
    uint nb = a.head_dim / 32;
    ulong off = (ulong(h) * a.ctx + a.pos0 + t) * nb * BYTES_Q8_0;
    if (lane < nb) {
        q8_0_block(k + 32 * lane, kcache + off + lane * BYTES_Q8_0);
        q8_0_block(v + 32 * lane, vcache + off + lane * BYTES_Q8_0);
    }
}

// Embedding rows: one threadgroup per token, lanes over the row's blocks.
kernel void embed_f32(device const uchar* table [[buffer(0)]],
                      device const uint* ids [[buffer(1)]],
                      device float* dst [[buffer(2)]],
                      constant EmbedArgs& a [[buffer(3)]],
                      uint t [[threadgroup_position_in_grid]],
                      uint lane [[thread_index_in_threadgroup]],
                      uint ntg [[threads_per_threadgroup]]) {
    device const float* row = (device const float*)(table + ulong(ids[t]) * a.row_bytes);
    for (uint i = lane; i < a.k; i += ntg) dst[t * a.dst_stride + i] = row[i];
}

kernel void embed_f16(device const uchar* table [[buffer(0)]],
                      device const uint* ids [[buffer(1)]],
                      device float* dst [[buffer(2)]],
                      constant EmbedArgs& a [[buffer(3)]],
                      uint t [[threadgroup_position_in_grid]],
                      uint lane [[thread_index_in_threadgroup]],
                      uint ntg [[threads_per_threadgroup]]) {
    device const half* row = (device const half*)(table + ulong(ids[t]) * a.row_bytes);
    for (uint i = lane; i < a.k; i += ntg) dst[t * a.dst_stride + i] = float(row[i]);
}

kernel void embed_q8_0(device const uchar* table [[buffer(0)]],
                       device const uint* ids [[buffer(1)]],
                       device float* dst [[buffer(2)]],
                       constant EmbedArgs& a [[buffer(3)]],
                       uint t [[threadgroup_position_in_grid]],
                       uint lane [[thread_index_in_threadgroup]],
                       uint ntg [[threads_per_threadgroup]]) {
    device const uchar* row = table + ulong(ids[t]) * a.row_bytes;
    for (uint b = lane; b < a.k / QK8_0; b += ntg) deq_q8_0(row + b * BYTES_Q8_0, dst + t * a.dst_stride + b * QK8_0);
}

kernel void embed_q4_0(device const uchar* table [[buffer(0)]],
                       device const uint* ids [[buffer(1)]],
                       device float* dst [[buffer(2)]],
                       constant EmbedArgs& a [[buffer(3)]],
                       uint t [[threadgroup_position_in_grid]],
                       uint lane [[thread_index_in_threadgroup]],
                       uint ntg [[threads_per_threadgroup]]) {
    device const uchar* row = table + ulong(ids[t]) * a.row_bytes;
    for (uint b = lane; b < a.k / QK4_0; b += ntg) deq_q4_0(row + b * BYTES_Q4_0, dst + t * a.dst_stride + b * QK4_0);
}

kernel void embed_q5_0(device const uchar* table [[buffer(0)]],
                       device const uint* ids [[buffer(1)]],
                       device float* dst [[buffer(2)]],
                       constant EmbedArgs& a [[buffer(3)]],
                       uint t [[threadgroup_position_in_grid]],
                       uint lane [[thread_index_in_threadgroup]],
                       uint ntg [[threads_per_threadgroup]]) {
    device const uchar* row = table + ulong(ids[t]) * a.row_bytes;
    for (uint b = lane; b < a.k / QK5_0; b += ntg) deq_q5_0(row + b * BYTES_Q5_0, dst + t * a.dst_stride + b * QK5_0);
}

kernel void embed_q4_k(device const uchar* table [[buffer(0)]],
                       device const uint* ids [[buffer(1)]],
                       device float* dst [[buffer(2)]],
                       constant EmbedArgs& a [[buffer(3)]],
                       uint t [[threadgroup_position_in_grid]],
                       uint lane [[thread_index_in_threadgroup]],
                       uint ntg [[threads_per_threadgroup]]) {
    device const uchar* row = table + ulong(ids[t]) * a.row_bytes;
    for (uint b = lane; b < a.k / QK_K; b += ntg) deq_q4_k(row + b * BYTES_Q4_K, dst + t * a.dst_stride + b * QK_K);
}

kernel void embed_q6_k(device const uchar* table [[buffer(0)]],
                       device const uint* ids [[buffer(1)]],
                       device float* dst [[buffer(2)]],
                       constant EmbedArgs& a [[buffer(3)]],
                       uint t [[threadgroup_position_in_grid]],
                       uint lane [[thread_index_in_threadgroup]],
                       uint ntg [[threads_per_threadgroup]]) {
    device const uchar* row = table + ulong(ids[t]) * a.row_bytes;
    for (uint b = lane; b < a.k / QK_K; b += ntg) deq_q6_k(row + b * BYTES_Q6_K, dst + t * a.dst_stride + b * QK_K);
}

// Streams n4 float4 values once (the self-test's bandwidth probe); each
// thread writes its sum so the reads cannot be optimised away.
kernel void read_bandwidth(device const float4* src [[buffer(0)]],
                           device float* out [[buffer(1)]],
                           constant uint& n4 [[buffer(2)]],
                           uint gid [[thread_position_in_grid]],
                           uint ngrid [[threads_per_grid]]) {
    float4 acc = float4(0.0f);
    for (uint i = gid; i < n4; i += ngrid) acc += src[i];
    out[gid] = acc.x + acc.y + acc.z + acc.w;
}
