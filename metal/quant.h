// Block formats of the quantized weights (GGML layouts) and their fused
// dequantise-and-dot helpers. Every helper reads one block at p (any byte
// alignment that is a multiple of 2) and the matching QK floats of x.
#pragma once

// CVT converts between vector types of different element types
// (Metal: a constructor; C++/OpenCL: clang's convertvector builtin).
#ifdef __METAL_VERSION__
#define CVT(T, v) T(v)
#else
#define CVT(T, v) __builtin_convertvector(v, T)
#endif

#define QK8_0 32
#define QK4_0 32
#define QK5_0 32
#define QK_K 256
#define BYTES_Q8_0 34
#define BYTES_Q4_0 18
#define BYTES_Q5_0 22
#define BYTES_Q4_K 144
#define BYTES_Q6_K 210

inline float load_half(device const uchar* p) {
    return float(*(device const half*)(p));
}

// Q8_0: half d; int8 q[32]; x = d*q.
inline float dot_q8_0(device const uchar* p, device const float* x) {
    float d = load_half(p);
    device const char* q = (device const char*)(p + 2);
    float s = 0.0f;
    for (int i = 0; i < 32; i++) s += float(q[i]) * x[i];
    return d * s;
}

inline void deq_q8_0(device const uchar* p, device float* y) {
    float d = load_half(p);
    device const char* q = (device const char*)(p + 2);
    for (int i = 0; i < 32; i++) y[i] = d * float(q[i]);
}

// Q4_0: half d; uint8 q[16]; x[i] = d*((q[i]&15)-8), x[i+16] = d*((q[i]>>4)-8).
inline float dot_q4_0(device const uchar* p, device const float* x) {
    float d = load_half(p);
    device const uchar* q = p + 2;
    float s = 0.0f;
    for (int i = 0; i < 16; i++) {
        s += float(int(q[i] & 15) - 8) * x[i];
        s += float(int(q[i] >> 4) - 8) * x[i + 16];
    }
    return d * s;
}

inline void deq_q4_0(device const uchar* p, device float* y) {
    float d = load_half(p);
    device const uchar* q = p + 2;
    for (int i = 0; i < 16; i++) {
        y[i] = d * float(int(q[i] & 15) - 8);
        y[i + 16] = d * float(int(q[i] >> 4) - 8);
    }
}

// Q5_0: half d; uint8 qh[4] (the fifth bits); uint8 q[16].
inline uint q5_0_high(device const uchar* p) {
    return uint(p[2]) | (uint(p[3]) << 8) | (uint(p[4]) << 16) | (uint(p[5]) << 24);
}

inline float dot_q5_0(device const uchar* p, device const float* x) {
    float d = load_half(p);
    uint qh = q5_0_high(p);
    device const uchar* q = p + 6;
    float s = 0.0f;
    for (int i = 0; i < 16; i++) {
        int h0 = int(((qh >> i) << 4) & 16u);
        int h1 = int((qh >> (i + 12)) & 16u);
        s += float((int(q[i] & 15) | h0) - 16) * x[i];
        s += float((int(q[i] >> 4) | h1) - 16) * x[i + 16];
    }
    return d * s;
}

inline void deq_q5_0(device const uchar* p, device float* y) {
    float d = load_half(p);
    uint qh = q5_0_high(p);
    device const uchar* q = p + 6;
    for (int i = 0; i < 16; i++) {
        int h0 = int(((qh >> i) << 4) & 16u);
        int h1 = int((qh >> (i + 12)) & 16u);
        y[i] = d * float((int(q[i] & 15) | h0) - 16);
        y[i + 16] = d * float((int(q[i] >> 4) | h1) - 16);
    }
}

// Q4_K: half d; half dmin; uint8 scales[12] (6-bit scale and min of 8
// sub-blocks of 32); uint8 q[128].
inline void q4_k_scale_min(int j, device const uchar* s, thread int& sc, thread int& m) {
    if (j < 4) {
        sc = int(s[j] & 63);
        m = int(s[j + 4] & 63);
    } else {
        sc = int((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4));
        m = int((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

// Sub-block j (32 values, 0..7) of a Q4_K block against x[0..32).
inline float dot_q4_k_sub(device const uchar* p, uint j, device const float* x) {
    int sc, m;
    q4_k_scale_min(int(j), p + 4, sc, m);
    device const uchar* q = p + 16 + 32 * (j / 2);
    uint shift = (j % 2) * 4;
    float s = 0.0f, sx = 0.0f;
    for (int l = 0; l < 32; l++) {
        s += float((q[l] >> shift) & 15u) * x[l];
        sx += x[l];
    }
    return load_half(p) * float(sc) * s - load_half(p + 2) * float(m) * sx;
}

inline void deq_q4_k(device const uchar* p, device float* y) {
    float d = load_half(p);
    float dmin = load_half(p + 2);
    device const uchar* sc = p + 4;
    device const uchar* q = p + 16;
    for (int j = 0; j < 4; j++) {
        int s1, m1, s2, m2;
        q4_k_scale_min(2 * j, sc, s1, m1);
        q4_k_scale_min(2 * j + 1, sc, s2, m2);
        for (int l = 0; l < 32; l++) {
            y[64 * j + l] = d * float(s1) * float(q[32 * j + l] & 15) - dmin * float(m1);
            y[64 * j + 32 + l] = d * float(s2) * float(q[32 * j + l] >> 4) - dmin * float(m2);
        }
    }
}

// Q6_K: uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d.
inline float q6_k_value(device const uchar* p, int i) {
    // i in [0, 256): half h = i/128, within it l = i%32, quarter = (i%128)/32.
    int h = i / 128, r = i % 128, quarter = r / 32, l = r % 32;
    device const uchar* ql = p + 64 * h;
    device const uchar* qh = p + 128 + 32 * h;
    device const char* sc = (device const char*)(p + 192) + 8 * h;
    int lo = (quarter & 1) ? int(ql[l + 32]) : int(ql[l]);
    lo = (quarter >= 2) ? (lo >> 4) : (lo & 15);
    int hi = (int(qh[l]) >> (2 * quarter)) & 3;
    int q = (lo | (hi << 4)) - 32;
    return float(sc[l / 16 + 2 * quarter]) * float(q);
}

// Sub-block c (32 values, 0..7) of a Q6_K block against x[0..32): one
// quarter of one 128-value half, all under two 16-value scales.
inline float dot_q6_k_sub(device const uchar* p, uint c, device const float* x) {
    uint h = c / 4, quarter = c % 4;
    device const uchar* ql = p + 64 * h + ((quarter & 1u) ? 32u : 0u);
    device const uchar* qh = p + 128 + 32 * h;
    device const char* sc = (device const char*)(p + 192) + 8 * h + 2 * quarter;
    uint shift = quarter >= 2 ? 4u : 0u;
    float s0 = 0.0f, s1 = 0.0f;
    for (int l = 0; l < 16; l++) {
        int q = int(((ql[l] >> shift) & 15u) | (((uint(qh[l]) >> (2 * quarter)) & 3u) << 4)) - 32;
        s0 += float(q) * x[l];
    }
    for (int l = 16; l < 32; l++) {
        int q = int(((ql[l] >> shift) & 15u) | (((uint(qh[l]) >> (2 * quarter)) & 3u) << 4)) - 32;
        s1 += float(q) * x[l];
    }
    return load_half(p + 208) * (float(sc[0]) * s0 + float(sc[1]) * s1);
}

inline void deq_q6_k(device const uchar* p, device float* y) {
    float d = load_half(p + 208);
    for (int i = 0; i < 256; i++) y[i] = d * q6_k_value(p, i);
}

// Single-element dequantisation (element k of a row), for kernels that
// stage tiles of weights in threadgroup memory.
inline float elem_f32(device const uchar* row, uint k) { return ((device const float*)row)[k]; }
inline float elem_f16(device const uchar* row, uint k) { return float(((device const half*)row)[k]); }

inline float elem_q8_0(device const uchar* row, uint k) {
    device const uchar* p = row + (k / 32) * BYTES_Q8_0;
    return load_half(p) * float(((device const char*)(p + 2))[k % 32]);
}

inline float elem_q4_0(device const uchar* row, uint k) {
    device const uchar* p = row + (k / 32) * BYTES_Q4_0;
    uint i = k % 32;
    uint q = i < 16 ? (p[2 + i] & 15u) : (p[2 + i - 16] >> 4);
    return load_half(p) * float(int(q) - 8);
}

inline float elem_q5_0(device const uchar* row, uint k) {
    device const uchar* p = row + (k / 32) * BYTES_Q5_0;
    uint i = k % 32;
    uint qh = q5_0_high(p);
    uint lo = i < 16 ? (p[6 + i] & 15u) : (p[6 + i - 16] >> 4);
    uint hi = (qh >> i) & 1u;
    return load_half(p) * float(int(lo | (hi << 4)) - 16);
}

inline float elem_q4_k(device const uchar* row, uint k) {
    device const uchar* p = row + (k / 256) * BYTES_Q4_K;
    uint i = k % 256;
    uint j = i / 64, r = i % 64;
    int sc, m;
    q4_k_scale_min(int(2 * j + r / 32), p + 4, sc, m);
    uint qb = p[16 + 32 * j + r % 32];
    uint q = r < 32 ? (qb & 15u) : (qb >> 4);
    return load_half(p) * float(sc) * float(q) - load_half(p + 2) * float(m);
}

inline float elem_q6_k(device const uchar* row, uint k) {
    device const uchar* p = row + (k / 256) * BYTES_Q6_K;
    return load_half(p + 208) * q6_k_value(p, int(k % 256));
}
