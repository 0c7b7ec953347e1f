package toolchain

import (
	"os"
	"path/filepath"
	"testing"
)

func TestClang(t *testing.T) {
	p, err := Clang()
	if err != nil {
		t.Fatal(err) // the tests need clang: `make deps`
	}
	v, err := Version(p)
	if err != nil || v < MinVersion {
		t.Fatalf("%s: version %d, %v", p, v, err)
	}
}

func TestClangOverride(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "not-clang")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'gcc (Debian) 12.2.0'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvVar, fake)
	if _, err := Clang(); err == nil {
		t.Errorf("%s=%s (not clang) accepted", EnvVar, fake)
	}
	t.Setenv(EnvVar, filepath.Join(t.TempDir(), "missing"))
	if _, err := Clang(); err == nil {
		t.Error("missing compiler accepted")
	}
}
