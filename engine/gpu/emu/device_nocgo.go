//go:build !darwin && !cgo

package emu

import (
	"context"
	"errors"

	"github.com/phi4mac/phi4mac/engine/gpu"
)

// Options configure the emulator (which needs cgo).
type Options struct {
	CacheDir          string
	Seed              uint64
	ThreadgroupMemory int
}

// ErrNoCgo reports a build without cgo, which the emulator needs.
var ErrNoCgo = errors.New("emulator: built without cgo (CGO_ENABLED=0)")

// Device is unavailable without cgo.
type Device struct{ gpu.Device }

// New fails without cgo.
func New(ctx context.Context, opts Options) (*Device, error) { return nil, ErrNoCgo }
