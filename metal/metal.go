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
