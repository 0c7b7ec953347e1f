// Matrix-vector products for decode: dst[t][r] = dot(W[r], x[t]) with W in
// F32, F16 or a GGML block format, dequantised on the fly (fused).
// Threadgroup: 64 threads = 2 simdgroups; each simdgroup owns ROWS rows, its
// lanes stride over the 32-value sub-blocks of those rows (a K-quant
// super-block of 256 is split over 8 lanes, so a 5120-wide row keeps all
// 32 lanes busy), and simd_sum combines them.
// Grid: (ceil(n / (2*ROWS)), n_tok) threadgroups.
#include <metal_stdlib>
#include "args.h"
#include "quant.h"
using namespace metal;

#define ROWS 4

struct FmtQ8_0 {
    enum { QK = QK8_0, BYTES = BYTES_Q8_0, SUBS = 1 };
    static float dot(device const uchar* p, uint, device const float* x) { return dot_q8_0(p, x); }
};
struct FmtQ4_0 {
    enum { QK = QK4_0, BYTES = BYTES_Q4_0, SUBS = 1 };
    static float dot(device const uchar* p, uint, device const float* x) { return dot_q4_0(p, x); }
};
struct FmtQ5_0 {
    enum { QK = QK5_0, BYTES = BYTES_Q5_0, SUBS = 1 };
    static float dot(device const uchar* p, uint, device const float* x) { return dot_q5_0(p, x); }
};
struct FmtQ4_K {
    enum { QK = QK_K, BYTES = BYTES_Q4_K, SUBS = 8 };
    static float dot(device const uchar* p, uint sub, device const float* x) { return dot_q4_k_sub(p, sub, x); }
};
struct FmtQ6_K {
    enum { QK = QK_K, BYTES = BYTES_Q6_K, SUBS = 8 };
    static float dot(device const uchar* p, uint sub, device const float* x) { return dot_q6_k_sub(p, sub, x); }
};

inline void gemv_store(device float* dst, device float* acc, constant GemvArgs& a, uint t, uint row, float s) {
    device float* d = dst + t * a.dst_stride + row;
    *d = a.accumulate == 1 ? *d + s : s;
    if (a.accumulate == 2) acc[t * a.acc_stride + row] += s;
}

template <typename F>
inline void gemv_blocks(device const uchar* w, device const float* x, device float* dst, device float* acc,
                        constant GemvArgs& a, uint2 tg, uint sg, uint lane) {
    uint row0 = (tg.x * 2 + sg) * ROWS;
    uint t = tg.y;
    device const float* xt = x + t * a.x_stride;
    uint nsub = a.k / 32; // sub-blocks of 32 values per row
    float sum[ROWS];
    for (uint r = 0; r < ROWS; r++) {
        sum[r] = 0.0f;
        if (row0 + r >= a.n) continue;
        device const uchar* wr = w + ulong(row0 + r) * a.row_bytes;
        for (uint s = lane; s < nsub; s += 32) {
            uint b = s / uint(F::SUBS), sub = s % uint(F::SUBS);
            sum[r] += F::dot(wr + b * uint(F::BYTES), sub, xt + s * 32);
        }
    }
    for (uint r = 0; r < ROWS; r++) {
        float s = simd_sum(sum[r]);
        if (lane == 0 && row0 + r < a.n) gemv_store(dst, acc, a, t, row0 + r, s);
    }
}

kernel void gemv_q8_0(device const uchar* w [[buffer(0)]], device const float* x [[buffer(1)]],
                      device float* dst [[buffer(2)]], constant GemvArgs& a [[buffer(3)]],
                      device float* acc [[buffer(4)]], uint2 tg [[threadgroup_position_in_grid]],
                      uint sg [[simdgroup_index_in_threadgroup]], uint lane [[thread_index_in_simdgroup]]) {
    gemv_blocks<FmtQ8_0>(w, x, dst, acc, a, tg, sg, lane);
}

kernel void gemv_q4_0(device const uchar* w [[buffer(0)]], device const float* x [[buffer(1)]],
                      device float* dst [[buffer(2)]], constant GemvArgs& a [[buffer(3)]],
                      device float* acc [[buffer(4)]], uint2 tg [[threadgroup_position_in_grid]],
                      uint sg [[simdgroup_index_in_threadgroup]], uint lane [[thread_index_in_simdgroup]]) {
    gemv_blocks<FmtQ4_0>(w, x, dst, acc, a, tg, sg, lane);
}

kernel void gemv_q5_0(device const uchar* w [[buffer(0)]], device const float* x [[buffer(1)]],
                      device float* dst [[buffer(2)]], constant GemvArgs& a [[buffer(3)]],
                      device float* acc [[buffer(4)]], uint2 tg [[threadgroup_position_in_grid]],
                      uint sg [[simdgroup_index_in_threadgroup]], uint lane [[thread_index_in_simdgroup]]) {
    gemv_blocks<FmtQ5_0>(w, x, dst, acc, a, tg, sg, lane);
}

kernel void gemv_q4_k(device const uchar* w [[buffer(0)]], device const float* x [[buffer(1)]],
                      device float* dst [[buffer(2)]], constant GemvArgs& a [[buffer(3)]],
                      device float* acc [[buffer(4)]], uint2 tg [[threadgroup_position_in_grid]],
                      uint sg [[simdgroup_index_in_threadgroup]], uint lane [[thread_index_in_simdgroup]]) {
    gemv_blocks<FmtQ4_K>(w, x, dst, acc, a, tg, sg, lane);
}

kernel void gemv_q6_k(device const uchar* w [[buffer(0)]], device const float* x [[buffer(1)]],
                      device float* dst [[buffer(2)]], constant GemvArgs& a [[buffer(3)]],
                      device float* acc [[buffer(4)]], uint2 tg [[threadgroup_position_in_grid]],
                      uint sg [[simdgroup_index_in_threadgroup]], uint lane [[thread_index_in_simdgroup]]) {
    gemv_blocks<FmtQ6_K>(w, x, dst, acc, a, tg, sg, lane);
}

// F16 rows: half4 loads when rows are 8-byte aligned (k % 4 == 0).
kernel void gemv_f16(device const uchar* w [[buffer(0)]], device const float* x [[buffer(1)]],
                     device float* dst [[buffer(2)]], constant GemvArgs& a [[buffer(3)]],
                     device float* acc [[buffer(4)]], uint2 tg [[threadgroup_position_in_grid]],
                     uint sg [[simdgroup_index_in_threadgroup]], uint lane [[thread_index_in_simdgroup]]) {
    uint row0 = (tg.x * 2 + sg) * ROWS;
    uint t = tg.y;
    device const float* xt = x + t * a.x_stride;
    float sum[ROWS];
    for (uint r = 0; r < ROWS; r++) {
        sum[r] = 0.0f;
        if (row0 + r >= a.n) continue;
        device const half* wr = (device const half*)(w + ulong(row0 + r) * a.row_bytes);
        uint i = 0;
        if (a.k % 4 == 0) {
            device const half4* w4 = (device const half4*)wr;
            device const float4* x4 = (device const float4*)xt;
            for (uint j = lane; j < a.k / 4; j += 32) sum[r] += dot(CVT(float4, w4[j]), x4[j]);
            i = a.k;
        }
        for (uint j = i + lane; j < a.k; j += 32) sum[r] += float(wr[j]) * xt[j];
    }
    for (uint r = 0; r < ROWS; r++) {
        float s = simd_sum(sum[r]);
        if (lane == 0 && row0 + r < a.n) gemv_store(dst, acc, a, t, row0 + r, s);
    }
}

kernel void gemv_f32(device const uchar* w [[buffer(0)]], device const float* x [[buffer(1)]],
                     device float* dst [[buffer(2)]], constant GemvArgs& a [[buffer(3)]],
                     device float* acc [[buffer(4)]], uint2 tg [[threadgroup_position_in_grid]],
                     uint sg [[simdgroup_index_in_threadgroup]], uint lane [[thread_index_in_simdgroup]]) {
    uint row0 = (tg.x * 2 + sg) * ROWS;
    uint t = tg.y;
    device const float* xt = x + t * a.x_stride;
    float sum[ROWS];
    for (uint r = 0; r < ROWS; r++) {
        sum[r] = 0.0f;
        if (row0 + r >= a.n) continue;
        device const float* wr = (device const float*)(w + ulong(row0 + r) * a.row_bytes);
        for (uint j = lane; j < a.k; j += 32) sum[r] += wr[j] * xt[j];
    }
    for (uint r = 0; r < ROWS; r++) {
        float s = simd_sum(sum[r]);
        if (lane == 0 && row0 + r < a.n) gemv_store(dst, acc, a, t, row0 + r, s);
    }
}
