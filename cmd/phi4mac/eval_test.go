package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// runCmd runs one command (built by newCmd, so the test does not depend on
// the wiring in root.go) with args.
func runCmd(t *testing.T, newCmd func() *cobra.Command, args ...string) string {
	t.Helper()
	root := newCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("phi4mac %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// TestEval runs micro's "short" prompt like llama.cpp did for the F32
// reference: the written logits and the greedy ids must match it.
func TestEval(t *testing.T) {
	checkEvalShort(t, "models/micro/phi3-random-micro-F32.gguf", "--threads", "2")
}

// checkEvalShort runs phi4mac eval with args on micro's model at path (in
// the refs) and its "short" prompt with an F32 KV cache, and checks the
// greedy ids against llama.cpp's f32 reference and the written logits to
// 1e-4.
func checkEvalShort(t *testing.T, model string, args ...string) {
	t.Helper()
	refs := testrefs.Dir(t)
	out := filepath.Join(t.TempDir(), "logits.f32")
	got := runCmd(t, newEvalCmd, append([]string{"--model", filepath.Join(refs, model),
		"--tokens", "936,882,938,355,937,936,239,938", "--kv", "f32", "--out", out, "--greedy", "8"}, args...)...)
	if want := readRefGreedy(t, filepath.Join(refs, "logits/micro/f32-kvf32"), "short", 8); strings.TrimSpace(got) != want {
		t.Errorf("greedy ids %s, want %s", strings.TrimSpace(got), want)
	}
	a, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(refs, "logits/micro/f32-kvf32/short.last.f32"))
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) {
		t.Fatalf("%d bytes of logits, want %d", len(a), len(b))
	}
	for i := 0; i < len(a); i += 4 {
		x := math.Float32frombits(binary.LittleEndian.Uint32(a[i:]))
		y := math.Float32frombits(binary.LittleEndian.Uint32(b[i:]))
		if math.Abs(float64(x-y)) > 1e-4 {
			t.Fatalf("logit %d: %g, reference %g", i/4, x, y)
		}
	}
}

// TestRunFillsTheContext runs the demo model until its context is full: the
// reply is printed, and the stop is reported on stderr rather than failing.
func TestRunFillsTheContext(t *testing.T) {
	root := newRunCmd()
	var out, errOut strings.Builder
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs([]string{"--temperature", "0", "-n", "0", "--ctx", "24", "Once upon a time"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("run until the context is full: %v", err)
	}
	if !strings.HasPrefix(out.String(), "Once upon a time, there was") {
		t.Errorf("run printed %q", out.String())
	}
	if !strings.Contains(errOut.String(), "the 24-token context is full") {
		t.Errorf("stderr %q does not report the full context", errOut.String())
	}
	// A prompt that cannot fit at all is still an error.
	root = newRunCmd()
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs([]string{"--ctx", "2", "Once upon a time"})
	if err := root.ExecuteContext(context.Background()); !errors.Is(err, engine.ErrContextFull) {
		t.Errorf("a prompt longer than the context: error %v, want ErrContextFull", err)
	}
}

// TestRunDemo runs the built-in demo model greedily.
func TestRunDemo(t *testing.T) {
	got := runCmd(t, newRunCmd, "--temperature", "0", "-n", "12", "Once upon a time")
	if !strings.HasPrefix(got, "Once upon a time, there was a little girl named Lily.") {
		t.Errorf("run printed %q", got)
	}
}
