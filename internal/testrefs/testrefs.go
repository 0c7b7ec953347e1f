// Package testrefs locates the shared reference data (models, logits,
// tokenizer corpora) that tests compare against.
//
// The data lives outside the repository, in ../shared/refs relative to the
// module root. The environment variable PHI4MAC_REFS overrides that location.
package testrefs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// EnvVar names the environment variable that overrides the refs directory.
const EnvVar = "PHI4MAC_REFS"

// Dir returns the reference data directory. It fails the test (t.Fatal) if
// the directory cannot be found: missing fixtures are an error, not a skip.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := Find()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// Path returns filepath.Join(Dir(t), elem...) and fails the test if that
// path does not exist.
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{Dir(t)}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("reference fixture missing: %v", err)
	}
	return p
}

// Find returns the reference data directory without a testing.TB: the value
// of PHI4MAC_REFS if set, else ../shared/refs next to the directory holding
// go.mod, found by walking up from the working directory.
func Find() (string, error) {
	if dir := os.Getenv(EnvVar); dir != "" {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return "", fmt.Errorf("testrefs: %s=%q is not a directory", EnvVar, dir)
		}
		return dir, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("testrefs: %w", err)
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			refs := filepath.Join(dir, "..", "shared", "refs")
			if fi, err := os.Stat(refs); err != nil || !fi.IsDir() {
				return "", fmt.Errorf("testrefs: reference data not found at %s (set %s)", refs, EnvVar)
			}
			return filepath.Clean(refs), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testrefs: no go.mod above " + wd + " (set " + EnvVar + ")")
		}
		dir = parent
	}
}
