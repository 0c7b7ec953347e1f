// RMSNorm: one threadgroup per row, simdgroup sums then a threadgroup
// combine. Threadgroup size: a multiple of 32, at most 1024.
#include <metal_stdlib>
#include "args.h"
using namespace metal;

kernel void rms_norm(device const float* x [[buffer(0)]],
                     device const float* w [[buffer(1)]],
                     device float* dst [[buffer(2)]],
                     constant RMSNormArgs& a [[buffer(3)]],
                     uint row [[threadgroup_position_in_grid]],
                     uint tid [[thread_index_in_threadgroup]],
                     uint ntg [[threads_per_threadgroup]],
                     uint sg [[simdgroup_index_in_threadgroup]],
                     uint lane [[thread_index_in_simdgroup]]) {
    threadgroup float partial[32];
    device const float* xr = x + row * a.x_stride;
    device float* dr = dst + row * a.dst_stride;
    float s = 0.0f;
    for (uint i = tid; i < a.n; i += ntg) s += xr[i] * xr[i];
    s = simd_sum(s);
    if (lane == 0) partial[sg] = s;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    float total = 0.0f;
    uint nsg = (ntg + 31) / 32;
    for (uint i = 0; i < nsg; i++) total += partial[i];
    float r = rsqrt(total / float(a.n) + a.eps);
    for (uint i = tid; i < a.n; i += ntg) dr[i] = xr[i] * r * w[i];
}
