// Package emu is a gpu.Device that runs phi4mac's .metal kernels on the
// CPU, so the Metal backend's host logic and its kernels are tested on
// Linux without a Mac.
//
// How it works: a small generator (gen.go) parses each kernel's signature
// and [[buffer(n)]]/built-in attributes, rewrites kernel-scope threadgroup
// arrays into a per-threadgroup arena, and emits one C launcher per kernel;
// clang++ (>= 15) compiles every .metal file as C++17 against a shim
// (metal/shim/emu: half = _Float16, vectors = ext_vector_type, metal::
// math, barriers, simd_* and simdgroup_matrix) into one shared library,
// cached under os.UserCacheDir() by a hash of the sources, the shim, the
// generator and the compiler, and loaded with dlopen.
//
// Execution is faithful rather than fast: threadgroups run one at a time;
// each lane is a fiber (ucontext, one OS thread), simdgroups are 32 lanes
// wide, threadgroup memory is bounded (32 KiB), poisoned with NaN bytes
// before each threadgroup, and lanes switch only at barriers and simdgroup
// operations, in a chosen order (forward, reverse, alternating per
// threadgroup or shuffled). So a missing barrier or a divergent barrier
// gives a deterministic failure instead of a flaky one, and a simdgroup
// operation that not every lane reaches is reported as an error. Buffers
// from Alloc end at a guard page, so a read or write past their end
// faults.
//
// Fibers instead of one thread per lane: the result is the same (lanes are
// serialised either way, to make races deterministic), but a fiber switch
// costs well under a microsecond where a thread hand-off costs several, and
// the emulator must run whole forward passes of the small reference models.
package emu
