// Command darwincheck type-checks the module's Go code as it builds for macOS
// (darwin/arm64, cgo on) from a Linux machine with no Apple toolchain. It is
// what `make check-darwin` runs: every darwin-only file, the Metal driver
// and the GUI included, must type-check here before it reaches a Mac.
//
// Usage:
//
//	go run ./internal/tools/darwincheck [-goos darwin] [-goarch arm64] [packages]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
)

func main() {
	goos := flag.String("goos", "darwin", "target GOOS")
	goarch := flag.String("goarch", "arm64", "target GOARCH")
	flag.Parse()
	patterns := flag.Args()
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	problems, err := check(context.Background(), ".", target{*goos, *goarch}, patterns)
	if err != nil {
		fmt.Fprintln(os.Stderr, "darwincheck:", err)
		os.Exit(2)
	}
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "darwincheck: %d type error(s) for %s/%s\n", len(problems), *goos, *goarch)
		os.Exit(1)
	}
	fmt.Printf("darwincheck: %v type-check cleanly for %s/%s (cgo on, C faked)\n", patterns, *goos, *goarch)
}
