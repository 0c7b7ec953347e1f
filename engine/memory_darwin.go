package engine

import "golang.org/x/sys/unix"

// physicalMemory returns the machine's RAM (hw.memsize). macOS has no
// cheap "available" figure that counts reclaimable caches, so a model is
// checked against the whole RAM.
func physicalMemory() (int64, bool) {
	n, err := unix.SysctlUint64("hw.memsize")
	if err != nil {
		return 0, false
	}
	return int64(n), true
}
