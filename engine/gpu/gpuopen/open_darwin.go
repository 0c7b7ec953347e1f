//go:build darwin

package gpuopen

import (
	"context"
	"errors"

	"github.com/phi4mac/phi4mac/engine/gpu"
	"github.com/phi4mac/phi4mac/engine/gpu/metal"
)

func openDevice(ctx context.Context, kind string) (gpu.Device, error) {
	switch kind {
	case "metal", "auto", "":
		return metal.New(ctx)
	case "emu":
		return nil, errors.New("gpu: the Metal emulator runs on Linux only; use --backend metal")
	}
	return nil, unknown(kind)
}
