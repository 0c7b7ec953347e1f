// Package gpuopen opens the GPU backend on the device a platform has:
// Metal on a Mac, the CPU emulator of the Metal kernels on Linux (a test
// tool: faithful, slow). Commands map their --backend flag through Open.
package gpuopen

import (
	"context"
	"fmt"

	"github.com/phi4mac/phi4mac/engine/gpu"
)

// Kinds lists the device kinds Open accepts.
var Kinds = []string{"metal", "emu", "auto"}

// Open returns a gpu.Backend on the device kind names: "metal" (an Apple
// GPU), "emu" (the emulator, Linux with cgo and clang >= 15) or "auto"
// (Metal when present, else an error wrapping metal.ErrUnavailable, so a
// caller can fall back to the CPU backend).
func Open(ctx context.Context, kind string) (*gpu.Backend, error) {
	dev, err := openDevice(ctx, kind)
	if err != nil {
		return nil, err
	}
	return gpu.New(dev, gpu.Options{}), nil
}

func unknown(kind string) error {
	return fmt.Errorf("gpu: unknown device kind %q (want one of %v)", kind, Kinds)
}
