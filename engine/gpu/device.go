// Package gpu is the host side of phi4mac's Metal backend, in portable Go:
// it decides which kernel runs each operation of the forward pass, with
// which grid and threadgroup sizes and which buffer at which [[buffer(n)]]
// index, records the dispatches of a forward pass into one list and hands
// it to a Device. Two Devices exist: engine/gpu/metal (Apple GPUs, darwin)
// and engine/gpu/emu (the same .metal sources run on the CPU, for tests on
// Linux). Everything but the thin driver is therefore tested on Linux.
package gpu

import (
	"context"
	"errors"
)

// Device is a GPU (or its emulator) that runs the kernels of package metal
// on memory shared with the host (Apple Silicon's unified memory).
type Device interface {
	// Name describes the device, e.g. "Apple M4 Max" or "emulator".
	Name() string
	// Limits reports the device's kernel limits.
	Limits() Limits
	// Alloc returns a zeroed buffer of size bytes, visible to the host.
	Alloc(size int) (Buffer, error)
	// Wrap makes mem (e.g. a read-only memory map of model weights)
	// available to kernels without copying it. mem must stay valid and
	// unmoved until the buffer is released (memory not managed by Go's
	// heap, such as an mmap, satisfies this).
	Wrap(mem []byte) (Buffer, error)
	// Run executes the dispatches in order and waits for them: each
	// dispatch sees the writes of the ones before it (serial encoders,
	// command buffers of one queue). It reports the first failure.
	Run(ctx context.Context, ds []Dispatch) error
	// Close releases the device.
	Close() error
}

// Describer is implemented by devices that can say more about themselves
// than Name (GPU family, memory limits) for reports.
type Describer interface {
	Describe() string
}

// Buffer is device memory the host can read and write directly.
type Buffer interface {
	// Bytes returns the buffer's memory. Reading it while dispatches that
	// write it run is a data race.
	Bytes() []byte
	// Release frees the buffer (a wrapped buffer is only unregistered).
	Release() error
}

// Limits are the constraints a Device puts on dispatches.
type Limits struct {
	MaxThreadsPerThreadgroup int   // 1024 on Apple GPUs
	ThreadgroupMemory        int   // bytes of threadgroup memory, 32 KiB
	SIMDWidth                int   // threads per simdgroup, 32
	MaxBufferLength          int64 // largest single buffer
	WorkingSet               int64 // memory the GPU may use (recommendedMaxWorkingSetSize); 0 if unknown
}

// Binding is what a kernel sees at one [[buffer(n)]] index: either a range
// of a Buffer starting at Offset, or, when Bytes is set, a small constant
// block (argument structs; Metal's setBytes).
type Binding struct {
	Buf    Buffer
	Offset int
	Bytes  []byte
}

// Dispatch is one kernel launch: Groups threadgroups of Threads threads.
// Buffers[n] binds [[buffer(n)]]; ThreadgroupMem[n] sizes [[threadgroup(n)]].
type Dispatch struct {
	Kernel         string
	Groups         [3]int
	Threads        [3]int
	Buffers        []Binding
	ThreadgroupMem []int
}

// ErrUnknownKernel is returned by Run for a kernel the device does not have.
var ErrUnknownKernel = errors.New("unknown kernel")
