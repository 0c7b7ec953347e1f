package synth

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/phi4mac/phi4mac/engine/weights"
)

// TestWriteCancelled checks that cancelling the context (Ctrl-C in
// phi4mac synth) stops generation with the context's error: a GGUF stops
// inside a tensor, and an HF folder is left without a weights file.
func TestWriteCancelled(t *testing.T) {
	q8, err := weights.ParseScheme("q8_0")
	if err != nil {
		t.Fatal(err)
	}
	c := preset(t, "tiny")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// A cancelled context stops the first (100352×256) tensor at once.
	if err := c.WriteGGUFContext(ctx, io.Discard, q8, nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("GGUF: err = %v, want context.Canceled", err)
	}
	if err := c.encodeTo(ctx, io.Discard, c.Tensors()[0], q8.Base); !errors.Is(err, context.Canceled) {
		t.Fatalf("encode: err = %v, want context.Canceled", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	done := 0
	progress := func(int, int, string) { done++; cancel() }
	dir := t.TempDir()
	if err := preset(t, "micro").WriteHFContext(ctx, dir, "", progress); !errors.Is(err, context.Canceled) {
		t.Fatalf("HF: err = %v, want context.Canceled", err)
	}
	if done != 1 {
		t.Errorf("%d tensors generated after cancelling, want 1", done)
	}
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("model.safetensors exists after cancelling: %v", err)
	}

	// A folder that did not exist is not created at all.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	parent := t.TempDir()
	progress = func(int, int, string) { cancel() }
	if err := preset(t, "micro").WriteHFContext(ctx, filepath.Join(parent, "new"), "", progress); !errors.Is(err, context.Canceled) {
		t.Fatalf("new HF folder: err = %v, want context.Canceled", err)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Errorf("left behind after cancelling: %v", entries)
	}
	// Complete, it appears under its name (TestWriteHF checks the files).
	if err := preset(t, "micro").WriteHFContext(context.Background(), filepath.Join(parent, "new"), "", nil); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 || entries[0].Name() != "new" {
		t.Errorf("after writing: %v", entries)
	}
	if fi, err := os.Stat(filepath.Join(parent, "new")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("folder: %v %v", fi, err)
	}
}

// TestWriteGGUFStreams checks that writing a GGUF does not hold whole
// tensors in memory: a model with two 64 MB F32 matrices is written with
// a small, bounded amount of allocation.
func TestWriteGGUFStreams(t *testing.T) {
	f32, err := weights.ParseScheme("f32")
	if err != nil {
		t.Fatal(err)
	}
	c := preset(t, "micro")
	c.Vocab = 1 << 18 // token_embd and output: 2^18 × 64 F32 = 64 MB each
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := c.WriteGGUFContext(context.Background(), io.Discard, f32, nil, nil); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 32<<20 {
		t.Errorf("writing allocated %d MB; tensors are not streamed", got>>20)
	}
}
