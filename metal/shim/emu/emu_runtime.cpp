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

#include <deque>
#include <mutex>
#include <vector>

#include "metal_stdlib"

namespace emu {
namespace {

enum State { RUNNABLE, WAIT_TG, WAIT_SIMD, DONE };

const size_t kStack = 256 << 10;
const size_t kSlot = 64; // bytes per lane per simdgroup exchange
const size_t kTGMax = 64 << 10;

// Context switches: hand-written on x86-64 (the callee-saved registers; no
// system call, and the kernels never change the MXCSR or x87 modes),
// ucontext elsewhere.
#if defined(__x86_64__)
#define EMU_FAST_SWITCH 1
extern "C" void emu_switch(void **save_sp, void *new_sp);
asm(R"(
.text
.globl emu_switch
.type emu_switch,@function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
.size emu_switch,.-emu_switch
.section .note.GNU-stack,"",@progbits
.text
)");
struct Context {
    void *sp = nullptr;
};
#else
struct Context {
    ucontext_t uc;
};
#endif

struct Fiber {
    Context ctx;
    char *stack = nullptr;
    State state = RUNNABLE;
    size_t tg_off = 0;
    uint parity = 0;
    size_t uop_next = 0; // index of this lane's next simdgroup-uniform operation
};

// A simdgroup-uniform operation (a simdgroup_matrix product): the first
// lane to reach it computes it; the others check they pass the same
// operands and take the result.
struct UniformOp {
    std::vector<unsigned char> in, out;
    uint seen = 0;
};

struct Sched {
    Context main;
    std::vector<Fiber> fibers;
    std::vector<LaneInfo> info;
    uint cur = 0;
    alignas(64) unsigned char tgmem[kTGMax];
    size_t tg_limit = 32 << 10;
    size_t tg_used = 0; // high-water mark of the current threadgroup
    std::vector<unsigned char> slots; // [simdgroup][parity][lane][kSlot]
    std::vector<std::deque<UniformOp>> uops; // per simdgroup, from index uop_base
    std::vector<size_t> uop_base;
    emu_launch *L = nullptr;
    void (*body)(emu_launch *) = nullptr;
    bool failed = false;
    char err[1024];
};

// One dispatch runs at a time in the whole process (dispatch() holds
// dispatch_mu), so the scheduler is a plain global: no TLS lookups on the
// hot path.
Sched *S = nullptr;
std::mutex dispatch_mu;

void switch_to(Context *save, Context *to) {
#ifdef EMU_FAST_SWITCH
    emu_switch(&save->sp, to->sp);
#else
    swapcontext(&save->uc, &to->uc);
#endif
}

[[noreturn]] void lane_entry() {
    S->body(S->L);
    S->fibers[S->cur].state = DONE;
    switch_to(&S->fibers[S->cur].ctx, &S->main);
    __builtin_trap(); // a finished lane is never resumed
}

// start_lane prepares fiber f to run lane_entry on its own stack.
void start_lane(Fiber &f) {
#ifdef EMU_FAST_SWITCH
    // The frame emu_switch pops: six callee-saved registers, then the
    // return address (lane_entry), leaving the stack 16-byte aligned minus
    // 8 at entry, as after a call.
    uintptr_t top = (uintptr_t)(f.stack + kStack) & ~uintptr_t(15);
    uint64_t *sp = (uint64_t *)(top - 8); // alignment slot: rsp % 16 == 8 at lane_entry
    *--sp = (uint64_t)(uintptr_t)&lane_entry;
    for (int i = 0; i < 6; i++) *--sp = 0;
    f.ctx.sp = sp;
#else
    getcontext(&f.ctx.uc);
    f.ctx.uc.uc_stack.ss_sp = f.stack + 4096;
    f.ctx.uc.uc_stack.ss_size = kStack - 4096;
    f.ctx.uc.uc_link = nullptr;
    makecontext(&f.ctx.uc, (void (*)())lane_entry, 0);
#endif
}

void yield(State st) {
    Fiber &f = S->fibers[S->cur];
    f.state = st;
    switch_to(&f.ctx, &S->main);
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
    // Poison what the previous threadgroup used (all of it the first time).
    memset(S->tgmem, 0xFF, S->tg_used ? S->tg_used : S->tg_limit);
    S->tg_used = 0;
    S->slots.assign(size_t(nsimd) * 2 * 32 * kSlot, 0xFF);
    S->uops.assign(nsimd, std::deque<UniformOp>());
    S->uop_base.assign(nsimd, 0);
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
        start_lane(f);
        f.state = RUNNABLE;
        f.tg_off = 0;
        f.parity = 0;
        f.uop_next = 0;
    }
    for (;;) {
        for (uint i : order) {
            if (S->fibers[i].state != RUNNABLE) continue;
            S->cur = i;
            switch_to(&S->main, &S->fibers[i].ctx);
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
    if (f.tg_off > S->tg_used) S->tg_used = f.tg_off;
    return S->tgmem + off;
}

unsigned char *simd_slots() {
    const LaneInfo &li = S->info[S->cur];
    Fiber &f = S->fibers[S->cur];
    return &S->slots[(size_t(li.simdgroup_index_in_threadgroup) * 2 + f.parity) * 32 * kSlot];
}

void simd_next() { S->fibers[S->cur].parity ^= 1; }

bool uniform_begin(const void *in, size_t n, void *out, size_t m) {
    const LaneInfo &li = S->info[S->cur];
    uint g = li.simdgroup_index_in_threadgroup;
    Fiber &f = S->fibers[S->cur];
    size_t k = f.uop_next++;
    std::deque<UniformOp> &q = S->uops[g];
    size_t base = S->uop_base[g];
    if (k < base) fail("emulator: simdgroup-uniform operation out of order");
    if (k - base < q.size()) {
        UniformOp &e = q[k - base];
        if (e.in.size() != n || memcmp(e.in.data(), in, n) != 0)
            fail("simdgroup_matrix operation with operands that differ between lanes of one simdgroup");
        if (e.out.size() != m) fail("emulator: simdgroup-uniform result size mismatch");
        memcpy(out, e.out.data(), m);
        e.seen++;
        while (!q.empty() && q.front().seen >= li.threads_per_simdgroup) {
            q.pop_front();
            S->uop_base[g]++;
        }
        return true;
    }
    if (k - base != q.size()) fail("emulator: simdgroup-uniform operation skipped");
    q.emplace_back();
    q.back().in.assign((const unsigned char *)in, (const unsigned char *)in + n);
    return false;
}

void uniform_end(const void *out, size_t m) {
    uint g = S->info[S->cur].simdgroup_index_in_threadgroup;
    std::deque<UniformOp> &q = S->uops[g];
    UniformOp &e = q.back();
    e.out.assign((const unsigned char *)out, (const unsigned char *)out + m);
    e.seen = 1;
    if (S->info[S->cur].threads_per_simdgroup == 1) {
        q.pop_back();
        S->uop_base[g]++;
    }
}

void fail(const char *msg) {
    failf("%s", msg);
    switch_to(&S->fibers[S->cur].ctx, &S->main);
    __builtin_trap();
}

int dispatch(emu_launch *L, void (*body)(emu_launch *)) {
    std::lock_guard<std::mutex> lock(dispatch_mu);
    static Sched *mine = new Sched();
    S = mine;
    S->L = L;
    S->body = body;
    S->failed = false;
    S->tg_used = 0;
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
    S = nullptr;
    return rc;
}

} // namespace emu

extern "C" int emu_abi_version(void) { return EMU_ABI_VERSION; }
