//go:build !darwin && cgo

package emu

/*
#cgo CFLAGS: -I${SRCDIR}/../../../metal/shim/emu
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include "emu.h"

static void* emu_open(const char* path, char** err) {
	void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) *err = dlerror();
	return h;
}
static int emu_call(void* fn, emu_launch* L) { return ((emu_launch_fn)fn)(L); }
static int emu_abi(void* fn) { return ((int (*)(void))fn)(); }
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"github.com/phi4mac/phi4mac/engine/gpu"
)

// Order is the order in which the lanes of a threadgroup take turns.
type Order int

// Lane orders.
const (
	OrderAlternate Order = C.EMU_ORDER_ALTERNATE // forward in even threadgroups, reverse in odd ones
	OrderForward   Order = C.EMU_ORDER_FORWARD
	OrderReverse   Order = C.EMU_ORDER_REVERSE
	OrderShuffle   Order = C.EMU_ORDER_SHUFFLE // a seeded random permutation per threadgroup
)

// Options configure the emulator.
type Options struct {
	CacheDir          string // where built libraries are cached; "" = os.UserCacheDir()/phi4mac/emu
	Order             Order
	Seed              uint64 // for OrderShuffle
	ThreadgroupMemory int    // bytes; 0 = 32 KiB (Apple GPUs)
	// Extra holds more .metal sources by file name, compiled with the
	// embedded ones (for kernels that exist only in tests).
	Extra map[string]string
}

// Device runs kernels on the CPU. It is safe for concurrent use (dispatches
// are serialised).
type Device struct {
	lib    *Library
	handle unsafe.Pointer
	opts   Options
	mu     sync.Mutex
	fns    map[string]unsafe.Pointer
	launch *C.emu_launch
	closed bool
}

var _ gpu.Device = (*Device)(nil)

// New builds (or loads from the cache) the kernel library and returns a
// Device over it.
func New(ctx context.Context, opts Options) (*Device, error) {
	if opts.ThreadgroupMemory == 0 {
		opts.ThreadgroupMemory = 32 << 10
	}
	if opts.ThreadgroupMemory < 0 || opts.ThreadgroupMemory > 64<<10 {
		return nil, fmt.Errorf("emulator: threadgroup memory %d bytes: want 1..65536", opts.ThreadgroupMemory)
	}
	lib, err := BuildLibrary(ctx, opts.CacheDir, opts.Extra)
	if err != nil {
		return nil, err
	}
	cpath := C.CString(lib.Path)
	defer C.free(unsafe.Pointer(cpath))
	var cerr *C.char
	h := C.emu_open(cpath, &cerr)
	if h == nil {
		return nil, fmt.Errorf("emulator: dlopen %s: %s", lib.Path, C.GoString(cerr))
	}
	d := &Device{lib: lib, handle: h, opts: opts, fns: map[string]unsafe.Pointer{}}
	abi, err := d.sym("emu_abi_version")
	if err != nil {
		C.dlclose(h)
		return nil, err
	}
	if v := C.emu_abi(abi); v != C.EMU_ABI_VERSION {
		C.dlclose(h)
		return nil, fmt.Errorf("emulator: %s has ABI %d, want %d", lib.Path, v, C.EMU_ABI_VERSION)
	}
	d.launch = (*C.emu_launch)(C.calloc(1, C.sizeof_emu_launch))
	return d, nil
}

func (d *Device) sym(name string) (unsafe.Pointer, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	p := C.dlsym(d.handle, cname)
	if p == nil {
		return nil, fmt.Errorf("emulator: symbol %s missing from %s", name, d.lib.Path)
	}
	return p, nil
}

// Name implements gpu.Device.
func (d *Device) Name() string { return "emulator (CPU, clang++)" }

// Library returns the kernels the device was built with.
func (d *Device) Library() *Library { return d.lib }

// Limits implements gpu.Device with Apple GPU values.
func (d *Device) Limits() gpu.Limits {
	return gpu.Limits{
		MaxThreadsPerThreadgroup: 1024,
		ThreadgroupMemory:        d.opts.ThreadgroupMemory,
		SIMDWidth:                32,
		MaxBufferLength:          1 << 40,
	}
}

// buffer is memory shared by the host and the emulated kernels: an
// anonymous mapping whose data ends at a guard page (Alloc), or wrapped
// host memory (Wrap).
type buffer struct {
	data    []byte
	mapping []byte // whole mapping, nil for wrapped memory
}

func (b *buffer) Bytes() []byte { return b.data }

func (b *buffer) Release() error {
	if b.mapping == nil {
		b.data = nil
		return nil
	}
	m := b.mapping
	b.mapping, b.data = nil, nil
	return syscall.Munmap(m)
}

// Alloc implements gpu.Device. The data ends 16-byte aligned right before
// a PROT_NONE page.
func (d *Device) Alloc(size int) (gpu.Buffer, error) {
	if size < 0 || int64(size) > d.Limits().MaxBufferLength {
		return nil, fmt.Errorf("emulator: alloc %d bytes: bad size", size)
	}
	page := syscall.Getpagesize()
	span := (size + 15) &^ 15
	if span == 0 {
		span = 16
	}
	body := (span + page - 1) / page * page
	m, err := syscall.Mmap(-1, 0, body+page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("emulator: alloc %d bytes: %w", size, err)
	}
	if err := syscall.Mprotect(m[body:], syscall.PROT_NONE); err != nil {
		syscall.Munmap(m)
		return nil, fmt.Errorf("emulator: guard page: %w", err)
	}
	start := body - span
	return &buffer{data: m[start : start+size : start+size], mapping: m}, nil
}

// Wrap implements gpu.Device without copying.
func (d *Device) Wrap(mem []byte) (gpu.Buffer, error) {
	if len(mem) == 0 {
		return nil, errors.New("emulator: wrap: empty memory")
	}
	return &buffer{data: mem}, nil
}

// Run implements gpu.Device.
func (d *Device) Run(ctx context.Context, ds []gpu.Dispatch) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("emulator: device closed")
	}
	for i := range ds {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := d.run(&ds[i]); err != nil {
			return fmt.Errorf("dispatch %d (%s): %w", i, ds[i].Kernel, err)
		}
	}
	return nil
}

func (d *Device) run(ds *gpu.Dispatch) error {
	k, ok := d.lib.Kernels[ds.Kernel]
	if !ok {
		return gpu.ErrUnknownKernel
	}
	fn, ok := d.fns[ds.Kernel]
	if !ok {
		p, err := d.sym("emu_k_" + ds.Kernel)
		if err != nil {
			return err
		}
		d.fns[ds.Kernel] = p
		fn = p
	}
	threads := 1
	for i := 0; i < 3; i++ {
		if ds.Groups[i] <= 0 || ds.Threads[i] <= 0 || ds.Groups[i] > 1<<24 {
			return fmt.Errorf("bad grid %v x %v", ds.Groups, ds.Threads)
		}
		threads *= ds.Threads[i]
	}
	if threads > 1024 {
		return fmt.Errorf("%d threads per threadgroup: the limit is 1024", threads)
	}
	if len(ds.Buffers) > C.EMU_MAX_BUFFERS || len(ds.ThreadgroupMem) > C.EMU_MAX_TG_ARGS {
		return errors.New("too many bindings")
	}
	L := d.launch
	C.memset(unsafe.Pointer(L), 0, C.sizeof_emu_launch)
	var scratch []unsafe.Pointer
	defer func() {
		for _, p := range scratch {
			C.free(p)
		}
	}()
	var keep []gpu.Buffer
	for _, p := range k.Params {
		switch p.Attr {
		case "buffer":
			if p.Index >= len(ds.Buffers) {
				return fmt.Errorf("[[buffer(%d)]] (%s) is not bound", p.Index, p.Name)
			}
			b := ds.Buffers[p.Index]
			switch {
			case b.Bytes != nil:
				c := C.malloc(C.size_t(len(b.Bytes) + 16))
				scratch = append(scratch, c)
				C.memcpy(c, unsafe.Pointer(&b.Bytes[0]), C.size_t(len(b.Bytes)))
				L.buf[p.Index] = c
				L.buf_len[p.Index] = C.ulonglong(len(b.Bytes))
			case b.Buf != nil:
				mem := b.Buf.Bytes()
				if b.Offset < 0 || b.Offset >= len(mem) {
					return fmt.Errorf("[[buffer(%d)]] (%s): offset %d outside %d bytes", p.Index, p.Name, b.Offset, len(mem))
				}
				L.buf[p.Index] = unsafe.Pointer(&mem[b.Offset])
				L.buf_len[p.Index] = C.ulonglong(len(mem) - b.Offset)
				keep = append(keep, b.Buf)
			default:
				return fmt.Errorf("[[buffer(%d)]] (%s) is not bound", p.Index, p.Name)
			}
		case "threadgroup":
			if p.Index >= len(ds.ThreadgroupMem) || ds.ThreadgroupMem[p.Index] <= 0 {
				return fmt.Errorf("[[threadgroup(%d)]] (%s) has no size", p.Index, p.Name)
			}
			L.tg_len[p.Index] = C.uint(ds.ThreadgroupMem[p.Index])
		}
	}
	for i := 0; i < 3; i++ {
		L.grid[i] = C.uint(ds.Groups[i])
		L.tg[i] = C.uint(ds.Threads[i])
	}
	L.tg_limit = C.uint(d.opts.ThreadgroupMemory)
	L.order = C.int(d.opts.Order)
	L.seed = C.ulonglong(d.opts.Seed)
	rc := C.emu_call(fn, L)
	runtime.KeepAlive(keep)
	if rc != 0 {
		return errors.New(C.GoString(&L.err[0]))
	}
	return nil
}

// Close implements gpu.Device. The library stays loaded (dlclose of code
// that may still be referenced is not worth the risk in a test tool).
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.closed = true
		C.free(unsafe.Pointer(d.launch))
	}
	return nil
}
