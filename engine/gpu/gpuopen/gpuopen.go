// Package gpuopen opens the GPU backend on the device a platform has:
// Metal on a Mac, the CPU emulator of the Metal kernels on Linux (a test
// tool: faithful, slow). Commands map their --backend flag through Open.
package gpuopen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/gpu"
	"github.com/phi4mac/phi4mac/engine/gpu/metal"
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

// Auto returns the Metal backend when this machine has a usable GPU and
// otherwise fallback() (the CPU backend), logging why the GPU was not used:
// no Metal device, or kernels that did not compile (the log holds the
// Metal compiler's message).
func Auto(ctx context.Context, fallback func() engine.Backend, log *slog.Logger) engine.Backend {
	b, err := Open(ctx, "auto")
	if err == nil {
		return b
	}
	if log == nil {
		log = slog.Default()
	}
	if errors.Is(err, metal.ErrUnavailable) {
		log.Debug("no Metal GPU; using the CPU backend", "reason", err)
	} else {
		log.Warn("the Metal backend failed to start; using the CPU backend", "err", err)
	}
	return fallback()
}
