package metal_test

import (
	"context"
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/metal"
	"github.com/phi4mac/phi4mac/metal/mslcheck"
)

// TestMetalSourcesCompile compiles every embedded .metal file as C++ for
// OpenCL (make check-metal runs it in CI).
func TestMetalSourcesCompile(t *testing.T) {
	c, err := mslcheck.New()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(metal.Sources()) == 0 {
		t.Fatal("no .metal sources embedded")
	}
	for _, name := range metal.Sources() {
		t.Run(name, func(t *testing.T) {
			src, err := metal.Read(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.CheckSource(context.Background(), name, src); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestMetalCheckRejectsBrokenKernels shows the check fails on the mistakes
// it exists to catch.
func TestMetalCheckRejectsBrokenKernels(t *testing.T) {
	c, err := mslcheck.New()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const head = "#include <metal_stdlib>\n#include \"args.h\"\nusing namespace metal;\n"
	tests := []struct {
		name, body, want string
	}{
		{"syntax", "kernel void k(device float* y [[buffer(0)]]) { y[0] = 1.0f }", "expected ';'"},
		{"undeclared", "kernel void k(device float* y [[buffer(0)]]) { y[0] = nope; }", "undeclared identifier"},
		{"const write", "kernel void k(device const float* y [[buffer(0)]]) { y[0] = 1.0f; }", "read-only"},
		{"address space", "kernel void k(device float* y [[buffer(0)]]) { threadgroup float s[4]; device float* p = s; y[0] = p[0]; }", "cannot initialize"},
		{"double", "kernel void k(device float* y [[buffer(0)]]) { double d = 2; y[0] = float(d); }", "double"},
		{"wrong field", "kernel void k(device float* y [[buffer(0)]], constant GemvArgs& a [[buffer(1)]]) { y[0] = a.rows; }", "no member named 'rows'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := c.CheckSource(context.Background(), "broken.metal", head+tc.body+"\n")
			if err == nil {
				t.Fatalf("broken kernel passed the check:\n%s", tc.body)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not mention %q:\n%v", tc.want, err)
			}
		})
	}
	if err := c.CheckSource(context.Background(), "ok.metal", head+"kernel void k(device float* y [[buffer(0)]]) { y[0] = 1.0f; }\n"); err != nil {
		t.Errorf("valid kernel rejected: %v", err)
	}
}

// TestInlinedSourcesCompile checks the single-string form the Metal driver
// hands to newLibraryWithSource (headers inlined).
func TestInlinedSourcesCompile(t *testing.T) {
	c, err := mslcheck.New()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, name := range metal.Sources() {
		src, err := metal.Inlined(name)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(src, "#include \"") {
			t.Errorf("%s: quoted include left after inlining", name)
		}
		if err := c.CheckSource(context.Background(), "inlined-"+name, src); err != nil {
			t.Error(err)
		}
	}
}
