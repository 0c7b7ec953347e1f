package emu

import (
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/metal"
)

// FuzzParseKernels: the kernel parser never panics, and whatever it
// accepts has named parameters with supported attributes.
func FuzzParseKernels(f *testing.F) {
	for _, name := range metal.Sources() {
		src, err := metal.Read(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add("kernel void k(device float* x [[buffer(0)]], uint i [[thread_position_in_grid]]) {}")
	f.Add("kernel void k(")
	f.Add("/* unterminated kernel void k(device float* x [[buffer(0)]]")
	f.Fuzz(func(t *testing.T, src string) {
		ks, err := ParseKernels(src)
		if err != nil {
			return
		}
		for _, k := range ks {
			for _, p := range k.Params {
				if p.Name == "" || p.Type == "" {
					t.Fatalf("kernel %s: parameter without name or type: %+v", k.Name, p)
				}
				_, builtin := builtins[p.Attr]
				if p.Attr != "buffer" && p.Attr != "threadgroup" && !builtin {
					t.Fatalf("kernel %s: attribute %q accepted", k.Name, p.Attr)
				}
			}
		}
		Launchers(ks) // must not panic
		Rewrite(src)
	})
}

// TestEmbeddedKernelsParse: every embedded kernel parses, and kernel names
// are unique across files.
func TestEmbeddedKernelsParse(t *testing.T) {
	seen := map[string]string{}
	for _, name := range metal.Sources() {
		src, err := metal.Read(name)
		if err != nil {
			t.Fatal(err)
		}
		ks, err := ParseKernels(src)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(ks) == 0 {
			t.Errorf("%s: no kernels", name)
		}
		for _, k := range ks {
			if prev, dup := seen[k.Name]; dup {
				t.Errorf("kernel %s in %s and %s", k.Name, prev, name)
			}
			seen[k.Name] = name
			if !strings.Contains(Launchers([]Kernel{k}), "emu_k_"+k.Name) {
				t.Errorf("no launcher for %s", k.Name)
			}
		}
	}
	if len(seen) < 30 {
		t.Errorf("only %d kernels", len(seen))
	}
}
