package engine

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// ErrNoMemory reports a model that does not fit in the available memory.
var ErrNoMemory = errors.New("model does not fit in memory")

// AvailableMemory returns the bytes of memory the OS reports as available
// (MemAvailable on Linux; physical memory on macOS), or false where that is
// unknown. Load and NewSession check models and caches against it.
func AvailableMemory() (int64, bool) {
	if n, ok := physicalMemory(); ok {
		return n, true
	}
	return memAvailableLinux()
}

func memAvailableLinux() (int64, bool) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) >= 2 && string(f[0]) == "MemAvailable:" {
			kb, err := strconv.ParseInt(string(f[1]), 10, 64)
			if err != nil {
				return 0, false
			}
			return kb * 1024, true
		}
	}
	return 0, false
}

// checkMemory fails when need bytes exceed the available memory. Pages of
// the model file already in the page cache count as available, so a model
// that was just used passes.
func checkMemory(need int64, path string) error {
	avail, ok := AvailableMemory()
	if !ok || need <= avail {
		return nil
	}
	return fmt.Errorf("%w: %s needs %.1f GiB for its weights but only %.1f GiB is available; close other programs, use a smaller quantisation (e.g. Q4_K_M), or pass --no-memory-check to try anyway",
		ErrNoMemory, path, float64(need)/(1<<30), float64(avail)/(1<<30))
}
