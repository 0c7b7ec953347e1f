//go:build !darwin && cgo

package gpuopen

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/cpu"
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

func TestAutoFallsBack(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := Auto(context.Background(), func() engine.Backend { return cpu.New(cpu.Options{Threads: 1}) }, log)
	defer b.Close()
	if b.Name() != "cpu" {
		t.Errorf("backend %q, want the CPU fallback on Linux", b.Name())
	}
	if !bytes.Contains(logs.Bytes(), []byte("no Metal GPU")) {
		t.Errorf("the fallback was not logged: %s", logs.String())
	}
}
