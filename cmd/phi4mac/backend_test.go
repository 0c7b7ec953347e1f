//go:build !darwin && cgo

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestEvalOnTheMetalEmulator runs eval with --backend emu (the .metal
// kernels on the CPU emulator) on micro's F16 GGUF and checks the logits
// against llama.cpp's f32 reference (micro's F16 weights are exactly its F32
// values) and the greedy continuation against the reference's.
func TestEvalOnTheMetalEmulator(t *testing.T) {
	checkEvalShort(t, "models/micro/phi3-random-micro-F16.gguf", "--backend", "emu")
}

// TestBackendFlag checks that each --backend value opens what it names and
// that a GPU asked for on a machine without one is a clear error rather than
// a silent fall back to the CPU.
func TestBackendFlag(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		kind, wantName, wantErr string
	}{
		{kind: "cpu", wantName: "cpu"},
		{kind: "auto", wantName: "cpu"}, // no Metal GPU on Linux
		{kind: "emu", wantName: "emulator"},
		{kind: "metal", wantErr: "use --backend cpu or auto"},
		{kind: "cuda", wantErr: `unknown --backend "cuda"`},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			b, err := openBackend(ctx, tt.kind, 1, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("openBackend(%q) error %v, want one containing %q", tt.kind, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if !strings.Contains(b.Name(), tt.wantName) {
				t.Errorf("openBackend(%q) gave backend %q, want %q", tt.kind, b.Name(), tt.wantName)
			}
		})
	}
	var out bytes.Buffer
	cmd := newEvalCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"--backend", "cuda", "--model", "x.gguf", "--tokens", "1"})
	if err := cmd.ExecuteContext(ctx); err == nil || !strings.Contains(err.Error(), "unknown --backend") {
		t.Errorf("eval --backend cuda: error %v, want an unknown-backend error", err)
	}
}
