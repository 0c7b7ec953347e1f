//go:build darwin && cgo

package metal

/*
#cgo LDFLAGS: -framework Metal -framework Foundation -framework CoreGraphics -lobjc
#include <stdint.h>
#include <objc/runtime.h>
#include <objc/message.h>

// darwinkit v0.5.0 has no binding for this C function.
void* MTLCreateSystemDefaultDevice(void);

// newNoCopyBuffer sends newBufferWithBytesNoCopy:length:options:deallocator:
// with shared storage (MTLResourceStorageModeShared is 0) and no
// deallocator. It is called from C so that the page-rounded start, which
// may lie outside any Go object, never becomes a Go pointer (the garbage
// collector may throw on a pointer into a free span of its heap).
static void* newNoCopyBuffer(void* dev, uintptr_t start, uintptr_t length) {
	typedef void* (*send)(void*, SEL, void*, unsigned long, unsigned long, void*);
	return ((send)objc_msgSend)(dev, sel_registerName("newBufferWithBytesNoCopy:length:options:deallocator:"),
		(void*)start, (unsigned long)length, 0UL, (void*)0);
}
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"github.com/progrium/darwinkit/macos/foundation"
	mtl "github.com/progrium/darwinkit/macos/metal"
	"github.com/progrium/darwinkit/objc"

	"github.com/phi4mac/phi4mac/engine/gpu"
	kernels "github.com/phi4mac/phi4mac/metal"
)

// Device is an Apple GPU.
type Device struct {
	dev   mtl.DeviceObject
	queue mtl.CommandQueueObject
	libs  map[string]mtl.LibraryObject // by .metal file
	mu    sync.Mutex
	pipes map[string]pipeline
	lim   gpu.Limits
}

// protocolCallsNote: darwinkit v0.5.0's generated methods that take another
// protocol object (setComputePipelineState:, setBuffer:offset:atIndex:,
// newComputePipelineStateWithFunction:error:) pass it through
// objc.WrapAsProtocol, whose type parameter is inferred as the concrete
// *Object struct; it panics ("generic type T should be interface type") on
// the first call. The driver sends those messages with objc.Call, which
// passes any value with a Ptr method as the object pointer.
var (
	selSetPipeline = objc.Sel("setComputePipelineState:")
	selSetBuffer   = objc.Sel("setBuffer:offset:atIndex:")
)

// pipeline is a compiled kernel and its limit, read once (every query is
// an Objective-C call through darwinkit's reflection and libffi).
type pipeline struct {
	obj        mtl.ComputePipelineStateObject
	maxThreads int // maxTotalThreadsPerThreadgroup: register use can put it below the device's 1024
}

// appleGPUFamily7 is MTLGPUFamilyApple7 (M1, A14): the first family with
// simdgroup_matrix, which gemm.metal needs. Every Apple GPU also runs 32
// threads per simdgroup, which the kernels assume (simd_sum over 32 lanes,
// 4 simdgroups in 128 threads); AMD and Intel GPUs in Intel Macs do not.
const appleGPUFamily7 = mtl.GPUFamily(1007)

var _ gpu.Device = (*Device)(nil)

// New opens the system's default Metal device and compiles every kernel.
// A compile failure returns the Metal compiler's message.
func New(ctx context.Context) (d *Device, err error) {
	// newLibraryWithSource's errors are autoreleased objects.
	objc.WithAutoreleasePool(func() { d, err = open(ctx) })
	return d, err
}

func open(ctx context.Context) (*Device, error) {
	p := C.MTLCreateSystemDefaultDevice()
	if p == nil {
		return nil, ErrUnavailable
	}
	d := &Device{
		dev:   mtl.DeviceObject{Object: objc.ObjectFrom(unsafe.Pointer(p))},
		libs:  map[string]mtl.LibraryObject{},
		pipes: map[string]pipeline{},
	}
	if !d.dev.SupportsFamily(appleGPUFamily7) {
		// An Intel Mac's AMD or Intel GPU: its SIMD width is not 32 and it
		// has no simdgroup_matrix, so the kernels would compute garbage.
		name := d.dev.Name()
		d.dev.Release()
		return nil, fmt.Errorf("%w: %s is not an Apple GPU of family 7 or newer (M1 or later)", ErrUnavailable, name)
	}
	d.queue = d.dev.NewCommandQueue()
	d.lim = gpu.Limits{
		MaxThreadsPerThreadgroup: int(d.dev.MaxThreadsPerThreadgroup().Width),
		ThreadgroupMemory:        int(d.dev.MaxThreadgroupMemoryLength()),
		SIMDWidth:                32,
		MaxBufferLength:          int64(d.dev.MaxBufferLength()),
		WorkingSet:               int64(d.dev.RecommendedMaxWorkingSetSize()),
	}
	for _, name := range kernels.Sources() {
		if err := ctx.Err(); err != nil {
			d.Close()
			return nil, err
		}
		src, err := kernels.Inlined(name)
		if err != nil {
			d.Close()
			return nil, err
		}
		// The language version is left at its default, the newest the OS
		// supports; the kernels need MSL 2.3 (simdgroup_matrix), which every
		// macOS on Apple Silicon (11+) has, and use nothing newer (no bfloat).
		opts := mtl.NewCompileOptions()
		opts.SetFastMathEnabled(false) // the kernels are checked against float64 references
		var nserr unsafe.Pointer
		lib := d.dev.NewLibraryWithSourceOptionsError(src, opts, unsafe.Pointer(&nserr))
		if lib.Ptr() == nil {
			msg := "unknown error"
			if nserr != nil {
				msg = foundation.ErrorFrom(nserr).LocalizedDescription()
			}
			d.Close()
			return nil, fmt.Errorf("metal: compile %s: %s", name, msg)
		}
		d.libs[name] = lib
	}
	return d, nil
}

// Name implements gpu.Device.
func (d *Device) Name() string { return d.dev.Name() }

// Family returns the newest Apple GPU family the device supports, e.g.
// "Apple9" (M3/M4), "Apple8" (M2), "Apple7" (M1); darwinkit's enum stops
// at Apple7, so newer ones are raw values.
func (d *Device) Family() string {
	for f := 1010; f >= 1007; f-- {
		if d.dev.SupportsFamily(mtl.GPUFamily(f)) {
			return fmt.Sprintf("Apple%d", f-1000)
		}
	}
	return "older than Apple7 (no simdgroup_matrix: unsupported)"
}

// Describe implements gpu.Describer for reports.
func (d *Device) Describe() string {
	return fmt.Sprintf("%s, GPU family %s, working set %.1f GB, max buffer %.1f GB",
		d.dev.Name(), d.Family(), float64(d.lim.WorkingSet)/1e9, float64(d.lim.MaxBufferLength)/1e9)
}

// Limits implements gpu.Device.
func (d *Device) Limits() gpu.Limits { return d.lim }

// Kernels returns the names of all compiled kernels.
func (d *Device) Kernels() []string {
	var names []string
	for _, lib := range d.libs {
		names = append(names, lib.FunctionNames()...)
	}
	return names
}

func (d *Device) pipeline(name string) (pipeline, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.pipes[name]; ok {
		return p, nil
	}
	for file, lib := range d.libs {
		fn := lib.NewFunctionWithName(name)
		if fn.Ptr() == nil {
			continue
		}
		var nserr unsafe.Pointer
		// Not darwinkit's NewComputePipelineStateWithFunctionError: it
		// passes the function through objc.WrapAsProtocol, which panics
		// for anything but a Go interface type (see protocolCallsNote).
		p := objc.Call[mtl.ComputePipelineStateObject](d.dev, objc.Sel("newComputePipelineStateWithFunction:error:"),
			fn, unsafe.Pointer(&nserr))
		fn.Release() // the pipeline keeps what it needs
		if p.Ptr() == nil {
			msg := "unknown error"
			if nserr != nil {
				msg = foundation.ErrorFrom(nserr).LocalizedDescription()
			}
			return pipeline{}, fmt.Errorf("metal: pipeline %s (%s): %s", name, file, msg)
		}
		if w := p.ThreadExecutionWidth(); w != 32 {
			p.Release()
			return pipeline{}, fmt.Errorf("metal: pipeline %s: %d threads per simdgroup; the kernels are written for 32", name, w)
		}
		pl := pipeline{obj: p, maxThreads: int(p.MaxTotalThreadsPerThreadgroup())}
		d.pipes[name] = pl
		return pl, nil
	}
	return pipeline{}, fmt.Errorf("metal: %s: %w", name, gpu.ErrUnknownKernel)
}

// buffer is an MTLBuffer in shared (unified) memory. For wrapped memory,
// the MTLBuffer starts at the page holding mem[0] and off is mem[0]'s
// offset in it.
type buffer struct {
	obj  mtl.BufferObject
	data []byte
	off  int
}

func (b *buffer) Bytes() []byte { return b.data }

func (b *buffer) Release() error {
	if b.obj.Ptr() != nil {
		b.obj.Release()
		b.obj = mtl.BufferObject{}
		b.data = nil
	}
	return nil
}

// Alloc implements gpu.Device.
func (d *Device) Alloc(size int) (gpu.Buffer, error) {
	if size <= 0 {
		size = 16
	}
	if int64(size) > d.lim.MaxBufferLength {
		return nil, fmt.Errorf("metal: alloc %d bytes: the device's buffer limit is %d", size, d.lim.MaxBufferLength)
	}
	obj := d.dev.NewBufferWithLengthOptions(uint(size), mtl.ResourceStorageModeShared)
	if obj.Ptr() == nil {
		return nil, fmt.Errorf("metal: alloc %d bytes failed", size)
	}
	return &buffer{obj: obj, data: unsafe.Slice((*byte)(obj.Contents()), size)}, nil
}

// Wrap implements gpu.Device without copying: Metal needs a page-aligned
// start and length, so the buffer covers the pages around mem (which must
// be mapped, as an mmap of the model file is).
func (d *Device) Wrap(mem []byte) (gpu.Buffer, error) {
	if len(mem) == 0 {
		return nil, errors.New("metal: wrap: empty memory")
	}
	page := uintptr(os.Getpagesize())
	start := uintptr(unsafe.Pointer(&mem[0]))
	base := start &^ (page - 1)
	end := (start + uintptr(len(mem)) + page - 1) &^ (page - 1)
	if int64(end-base) > d.lim.MaxBufferLength {
		return nil, fmt.Errorf("metal: wrap %d bytes: the device's buffer limit is %d", len(mem), d.lim.MaxBufferLength)
	}
	// Through C, not darwinkit: its binding takes the start as an
	// unsafe.Pointer (a bad pointer for Go's collector when mem is on the
	// Go heap, as fused or converted tensors are) and wraps even a nil
	// deallocator in a block. The memory is the caller's to free.
	p := C.newNoCopyBuffer(d.dev.Ptr(), C.uintptr_t(base), C.uintptr_t(end-base))
	obj := mtl.BufferObject{Object: objc.ObjectFrom(p)}
	if obj.Ptr() == nil {
		return nil, fmt.Errorf("metal: newBufferWithBytesNoCopy of %d bytes failed", end-base)
	}
	return &buffer{obj: obj, data: mem, off: int(start - base)}, nil
}

// Run implements gpu.Device: the dispatches go, in order, into command
// buffers of one queue, each with one serial compute encoder, and Run waits
// once for all of them. Every dispatch sees the writes of the earlier ones:
// a serial encoder orders its dispatches, and Metal orders command buffers
// of one queue and tracks the hazards of their (default, tracked) buffers.
//
// More than one command buffer, because encoding through darwinkit costs
// CPU time per call (reflection and libffi, several calls per dispatch):
// with a single buffer the GPU would idle while a whole forward pass is
// encoded. The first buffer is committed after a few dispatches, so the GPU
// starts at once and runs while the CPU encodes the rest.
func (d *Device) Run(ctx context.Context, ds []gpu.Dispatch) error {
	if len(ds) == 0 {
		return nil
	}
	var err error
	objc.WithAutoreleasePool(func() {
		err = d.encode(ctx, ds)
	})
	return err
}

// Dispatches in the first command buffer of a Run, and in each later one.
const (
	firstBatch = 16
	laterBatch = 128
)

func (d *Device) encode(ctx context.Context, ds []gpu.Dispatch) error {
	var (
		cbs []mtl.CommandBufferObject // committed, in order
		err error
	)
	for start := 0; start < len(ds); {
		if err = ctx.Err(); err != nil {
			break
		}
		end := min(start+laterBatch, len(ds))
		if start == 0 {
			end = min(firstBatch, len(ds))
		}
		cb := d.queue.CommandBuffer()
		enc := cb.ComputeCommandEncoder()
		for i := start; i < end; i++ {
			if err = d.encodeOne(enc, &ds[i]); err != nil {
				err = fmt.Errorf("dispatch %d (%s): %w", i, ds[i].Kernel, err)
				break
			}
		}
		// darwinkit's compute encoder lacks endEncoding: use the generic one.
		mtl.CommandEncoderObject{Object: enc.Object}.EndEncoding()
		if err != nil {
			break // this command buffer is dropped uncommitted
		}
		cb.Commit()
		cbs = append(cbs, cb)
		start = end
	}
	// Wait for everything committed, even after a failure: the buffers
	// must not be reused while the GPU may still read or write them.
	for _, cb := range cbs {
		cb.WaitUntilCompleted()
	}
	if err != nil {
		return err
	}
	for i, cb := range cbs {
		if st := cb.Status(); st != mtl.CommandBufferStatusCompleted {
			// darwinkit panics on a call to a nil object: check before asking.
			msg := fmt.Sprintf("status %d", st)
			if e := cb.Error(); e.Ptr() != nil {
				msg = e.LocalizedDescription()
			}
			return fmt.Errorf("metal: command buffer %d of %d failed: %s", i+1, len(cbs), msg)
		}
	}
	return nil
}

func (d *Device) encodeOne(enc mtl.ComputeCommandEncoderObject, ds *gpu.Dispatch) error {
	p, err := d.pipeline(ds.Kernel)
	if err != nil {
		return err
	}
	threads := ds.Threads[0] * ds.Threads[1] * ds.Threads[2]
	if threads > p.maxThreads {
		return fmt.Errorf("%d threads per threadgroup: the pipeline allows %d", threads, p.maxThreads)
	}
	objc.Call[objc.Void](enc, selSetPipeline, p.obj) // see protocolCallsNote
	for i, b := range ds.Buffers {
		switch {
		case b.Bytes != nil:
			enc.SetBytesLengthAtIndex(unsafe.Pointer(&b.Bytes[0]), uint(len(b.Bytes)), uint(i))
		case b.Buf != nil:
			mb, ok := b.Buf.(*buffer)
			if !ok {
				return fmt.Errorf("[[buffer(%d)]]: %T is not a Metal buffer", i, b.Buf)
			}
			objc.Call[objc.Void](enc, selSetBuffer, mb.obj, uint(mb.off+b.Offset), uint(i)) // see protocolCallsNote
		}
	}
	for i, n := range ds.ThreadgroupMem {
		if n > 0 {
			enc.SetThreadgroupMemoryLengthAtIndex(uint((n+15)&^15), uint(i))
		}
	}
	enc.DispatchThreadgroupsThreadsPerThreadgroup(
		mtl.Size{Width: uint64(ds.Groups[0]), Height: uint64(ds.Groups[1]), Depth: uint64(ds.Groups[2])},
		mtl.Size{Width: uint64(ds.Threads[0]), Height: uint64(ds.Threads[1]), Depth: uint64(ds.Threads[2])})
	return nil
}

// Close implements gpu.Device.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.pipes {
		p.obj.Release()
	}
	for _, l := range d.libs {
		l.Release()
	}
	d.pipes, d.libs = nil, nil
	d.queue.Release()
	d.dev.Release()
	return nil
}
