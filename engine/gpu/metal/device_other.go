//go:build !darwin || !cgo

package metal

import (
	"context"

	"github.com/phi4mac/phi4mac/engine/gpu"
)

// Device is unavailable in this build.
type Device struct{ gpu.Device }

// New reports ErrUnavailable: Metal needs darwin and cgo.
func New(ctx context.Context) (*Device, error) { return nil, ErrUnavailable }
