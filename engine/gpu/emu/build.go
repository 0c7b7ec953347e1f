package emu

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/phi4mac/phi4mac/metal"
	"github.com/phi4mac/phi4mac/metal/toolchain"
)

// genVersion changes whenever the generator's output changes, so cached
// libraries built by an older generator are not reused.
const genVersion = "emu-gen-1"

// compileFlags are the clang++ flags for every translation unit. fp
// contraction is left to clang's default (on, within expressions), close to
// the Metal compiler's; fast-math is off so NaN and Inf behave.
var compileFlags = []string{"-std=c++17", "-O2", "-fPIC", "-fsigned-char", "-ffp-contract=on",
	"-Wno-unknown-attributes", "-Wno-unused-variable", "-Wno-unused-but-set-variable"}

// Library is the shared library built from the .metal sources, and the
// kernels it holds.
type Library struct {
	Path    string
	Kernels map[string]Kernel // by kernel name
	Sources map[string]string // kernel name -> .metal file
}

// BuildLibrary compiles every embedded .metal file (with the shim) into one
// shared library, or reuses the one cached under cacheDir for the same
// sources, shim, generator and compiler. An empty cacheDir means
// os.UserCacheDir()/phi4mac/emu. extra holds more .metal sources by file
// name (tests use it for kernels that exist only to test the emulator).
func BuildLibrary(ctx context.Context, cacheDir string, extra map[string]string) (*Library, error) {
	clang, err := toolchain.Clang()
	if err != nil {
		return nil, err
	}
	if cacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		cacheDir = filepath.Join(base, "phi4mac", "emu")
	}
	src := metal.FS()
	lib := &Library{Kernels: map[string]Kernel{}, Sources: map[string]string{}}
	units := map[string]string{} // file name -> C++
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n", genVersion, clang, strings.Join(compileFlags, " "))
	if v, err := toolchain.Version(clang); err == nil {
		fmt.Fprintf(h, "clang %d\n", v)
	}
	err = fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(p, "shim/check/") {
			return err
		}
		b, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\n", p, len(b))
		h.Write(b)
		if strings.HasSuffix(p, ".metal") {
			ks, err := ParseKernels(string(b))
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			for _, k := range ks {
				if prev, dup := lib.Sources[k.Name]; dup {
					return fmt.Errorf("kernel %s defined in %s and %s", k.Name, prev, p)
				}
				lib.Kernels[k.Name] = k
				lib.Sources[k.Name] = p
			}
			units[p] = translationUnit(p, string(b), ks)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("emulator: read metal sources: %w", err)
	}
	names := make([]string, 0, len(extra))
	for name := range extra {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !strings.HasSuffix(name, ".metal") || strings.ContainsAny(name, "/\\") {
			return nil, fmt.Errorf("emulator: extra source %q: want a plain .metal file name", name)
		}
		if _, dup := units[name]; dup {
			return nil, fmt.Errorf("emulator: extra source %s shadows an embedded one", name)
		}
		b := extra[name]
		fmt.Fprintf(h, "extra %s %d\n", name, len(b))
		h.Write([]byte(b))
		ks, err := ParseKernels(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for _, k := range ks {
			if prev, dup := lib.Sources[k.Name]; dup {
				return nil, fmt.Errorf("kernel %s defined in %s and %s", k.Name, prev, name)
			}
			lib.Kernels[k.Name] = k
			lib.Sources[k.Name] = name
		}
		units[name] = translationUnit(name, b, ks)
	}
	key := hex.EncodeToString(h.Sum(nil))[:24]
	lib.Path = filepath.Join(cacheDir, "kernels-"+key+".so")
	if _, err := os.Stat(lib.Path); err == nil {
		now := time.Now()
		os.Chtimes(lib.Path, now, now) // marks it used, for pruneCache
		return lib, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	work, err := os.MkdirTemp(cacheDir, "build-")
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	defer os.RemoveAll(work)
	inc := filepath.Join(work, "include")
	if err := os.MkdirAll(inc, 0o755); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	for _, name := range metal.Headers() {
		if err := copyEmbedded(name, filepath.Join(inc, name)); err != nil {
			return nil, err
		}
	}
	for _, name := range []string{"metal_stdlib", "emu.h", "emu_builtin.h", "emu_runtime.cpp"} {
		if err := copyEmbedded("shim/emu/"+name, filepath.Join(inc, name)); err != nil {
			return nil, err
		}
	}
	cpps := []string{filepath.Join(inc, "emu_runtime.cpp")}
	for name, tu := range units {
		p := filepath.Join(work, strings.TrimSuffix(name, ".metal")+".cpp")
		if err := os.WriteFile(p, []byte(tu), 0o644); err != nil {
			return nil, fmt.Errorf("emulator: %w", err)
		}
		cpps = append(cpps, p)
	}
	objs := make([]string, len(cpps))
	errs := make([]error, len(cpps))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, cpp := range cpps {
		objs[i] = strings.TrimSuffix(cpp, ".cpp") + ".o"
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			args := append(append([]string{}, compileFlags...), "-I", inc, "-c", cpp, "-o", objs[i])
			errs[i] = runTool(ctx, work, clang, args...)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("emulator: compile kernels: %w", err)
		}
	}
	tmp := filepath.Join(work, "kernels.so")
	if err := runTool(ctx, work, clang, append([]string{"-shared", "-o", tmp}, objs...)...); err != nil {
		return nil, fmt.Errorf("emulator: link kernels: %w", err)
	}
	if err := os.Rename(tmp, lib.Path); err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	pruneCache(cacheDir, 7*24*time.Hour)
	return lib, nil
}

// pruneCache removes libraries unused for longer than age (each use
// refreshes a library's modification time). A library another process
// still has loaded stays valid after its file is removed.
func pruneCache(dir string, age time.Duration) {
	old, _ := filepath.Glob(filepath.Join(dir, "kernels-*.so"))
	for _, p := range old {
		if fi, err := os.Stat(p); err == nil && time.Since(fi.ModTime()) > age {
			os.Remove(p)
		}
	}
}

func copyEmbedded(name, dst string) error {
	b, err := fs.ReadFile(metal.FS(), name)
	if err != nil {
		return fmt.Errorf("emulator: read %s: %w", name, err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	return nil
}

func runTool(ctx context.Context, dir, tool string, args ...string) error {
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", filepath.Base(tool), strings.Join(args, " "), err, out.String())
	}
	return nil
}
