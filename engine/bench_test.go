package engine_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/phi4mac/phi4mac/engine"
	"github.com/phi4mac/phi4mac/engine/cpu"
)

// BenchmarkModel measures prefill and decode of the model named by
// $PHI4MAC_BENCH_MODEL (for example a `phi4mac synth --preset small` GGUF),
// with $PHI4MAC_BENCH_THREADS threads (default 2). It reports prefill and
// decode tokens/s and the decode's effective weight bandwidth.
func BenchmarkModel(b *testing.B) {
	path := os.Getenv("PHI4MAC_BENCH_MODEL")
	if path == "" {
		b.Skip("set PHI4MAC_BENCH_MODEL to a model file")
	}
	threads := 2
	if s := os.Getenv("PHI4MAC_BENCH_THREADS"); s != "" {
		if _, err := fmt.Sscan(s, &threads); err != nil {
			b.Fatal(err)
		}
	}
	m, err := engine.Load(context.Background(), path, engine.Options{Backend: cpu.New(cpu.Options{Threads: threads}), NoTokenizer: true})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	o := engine.BenchOptions{Prompt: 128, Gen: 32}
	if _, err := m.Bench(context.Background(), engine.BenchOptions{Prompt: 8, Gen: 2}); err != nil { // warm the page cache
		b.Fatal(err)
	}
	var r engine.BenchResult
	for b.Loop() {
		if r, err = m.Bench(context.Background(), o); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(r.PrefillTokS, "prefill-tok/s")
	b.ReportMetric(r.DecodeTokS, "decode-tok/s")
	b.ReportMetric(r.DecodeGBs, "decode-GB/s")
}
