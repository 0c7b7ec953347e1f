//go:build !(darwin || linux || freebsd || netbsd || openbsd)

package weights

import "os"

// mapFile reads the whole file into memory on systems without mmap support
// in this package.
func mapFile(path string) (data []byte, release func() error, err error) {
	data, err = os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return data, func() error { return nil }, nil
}

// mapped reports whether mapFile maps files (true) or reads them (false).
const mapped = false
