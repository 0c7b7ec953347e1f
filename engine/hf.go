package engine

import (
	"context"
	"errors"
)

func loadHF(ctx context.Context, dir string, opts Options) (*Model, error) {
	return nil, errors.New("safetensors loading not wired yet")
}
