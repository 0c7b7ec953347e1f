//go:build !unix

package engine

import "time"

// processCPUTime is unknown on this OS.
func processCPUTime() time.Duration { return 0 }
