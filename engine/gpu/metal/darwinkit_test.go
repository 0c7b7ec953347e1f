package metal

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// wrappingMethods returns the names of darwinkit's macos/metal methods that
// pass an argument through objc.WrapAsProtocol. With a concrete *Object
// argument (the only kind the driver has) that function panics ("generic
// type T should be interface type"), so the driver must not call them.
func wrappingMethods(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/progrium/darwinkit").Output()
	if err != nil {
		t.Fatalf("locate darwinkit (go mod download): %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "macos", "metal")
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("darwinkit's macos/metal sources in %s: %v", dir, err)
	}
	names := map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range files {
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "WrapAsProtocol" {
					names[fn.Name.Name] = true
				}
				return true
			})
		}
	}
	if !names["SetComputePipelineState"] {
		t.Fatalf("darwinkit's SetComputePipelineState no longer wraps its argument: revisit this test (found %d wrapping methods)", len(names))
	}
	return names
}

// TestDriverAvoidsProtocolWrapping checks, on any OS, that the Metal driver
// calls none of darwinkit's methods that would panic at run time.
func TestDriverAvoidsProtocolWrapping(t *testing.T) {
	bad := wrappingMethods(t)
	src, err := os.ReadFile("device_darwin.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "device_darwin.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	var calls []string
	ast.Inspect(file, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		if sel, ok := call.Fun.(*ast.SelectorExpr); ok && bad[sel.Sel.Name] {
			calls = append(calls, fset.Position(call.Pos()).String()+": "+sel.Sel.Name)
		}
		return true
	})
	sort.Strings(calls)
	for _, c := range calls {
		t.Errorf("%s: darwinkit passes this method's argument through objc.WrapAsProtocol, which panics; send the message with objc.Call", c)
	}
}
