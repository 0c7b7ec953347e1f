package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/cpu"
	"github.com/phi4mac/phi4mac/engine/gpu/gpuopen"
)

// backendHelp documents the --backend flag of every command that loads a model.
const backendHelp = "compute backend: auto (Metal on Apple Silicon, else the CPU), metal, cpu, or emu (the Metal kernels on the CPU emulator; Linux, for testing)"

// addBackendFlag registers --backend on cmd, defaulting to auto.
func addBackendFlag(cmd *cobra.Command, kind *string) {
	cmd.Flags().StringVar(kind, "backend", "auto", backendHelp)
}

// openBackend returns the backend named kind. "auto" falls back to the CPU
// backend, logging why, when there is no usable Metal GPU; "metal" and
// "emu" fail instead, so that a user who asked for the GPU knows.
func openBackend(ctx context.Context, kind string, threads int, log *slog.Logger) (engine.Backend, error) {
	newCPU := func() engine.Backend { return cpu.New(cpu.Options{Threads: threads}) }
	switch kind {
	case "cpu":
		return newCPU(), nil
	case "auto", "":
		return gpuopen.Auto(ctx, newCPU, log), nil
	case "metal", "emu":
		b, err := gpuopen.Open(ctx, kind)
		if err != nil {
			return nil, fmt.Errorf("--backend %s: %w (use --backend cpu or auto)", kind, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("unknown --backend %q (want auto, metal, cpu or emu)", kind)
}
