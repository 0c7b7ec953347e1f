package testrefs

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDirFindsREADME(t *testing.T) {
	dir := Dir(t)
	if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
		t.Fatalf("refs dir %s has no README.md: %v", dir, err)
	}
}

func TestEnvOverride(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv(EnvVar, tmp)
	if got := Dir(t); got != tmp {
		t.Fatalf("Dir = %q, want %q", got, tmp)
	}
	t.Setenv(EnvVar, filepath.Join(tmp, "missing"))
	if _, err := Find(); err == nil {
		t.Fatal("Find with missing override dir: want error")
	}
}
