package engine_test

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/cpu"
	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// rss returns the process's resident set size in bytes (Linux).
func rss(t *testing.T) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status on this OS")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("VmRSS not found")
	return 0
}

// TestZeroCopyLoad loads the 41 MB tiny Q4_K_M GGUF and checks that resident
// memory grows by far less than the file: the weights are mapped, not read,
// and pages arrive only when a forward pass touches them. It also reports
// the time to the first token.
func TestZeroCopyLoad(t *testing.T) {
	path := filepath.Join(testrefs.Dir(t), "models/tiny/phi3-random-tiny-Q4_K_M.gguf")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	before := rss(t)
	t0 := time.Now()
	m, err := engine.Load(context.Background(), path, engine.Options{Backend: cpu.New(cpu.Options{Threads: 2}), NoTokenizer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	loadTime := time.Since(t0)
	grown := rss(t) - before
	if grown > fi.Size()/4 {
		t.Errorf("loading a %d-byte model grew resident memory by %d bytes: weights were copied", fi.Size(), grown)
	}
	s, err := m.NewSession(engine.SessionOptions{Ctx: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t1 := time.Now()
	var first time.Duration
	if _, err := s.Generate(context.Background(), engine.Request{Prompt: []int{100257, 9906, 1917}, MaxTokens: 1}, func(engine.Token) error {
		first = time.Since(t1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("tiny Q4_K_M (%d MB): load %v (resident +%d KB), first token %v after a 3-token prompt; resident after it +%d KB",
		fi.Size()>>20, loadTime, grown>>10, first, (rss(t)-before)>>10)
}
