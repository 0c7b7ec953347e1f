// Package toolchain finds the clang compiler (version 15 or later) that the
// .metal check and the Metal emulator need.
package toolchain

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// MinVersion is the oldest clang major version that works: _Float16 on
// x86-64 and C++ for OpenCL 2021 arrived in clang 15.
const MinVersion = 15

// EnvVar names the environment variable that overrides the search with an
// explicit compiler path.
const EnvVar = "PHI4MAC_CLANG"

// ErrNotFound reports that no suitable clang is installed.
var ErrNotFound = errors.New("clang >= 15 not found (install clang-15 or clang-16: `make deps`, or set " + EnvVar + ")")

var candidates = []string{"clang++-19", "clang++-18", "clang++-17", "clang++-16", "clang++-15", "clang++"}

var versionRE = regexp.MustCompile(`clang version (\d+)\.`)

// Clang returns the path of a clang++ driver of version MinVersion or later,
// preferring $PHI4MAC_CLANG, then versioned names, then plain clang++.
func Clang() (string, error) {
	if p := os.Getenv(EnvVar); p != "" {
		v, err := version(p)
		if err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvVar, p, err)
		}
		if v < MinVersion {
			return "", fmt.Errorf("%s=%s: clang %d, need %d or later", EnvVar, p, v, MinVersion)
		}
		return p, nil
	}
	for _, name := range candidates {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if v, err := version(p); err == nil && v >= MinVersion {
			return p, nil
		}
	}
	return "", ErrNotFound
}

// Version returns the clang major version of the driver at path.
func Version(path string) (int, error) { return version(path) }

func version(path string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return 0, fmt.Errorf("run %s --version: %w", path, err)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("%s: not clang: %q", path, firstLine(out))
	}
	return strconv.Atoi(string(m[1]))
}

func firstLine(b []byte) string {
	for i, c := range b {
		if c == '\n' {
			return string(b[:i])
		}
	}
	return string(b)
}
