// Package mslcheck checks Metal Shading Language sources without Apple's
// compiler: each file is compiled, unmodified, as C++ for OpenCL 2021 by
// clang with a declarations-only prelude (metal/shim/check) that maps
// Metal's address spaces to OpenCL's and declares the Metal library subset
// the kernels use. fp64 is disabled and warnings are errors, so syntax,
// type, address-space and double-precision mistakes fail the check.
package mslcheck

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/phi4mac/phi4mac/metal"
	"github.com/phi4mac/phi4mac/metal/toolchain"
)

// Checker compiles .metal sources for syntax and type errors.
type Checker struct {
	clang string
	dir   string // embedded headers and the prelude, written out
}

// New finds clang and writes the prelude and the shared headers into a
// temporary directory. Call Close to remove it.
func New() (*Checker, error) {
	clang, err := toolchain.Clang()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mslcheck")
	if err != nil {
		return nil, fmt.Errorf("mslcheck: %w", err)
	}
	c := &Checker{clang: clang, dir: dir}
	if err := c.writeIncludes(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Checker) writeIncludes() error {
	src := metal.FS()
	prelude, err := fs.ReadFile(src, "shim/check/metal_stdlib")
	if err != nil {
		return fmt.Errorf("mslcheck: read prelude: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(c.dir, "prelude"), 0o755); err != nil {
		return fmt.Errorf("mslcheck: %w", err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, "prelude", "metal_stdlib"), prelude, 0o644); err != nil {
		return fmt.Errorf("mslcheck: %w", err)
	}
	for _, h := range metal.Headers() {
		b, err := fs.ReadFile(src, h)
		if err != nil {
			return fmt.Errorf("mslcheck: read %s: %w", h, err)
		}
		if err := os.WriteFile(filepath.Join(c.dir, h), b, 0o644); err != nil {
			return fmt.Errorf("mslcheck: %w", err)
		}
	}
	return nil
}

// Close removes the temporary directory.
func (c *Checker) Close() error { return os.RemoveAll(c.dir) }

// Args returns the clang arguments used to check file (for reports and CI logs).
func (c *Checker) Args(file string) []string {
	return []string{
		"-x", "clcpp", "-cl-std=clc++2021", "-fsyntax-only",
		"-Werror", "-Wno-unknown-attributes",
		"-Xclang", "-cl-ext=-cl_khr_fp64,-__opencl_c_fp64",
		"-I", filepath.Join(c.dir, "prelude"),
		"-I", filepath.Dir(file), // the file's own headers win over the embedded ones
		"-I", c.dir,
		file,
	}
}

// CheckFile checks the .metal file at path. The error holds clang's
// diagnostics.
func (c *Checker) CheckFile(ctx context.Context, path string) error {
	cmd := exec.CommandContext(ctx, c.clang, c.Args(path)...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", path, err, out.String())
	}
	return nil
}

// CheckSource checks source text as if it were the file name in the metal
// directory (so it may include the shared headers).
func (c *Checker) CheckSource(ctx context.Context, name, source string) error {
	dir, err := os.MkdirTemp(c.dir, "src")
	if err != nil {
		return fmt.Errorf("mslcheck: %w", err)
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, filepath.Base(name))
	if err := os.WriteFile(p, []byte(source), 0o644); err != nil {
		return fmt.Errorf("mslcheck: %w", err)
	}
	return c.CheckFile(ctx, p)
}

// CheckEmbedded checks every embedded .metal source and returns one error
// per failing file.
func (c *Checker) CheckEmbedded(ctx context.Context) []error {
	var errs []error
	for _, name := range metal.Sources() {
		src, err := metal.Read(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := c.CheckSource(ctx, name, src); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
