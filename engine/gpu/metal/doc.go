// Package metal is the gpu.Device of Apple GPUs, a thin driver over
// github.com/progrium/darwinkit: it compiles the embedded .metal sources at
// run time (newLibraryWithSource, so users need no Xcode), caches one
// compute pipeline per kernel, wraps memory-mapped weights without copying
// (newBufferWithBytesNoCopy on the enclosing pages) and encodes each list of
// dispatches, in order, into a few command buffers of one queue (serial
// compute encoders; the first is committed early so the GPU works while the
// CPU encodes the rest) and waits once.
//
// It builds only on darwin with cgo; New reports ErrUnavailable elsewhere.
package metal

import "errors"

// ErrUnavailable reports that no Metal device can be used (not a Mac, a
// build without cgo, or no GPU).
var ErrUnavailable = errors.New("metal: no Metal device (needs macOS on Apple Silicon and a cgo build)")
