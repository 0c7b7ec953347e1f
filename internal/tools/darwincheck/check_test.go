package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheck builds throwaway modules holding darwin-only cgo code and checks
// that the checker passes correct code and fails a deliberate type error
// that a Linux build would never see.
func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		source  string
		wantErr string // substring of a reported problem; "" for clean
	}{
		{
			name: "clean cgo",
			source: `//go:build darwin && cgo

package drv

// #include <stdint.h>
// static int answer(void) { return 42; }
import "C"

import "strings"

// Answer returns the C answer as a string.
func Answer() string { return strings.Repeat("x", int(C.answer())) }
`,
		},
		{
			name: "type error",
			source: `//go:build darwin && cgo

package drv

import "C"

// Broken adds a string to an int.
func Broken() int { return 1 + "one" }
`,
			wantErr: "mismatched types",
		},
		{
			name: "undefined name",
			source: `//go:build darwin

package drv

// Broken calls a function nobody wrote.
func Broken() { missingFunction() }
`,
			wantErr: "undefined: missingFunction",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "go.mod"), "module example.com/m\n\ngo 1.26\n")
			write(t, filepath.Join(dir, "drv", "drv_darwin.go"), tt.source)
			// A Linux-only twin that is fine, so the Linux build passes.
			write(t, filepath.Join(dir, "drv", "drv_linux.go"), "package drv\n")
			problems, err := check(context.Background(), dir, target{"darwin", "arm64"}, []string{"./..."})
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(problems, "\n")
			if tt.wantErr == "" && len(problems) > 0 {
				t.Fatalf("clean code reported problems:\n%s", got)
			}
			if tt.wantErr != "" && !strings.Contains(got, tt.wantErr) {
				t.Fatalf("problems %q do not mention %q", got, tt.wantErr)
			}
		})
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
