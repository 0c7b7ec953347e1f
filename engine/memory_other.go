//go:build !darwin

package engine

// physicalMemory is only used on macOS; elsewhere availableMemory reads the
// OS's own estimate.
func physicalMemory() (int64, bool) { return 0, false }
