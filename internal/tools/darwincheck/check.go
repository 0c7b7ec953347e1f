package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// listedPackage is the subset of `go list -json` output the checker needs.
type listedPackage struct {
	Dir        string
	ImportPath string
	Name       string
	Standard   bool
	GoFiles    []string
	CgoFiles   []string
	ImportMap  map[string]string
	Module     *struct {
		Path string
		Main bool
	}
	Error      *struct{ Err string }
	DepsErrors []*struct{ Err string }
}

// target describes the platform whose build constraints the check applies.
type target struct {
	GOOS, GOARCH string
}

// check type-checks every package matched by patterns (run from dir) and all
// of their dependencies as they would build for tgt with cgo enabled. The C
// side of cgo is faked (go/types FakeImportC), so no C toolchain for the
// target is needed. Only errors in the main module's packages are reported;
// dependencies are checked leniently, since the goal is our own code's use of
// their APIs.
func check(ctx context.Context, dir string, tgt target, patterns []string) ([]string, error) {
	pkgs, err := goList(ctx, dir, tgt, patterns)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	checked := map[string]*types.Package{"unsafe": types.Unsafe, "C": nil}
	var problems []string
	for _, p := range pkgs { // go list -deps lists dependencies before dependents
		if p.ImportPath == "unsafe" {
			continue
		}
		ours := p.Module != nil && p.Module.Main
		if p.Error != nil && ours {
			problems = append(problems, fmt.Sprintf("%s: %s", p.ImportPath, p.Error.Err))
			continue
		}
		var files []*ast.File
		for _, name := range append(append([]string{}, p.GoFiles...), p.CgoFiles...) {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.ParseComments|parser.SkipObjectResolution)
			if err != nil {
				if ours {
					problems = append(problems, err.Error())
				}
				continue
			}
			files = append(files, f)
		}
		conf := types.Config{
			FakeImportC: true,
			Sizes:       types.SizesFor("gc", tgt.GOARCH),
			Importer:    mapImporter{checked: checked, importMap: p.ImportMap},
			Error: func(err error) {
				if ours {
					problems = append(problems, err.Error())
				}
			},
		}
		pkg, _ := conf.Check(p.ImportPath, fset, files, nil)
		checked[p.ImportPath] = pkg
	}
	return problems, nil
}

func goList(ctx context.Context, dir string, tgt target, patterns []string) ([]listedPackage, error) {
	args := append([]string{"list", "-e", "-deps", "-json=Dir,ImportPath,Name,Standard,GoFiles,CgoFiles,ImportMap,Module,Error,DepsErrors"}, patterns...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS="+tgt.GOOS, "GOARCH="+tgt.GOARCH, "CGO_ENABLED=1", "GOFLAGS=-buildvcs=false")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list for %s/%s: %w: %s", tgt.GOOS, tgt.GOARCH, err, stderr.String())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("decode go list output: %w", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// mapImporter resolves imports to packages checked earlier in the run,
// applying go list's per-package import map (vendored standard-library
// dependencies and the like).
type mapImporter struct {
	checked   map[string]*types.Package
	importMap map[string]string
}

func (m mapImporter) Import(path string) (*types.Package, error) {
	if mapped, ok := m.importMap[path]; ok {
		path = mapped
	}
	if pkg := m.checked[path]; pkg != nil {
		return pkg, nil
	}
	return nil, fmt.Errorf("package %s was not type-checked (missing from go list -deps)", strings.TrimSpace(path))
}
