//go:build !darwin

package gpuopen

import (
	"context"

	"github.com/phi4mac/phi4mac/engine/gpu"
	"github.com/phi4mac/phi4mac/engine/gpu/emu"
	"github.com/phi4mac/phi4mac/engine/gpu/metal"
)

func openDevice(ctx context.Context, kind string) (gpu.Device, error) {
	switch kind {
	case "metal", "auto", "":
		return nil, metal.ErrUnavailable
	case "emu":
		d, err := emu.New(ctx, emu.Options{})
		if err != nil {
			return nil, err
		}
		return d, nil
	}
	return nil, unknown(kind)
}
