// The Metal emulator's runtime: runs one dispatch, threadgroup after
// threadgroup, with every lane of a threadgroup as a fiber (ucontext) on the
// calling thread. Only one lane runs at a time; a lane runs until it reaches
// a threadgroup barrier, a simdgroup operation or its end, then the next
// runnable lane in the chosen order runs. Barriers release when every lane
// of the threadgroup (or simdgroup) has arrived, so the result never
// depends on the host's thread scheduling: a kernel with a missing barrier
// gives the same wrong answer every run (and the forward and reverse lane
// orders expose both directions of a race). Threadgroup memory is bounded
// and filled with 0xFF (a float NaN) before each threadgroup.
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <vector>

#include "metal_stdlib"

namespace emu {
namespace {

enum State { RUNNABLE, WAIT_TG, WAIT_SIMD, DONE };

const size_t kStack = 256 << 10;
const size_t kSlot = 64; // bytes per lane per simdgroup exchange
const size_t kTGMax = 64 << 10;

struct Fiber {
    ucontext_t ctx;
    char *stack = nullptr;
    State state = RUNNABLE;
    size_t tg_off = 0;
    uint parity = 0;
};

struct Sched {
    ucontext_t main;
    std::vector<Fiber> fibers;
    std::vector<LaneInfo> info;
    uint cur = 0;
    alignas(64) unsigned char tgmem[kTGMax];
    size_t tg_limit = 32 << 10;
    std::vector<unsigned char> slots; // [simdgroup][parity][lane][kSlot]
    emu_launch *L = nullptr;
    void (*body)(emu_launch *) = nullptr;
    bool failed = false;
    char err[1024];
};

thread_local Sched *S = nullptr;

void lane_entry() {
    S->body(S->L);
    S->fibers[S->cur].state = DONE;
    swapcontext(&S->fibers[S->cur].ctx, &S->main);
    __builtin_trap(); // a finished lane is never resumed
}

void yield(State st) {
    Fiber &f = S->fibers[S->cur];
    f.state = st;
    swapcontext(&f.ctx, &S->main);
}

bool ensure_fibers(size_t n) {
    while (S->fibers.size() < n) {
        Fiber f;
        void *p = mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return false;
        mprotect(p, 4096, PROT_NONE); // guard page: a stack overflow faults
        f.stack = (char *)p;
        S->fibers.push_back(f);
    }
    return true;
}

uint64_t splitmix(uint64_t &s) {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void failf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(S->err, sizeof S->err, fmt, ap);
    va_end(ap);
    S->failed = true;
}

// run_group runs one threadgroup to completion; false on failure.
bool run_group(uint3 gpos, const std::vector<uint> &order) {
    emu_launch *L = S->L;
    uint3 tgs = {L->tg[0], L->tg[1], L->tg[2]};
    uint n = tgs.x * tgs.y * tgs.z;
    uint nsimd = (n + 31) / 32;
    memset(S->tgmem, 0xFF, S->tg_limit);
    S->slots.assign(size_t(nsimd) * 2 * 32 * kSlot, 0xFF);
    for (uint i = 0; i < n; i++) {
        LaneInfo &li = S->info[i];
        li.thread_position_in_threadgroup = uint3{i % tgs.x, (i / tgs.x) % tgs.y, i / (tgs.x * tgs.y)};
        li.threadgroup_position_in_grid = gpos;
        li.threads_per_threadgroup = tgs;
        li.threadgroups_per_grid = uint3{L->grid[0], L->grid[1], L->grid[2]};
        li.threads_per_grid = li.threadgroups_per_grid * tgs;
        li.thread_position_in_grid = gpos * tgs + li.thread_position_in_threadgroup;
        li.thread_index_in_threadgroup = i;
        li.thread_index_in_simdgroup = i % 32;
        li.simdgroup_index_in_threadgroup = i / 32;
        li.threads_per_simdgroup = (i / 32 == nsimd - 1) ? n - (nsimd - 1) * 32 : 32;
        li.simdgroups_per_threadgroup = nsimd;
        Fiber &f = S->fibers[i];
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = f.stack + 4096;
        f.ctx.uc_stack.ss_size = kStack - 4096;
        f.ctx.uc_link = nullptr;
        makecontext(&f.ctx, lane_entry, 0);
        f.state = RUNNABLE;
        f.tg_off = 0;
        f.parity = 0;
    }
    for (;;) {
        for (uint i : order) {
            if (S->fibers[i].state != RUNNABLE) continue;
            S->cur = i;
            swapcontext(&S->main, &S->fibers[i].ctx);
            if (S->failed) return false;
        }
        uint done = 0, wtg = 0;
        for (uint i = 0; i < n; i++) {
            done += S->fibers[i].state == DONE;
            wtg += S->fibers[i].state == WAIT_TG;
        }
        if (done == n) return true;
        bool released = false;
        for (uint g = 0; g < nsimd; g++) {
            uint lo = g * 32, hi = lo + 32 < n ? lo + 32 : n, ws = 0, ds = 0;
            for (uint i = lo; i < hi; i++) {
                ws += S->fibers[i].state == WAIT_SIMD;
                ds += S->fibers[i].state == DONE;
            }
            if (ws == hi - lo) {
                for (uint i = lo; i < hi; i++) S->fibers[i].state = RUNNABLE;
                released = true;
            } else if (ws > 0 && ws + ds == hi - lo) {
                failf("simdgroup %u: %u lanes wait in a simdgroup operation that %u lanes never reach (they returned)", g, ws, ds);
                return false;
            }
        }
        if (!released && wtg > 0 && wtg + done == n) {
            if (done > 0) {
                failf("threadgroup_barrier reached by %u threads while %u returned without it", wtg, done);
                return false;
            }
            for (uint i = 0; i < n; i++) S->fibers[i].state = RUNNABLE;
            released = true;
        }
        if (!released) {
            uint ws = 0;
            for (uint i = 0; i < n; i++) ws += S->fibers[i].state == WAIT_SIMD;
            failf("deadlock: %u threads wait at a threadgroup barrier, %u in simdgroup operations their simdgroup does not all reach, %u returned (divergent barrier or simd op)", wtg, ws, done);
            return false;
        }
    }
}

} // namespace

const LaneInfo &lane() { return S->info[S->cur]; }

void tg_barrier() { yield(WAIT_TG); }

void simd_barrier() { yield(WAIT_SIMD); }

void *tg_alloc(size_t size, size_t align) {
    Fiber &f = S->fibers[S->cur];
    size_t off = (f.tg_off + align - 1) / align * align;
    if (off + size > S->tg_limit) {
        char msg[160];
        snprintf(msg, sizeof msg, "threadgroup memory: %zu bytes needed, the limit is %zu", off + size, S->tg_limit);
        fail(msg);
    }
    f.tg_off = off + size;
    return S->tgmem + off;
}

void *simd_slot(uint l, size_t size) {
    if (size > kSlot) fail("simdgroup operand larger than 64 bytes");
    const LaneInfo &li = S->info[S->cur];
    Fiber &f = S->fibers[S->cur];
    size_t idx = ((size_t(li.simdgroup_index_in_threadgroup) * 2 + f.parity) * 32 + l) * kSlot;
    return &S->slots[idx];
}

void simd_next() { S->fibers[S->cur].parity ^= 1; }

void fail(const char *msg) {
    failf("%s", msg);
    swapcontext(&S->fibers[S->cur].ctx, &S->main);
    __builtin_trap();
}

int dispatch(emu_launch *L, void (*body)(emu_launch *)) {
    Sched *saved = S;
    static thread_local Sched *mine = nullptr;
    if (!mine) mine = new Sched();
    S = mine;
    S->L = L;
    S->body = body;
    S->failed = false;
    S->err[0] = 0;
    S->tg_limit = L->tg_limit ? L->tg_limit : (32u << 10);
    int rc = 0;
    uint n = L->tg[0] * L->tg[1] * L->tg[2];
    if (S->tg_limit > kTGMax) {
        snprintf(L->err, sizeof L->err, "threadgroup memory limit %zu exceeds the emulator's %zu", S->tg_limit, kTGMax);
        rc = -1;
    } else if (n == 0 || n > 1024) {
        snprintf(L->err, sizeof L->err, "threads per threadgroup %ux%ux%u: want 1..1024", L->tg[0], L->tg[1], L->tg[2]);
        rc = -1;
    } else if (!ensure_fibers(n)) {
        snprintf(L->err, sizeof L->err, "cannot allocate %u fiber stacks", n);
        rc = -1;
    } else {
        S->info.resize(n);
        std::vector<uint> fwd(n), rev(n), shuf(n);
        for (uint i = 0; i < n; i++) fwd[i] = i, rev[i] = n - 1 - i, shuf[i] = i;
        uint64_t seed = L->seed;
        uint64_t g = 0;
        for (uint z = 0; z < L->grid[2] && rc == 0; z++)
            for (uint y = 0; y < L->grid[1] && rc == 0; y++)
                for (uint x = 0; x < L->grid[0] && rc == 0; x++, g++) {
                    const std::vector<uint> *order = &fwd;
                    switch (L->order) {
                    case EMU_ORDER_ALTERNATE: order = (g & 1) ? &rev : &fwd; break;
                    case EMU_ORDER_REVERSE: order = &rev; break;
                    case EMU_ORDER_SHUFFLE:
                        for (uint i = n; i > 1; i--) {
                            uint j = uint(splitmix(seed) % i);
                            uint t = shuf[i - 1]; shuf[i - 1] = shuf[j]; shuf[j] = t;
                        }
                        order = &shuf;
                        break;
                    default: break;
                    }
                    if (!run_group(uint3{x, y, z}, *order)) {
                        snprintf(L->err, sizeof L->err, "threadgroup (%u,%u,%u): %s", x, y, z, S->err);
                        rc = -1;
                    }
                }
    }
    S = saved;
    return rc;
}

} // namespace emu

extern "C" int emu_abi_version(void) { return EMU_ABI_VERSION; }
