// Argmax of each row (greedy sampling on the GPU): one threadgroup per row,
// strided scan, simdgroup then threadgroup reduction; ties go to the
// lowest index. Threadgroup size: a multiple of 32, at most 1024.
#include <metal_stdlib>
#include "args.h"
using namespace metal;

kernel void argmax(device const float* x [[buffer(0)]],
                   device uint* out [[buffer(1)]],
                   constant ArgmaxArgs& a [[buffer(2)]],
                   uint row [[threadgroup_position_in_grid]],
                   uint tid [[thread_index_in_threadgroup]],
                   uint ntg [[threads_per_threadgroup]],
                   uint sg [[simdgroup_index_in_threadgroup]],
                   uint lane [[thread_index_in_simdgroup]]) {
    threadgroup float best_v[32];
    threadgroup uint best_i[32];
    device const float* xr = x + row * a.stride;
    float bv = -INFINITY;
    uint bi = 0xffffffffu;
    for (uint i = tid; i < a.n; i += ntg) {
        float v = xr[i];
        if (v > bv) {
            bv = v;
            bi = i;
        }
    }
    float mv = simd_max(bv);
    uint mi = simd_min(bv == mv ? bi : 0xffffffffu);
    if (lane == 0) {
        best_v[sg] = mv;
        best_i[sg] = mi;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (tid == 0) {
        float v = best_v[0];
        uint idx = best_i[0];
        for (uint s = 1; s < (ntg + 31) / 32; s++) {
            if (best_v[s] > v || (best_v[s] == v && best_i[s] < idx)) {
                v = best_v[s];
                idx = best_i[s];
            }
        }
        out[row] = idx == 0xffffffffu ? 0u : idx;
    }
}
