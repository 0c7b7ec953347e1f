// Package metal holds the Metal Shading Language sources of phi4mac's GPU
// kernels, one file per kernel family, and the headers they share.
//
// The same files run on Apple GPUs (compiled at run time with
// newLibraryWithSource by engine/gpu/metal) and on Linux through the
// emulator in engine/gpu/emu, which compiles them as C++ against the shim in
// shim/emu. shim/check holds a declarations-only prelude that lets clang
// check each file as C++ for OpenCL (see internal/tools/mslcheck).
package metal

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.metal *.h shim/emu/* shim/check/*
var files embed.FS

// FS returns the embedded sources: the .metal files and headers at the root,
// the emulator shim under shim/emu and the OpenCL check prelude under
// shim/check.
func FS() fs.FS { return files }

// Sources returns the names of the .metal files (one per kernel family), sorted.
func Sources() []string {
	ents, err := fs.ReadDir(files, ".")
	if err != nil {
		panic(err) // embedded at build time: cannot fail
	}
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".metal") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}

// Headers returns the names of the headers the .metal files include, sorted.
func Headers() []string {
	ents, err := fs.ReadDir(files, ".")
	if err != nil {
		panic(err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".h") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}

// Read returns the contents of the embedded file name (e.g. "gemv.metal",
// "args.h", "shim/emu/metal_stdlib").
func Read(name string) (string, error) {
	b, err := fs.ReadFile(files, name)
	return string(b), err
}

// Inlined returns the .metal file name with its quoted #include lines
// replaced by the headers' text (each header once), ready for Metal's
// newLibraryWithSource, which has no include path. <metal_stdlib> stays.
func Inlined(name string) (string, error) {
	var b strings.Builder
	seen := map[string]bool{}
	if err := inline(&b, name, seen, 0); err != nil {
		return "", err
	}
	return b.String(), nil
}

func inline(b *strings.Builder, name string, seen map[string]bool, depth int) error {
	if depth > 8 {
		return fmt.Errorf("metal: includes nested too deep at %s", name)
	}
	src, err := Read(name)
	if err != nil {
		return fmt.Errorf("metal: %w", err)
	}
	for _, line := range strings.SplitAfter(src, "\n") {
		t := strings.TrimSpace(line)
		if t == "#pragma once" {
			b.WriteString("\n")
			continue
		}
		if h, ok := strings.CutPrefix(t, "#include \""); ok {
			h = strings.TrimSuffix(h, "\"")
			if !seen[h] {
				seen[h] = true
				if err := inline(b, h, seen, depth+1); err != nil {
					return err
				}
			}
			b.WriteString("\n")
			continue
		}
		b.WriteString(line)
	}
	return nil
}
