//go:build !unix

package config

import "sync"

var settingsMu sync.Mutex

// lockFile serialises settings changes within this process (systems
// without flock).
func lockFile(string) (func(), error) {
	settingsMu.Lock()
	return settingsMu.Unlock, nil
}
