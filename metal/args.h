// Argument structs shared by the kernels and the Go host code
// (engine/gpu/args.go mirrors every struct here field for field; a test
// checks the two agree). Only 4-byte scalar fields: the layout is then the
// same in Metal, in C++ and in Go.
#pragma once

// RMSNormArgs: dst[r] = x[r] * w / sqrt(mean(x[r]^2) + eps), one threadgroup per row.
struct RMSNormArgs {
    uint n;          // elements per row
    uint x_stride;   // floats between rows of x
    uint dst_stride; // floats between rows of dst
    float eps;
};

// GemvArgs: s = dot(W[r], x[t]); accumulate 0: dst[t][r] = s;
// 1: dst[t][r] += s; 2: dst[t][r] = s and acc[t][r] += s (the product and
// the residual add it feeds, in one pass).
struct GemvArgs {
    uint k;          // input features (row length of W)
    uint n;          // output features (rows of W)
    uint row_bytes;  // bytes of one row of W
    uint n_tok;      // rows of x
    uint x_stride;   // floats between rows of x
    uint dst_stride; // floats between rows of dst
    uint accumulate; // 0, 1 or 2, see above
    uint acc_stride; // floats between rows of acc (accumulate 2)
};

// GemmArgs: the same for a batch of tokens (prefill).
struct GemmArgs {
    uint k;
    uint n;
    uint row_bytes;
    uint n_tok;
    uint x_stride;
    uint dst_stride;
    uint accumulate;
    uint acc_stride;
};

// RopeArgs: rotates q and k heads in place in the fused qkv rows.
struct RopeArgs {
    uint n_tok;
    uint n_heads;    // query heads + key heads (the rotated ones)
    uint head_dim;
    uint rot_half;   // rotated pairs per head (rot_dim / 2)
    uint row_stride; // floats between rows of qkv
    uint pos0;       // position of row 0
    uint mode;       // 0: NEOX (i, i+rot_half), 1: NORM (2i, 2i+1)
    float scale;     // multiplies cos and sin (LongRoPE attention factor)
};

// EmbedArgs: dst[t] = dequantised row ids[t] of the table.
struct EmbedArgs {
    uint k;          // row length
    uint row_bytes;
    uint n_tok;
    uint dst_stride;
    uint n_rows;     // rows of the table (ids past it are clamped by the host)
};

// ElementwiseArgs: silu_mul and add.
struct ElementwiseArgs {
    uint n;          // elements per row of dst
    uint n_tok;
    uint src_stride; // floats between rows of the source
    uint dst_stride; // floats between rows of dst
};

// KVAppendArgs: copies the key and value heads of the qkv rows into the
// F16 cache of one layer at positions pos0..pos0+n_tok-1.
struct KVAppendArgs {
    uint n_tok;
    uint n_heads;    // query heads (k starts after them in a qkv row)
    uint n_kv_heads;
    uint head_dim;
    uint row_stride; // floats between rows of qkv
    uint ctx;        // positions per head in the cache
    uint pos0;
};

// AttnArgs: causal grouped-query attention of the query heads in the qkv
// rows over the cache, split over the sequence (flash-decoding).
struct AttnArgs {
    uint n_tok;
    uint n_heads;
    uint n_kv_heads;
    uint head_dim;
    uint q_stride;   // floats between rows of qkv
    uint dst_stride; // floats between rows of dst
    uint ctx;        // positions per head in the cache
    uint pos0;       // position of query row 0
    uint chunk;      // positions per split
    uint n_split;    // splits per (token, head)
    float scale;     // 1/sqrt(head_dim)
};

// ArgmaxArgs: index of the largest value of each row (lowest on ties).
struct ArgmaxArgs {
    uint n;
    uint n_rows;
    uint stride;
};
