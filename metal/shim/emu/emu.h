/* ABI between the Go side of the Metal emulator (engine/gpu/emu) and the
 * shared library it builds from the .metal sources: one launcher per kernel,
 * `int emu_k_<kernel>(emu_launch*)`, returning 0 or -1 with err set. */
#ifndef PHI4MAC_EMU_H
#define PHI4MAC_EMU_H

#define EMU_ABI_VERSION 1
#define EMU_MAX_BUFFERS 31
#define EMU_MAX_TG_ARGS 8

typedef struct emu_launch {
    void *buf[EMU_MAX_BUFFERS];           /* [[buffer(i)]], offset applied */
    unsigned long long buf_len[EMU_MAX_BUFFERS];
    unsigned grid[3];                      /* threadgroups per grid */
    unsigned tg[3];                        /* threads per threadgroup */
    unsigned tg_len[EMU_MAX_TG_ARGS];      /* bytes of [[threadgroup(i)]] */
    unsigned tg_limit;                     /* threadgroup memory bound, bytes */
    int order;                             /* lane order, see EMU_ORDER_* */
    unsigned long long seed;               /* for EMU_ORDER_SHUFFLE */
    char err[1024];
} emu_launch;

/* Lane orders: lanes run one at a time, each until it blocks at a barrier
 * or a simdgroup operation (or returns), in this order. */
#define EMU_ORDER_ALTERNATE 0 /* forward in even threadgroups, reverse in odd */
#define EMU_ORDER_FORWARD 1
#define EMU_ORDER_REVERSE 2
#define EMU_ORDER_SHUFFLE 3

typedef int (*emu_launch_fn)(emu_launch *);

#endif
