// Command mslcheck checks Metal Shading Language sources as C++ for OpenCL
// (see package metal/mslcheck). With no arguments it checks every embedded
// .metal file of package metal; otherwise the named files on disk. It exits
// with status 1 when a file fails.
//
//	go run ./internal/tools/mslcheck            # all kernels
//	go run ./internal/tools/mslcheck metal/x.metal
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/phi4mac/phi4mac/metal"
	"github.com/phi4mac/phi4mac/metal/mslcheck"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, files []string) error {
	c, err := mslcheck.New()
	if err != nil {
		return err
	}
	defer c.Close()
	var errs []error
	if len(files) == 0 {
		errs = c.CheckEmbedded(ctx)
		fmt.Printf("mslcheck: %d embedded .metal files\n", len(metal.Sources()))
	} else {
		for _, f := range files {
			if err := c.CheckFile(ctx, f); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, err := range errs {
		fmt.Fprintln(os.Stderr, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("mslcheck: %d file(s) failed", len(errs))
	}
	fmt.Println("mslcheck: ok")
	return nil
}
