//go:build darwin || linux || freebsd || netbsd || openbsd

package weights

import (
	"fmt"
	"os"
	"syscall"
)

// mapFile maps the whole file read-only. The returned release function
// unmaps it. A zero-length file yields an empty slice and a no-op release.
func mapFile(path string) (data []byte, release func() error, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if fi.IsDir() {
		return nil, nil, fmt.Errorf("%s is a directory", path)
	}
	size := fi.Size()
	if size == 0 {
		return []byte{}, func() error { return nil }, nil
	}
	if int64(int(size)) != size || size < 0 {
		return nil, nil, fmt.Errorf("file too large to map (%d bytes)", size)
	}
	data, err = syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap: %w", err)
	}
	return data, func() error { return syscall.Munmap(data) }, nil
}

// mapped reports whether mapFile maps files (true) or reads them (false).
const mapped = true
