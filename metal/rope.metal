// RoPE on the query and key heads of fused qkv rows, in place.
// Grid: (heads+kv_heads, n_tok) threadgroups of 32 threads; inv_freq holds
// the angle per position of each rotated pair (LongRoPE factors folded in).
#include <metal_stdlib>
#include "args.h"
using namespace metal;

kernel void rope(device float* qkv [[buffer(0)]],
                 device const float* inv_freq [[buffer(1)]],
                 constant RopeArgs& a [[buffer(2)]],
                 uint2 tg [[threadgroup_position_in_grid]],
                 uint lane [[thread_index_in_threadgroup]],
                 uint ntg [[threads_per_threadgroup]]) {
    uint head = tg.x, t = tg.y;
    device float* x = qkv + t * a.row_stride + head * a.head_dim;
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
