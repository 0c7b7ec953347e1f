//go:build !darwin && cgo

package gpuopen

import (
	"context"
	"errors"
	"testing"

	"github.com/phi4mac/phi4mac/engine/gpu/metal"
)

func TestOpen(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, "auto"); !errors.Is(err, metal.ErrUnavailable) {
		t.Errorf("auto on Linux: got %v, want metal.ErrUnavailable (so callers fall back to the CPU)", err)
	}
	if _, err := Open(ctx, "cuda"); err == nil {
		t.Error("unknown kind accepted")
	}
	b, err := Open(ctx, "emu")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Name() == "" {
		t.Error("empty backend name")
	}
}
