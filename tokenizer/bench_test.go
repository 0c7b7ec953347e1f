package tokenizer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// benchCorpus builds a deterministic ~size-byte mixed corpus from material
// in the refs, as documents of about 4 KB: 60% English prose and markdown
// (the refs' README and provenance notes, public.jsonl prose, numbers, URLs,
// punctuation), 25% code (the refs' Python tools, JSON config, code cases),
// 15% other scripts (CJK, Korean, Arabic, Hebrew, Hindi, emoji, combining
// marks). public.jsonl's synthetic "long" stress cases are left out.
func benchCorpus(tb testing.TB, size int) []string {
	tb.Helper()
	refs := testrefs.Dir(tb)
	lines := func(paths ...string) []string {
		var out []string
		for _, p := range paths {
			data, err := os.ReadFile(filepath.Join(refs, p))
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, strings.SplitAfter(string(data), "\n")...)
		}
		return out
	}
	prose := lines("README.md", "tokenizer/SOURCES.md", "models/stories260K/PROVENANCE.md")
	code := lines("tools/make_tiny_phi3.py", "tools/make_micromini.py", "tools/phi3_numpy_ref.py",
		"tools/phi3_numpy_ref_longrope.py", "tools/dequant_gguf_to_f32.py", "tokenizer/phi4mini/tokenizer_config.json")
	var multi []string
	for _, c := range publicCases(tb) {
		switch c.Cat {
		case "prose", "contraction", "number", "url", "punct", "ws-mixed":
			prose = append(prose, c.Text+"\n")
		case "code-python", "code-go", "code-js", "code-other":
			code = append(code, strings.SplitAfter(c.Text+"\n", "\n")...)
		case "cjk", "korean", "arabic", "hebrew", "hindi", "other-scripts", "emoji", "combining", "rare-unicode":
			multi = append(multi, c.Text+"\n")
		}
	}
	for _, c := range chatCases(tb) {
		for _, m := range c.Messages {
			multi = append(multi, m.Content+"\n")
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var docs []string
	total := 0
	for total < size {
		var sb strings.Builder
		for sb.Len() < 4096 {
			pool := prose
			switch x := rng.IntN(100); {
			case x >= 85:
				pool = multi
			case x >= 60:
				pool = code
			}
			start := rng.IntN(len(pool))
			for i := start; i < min(start+1+rng.IntN(12), len(pool)); i++ {
				sb.WriteString(pool[i])
			}
		}
		docs = append(docs, sb.String())
		total += sb.Len()
	}
	return docs
}

var (
	corpusOnce sync.Once
	corpusDocs []string
)

func corpus(tb testing.TB) ([]string, string) {
	corpusOnce.Do(func() { corpusDocs = benchCorpus(tb, 10<<20) })
	return corpusDocs, strings.Join(corpusDocs, "")
}

func benchSources(b *testing.B) map[string]string {
	return map[string]string{
		"cl100k": testrefs.Path(b, "models", "tiny", "hf", "tokenizer.json"),
		"o200k":  testrefs.Path(b, "tokenizer", "phi4mini"),
	}
}

// BenchmarkEncode measures single-thread throughput on the 10 MB corpus.
func BenchmarkEncode(b *testing.B) {
	_, text := corpus(b)
	for _, name := range []string{"cl100k", "o200k"} {
		b.Run(name, func(b *testing.B) {
			tok := mustLoad(b, benchSources(b)[name])
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			cpu0 := cpuTime()
			ntok := 0
			for b.Loop() {
				ntok = len(tok.Encode(text, EncodeOptions{}))
			}
			cpu := cpuTime() - cpu0
			runtime.ReadMemStats(&ms1)
			mb := float64(len(text)) / (1 << 20) * float64(b.N)
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/mb, "allocs/MB")
			b.ReportMetric(float64(ntok)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
			// On a shared machine wall time includes waiting for a CPU; the
			// process's CPU time does not.
			if cpu > 0 {
				b.ReportMetric(float64(len(text))*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
			}
		})
	}
}

// BenchmarkEncodeBatch measures EncodeBatch on the corpus's 4 KB documents
// with GOMAXPROCS workers (use -cpu 1,2,4 to see the scaling).
func BenchmarkEncodeBatch(b *testing.B) {
	docs, text := corpus(b)
	tok := mustLoad(b, benchSources(b)["cl100k"])
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		tok.EncodeBatch(docs, EncodeOptions{})
	}
}

// BenchmarkEncodeLongLine measures 16 MB single-line inputs of one unit
// repeated, and a 100 MB line of one letter: the worst cases for merging
// (one huge piece).
func BenchmarkEncodeLongLine(b *testing.B) {
	tok := mustLoad(b, benchSources(b)["cl100k"])
	for _, c := range []struct {
		unit string
		size int
	}{{"a", 16 << 20}, {" ", 16 << 20}, {"1", 16 << 20}, {"日本", 16 << 20}, {"a", 100 << 20}} {
		text := strings.Repeat(c.unit, c.size/len(c.unit))
		b.Run(fmt.Sprintf("%s-%dMB", unitName(c.unit), c.size>>20), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				tok.Encode(text, EncodeOptions{})
			}
		})
	}
}

// cpuTime returns the CPU time the process has used (user + system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func unitName(s string) string {
	data, _ := json.Marshal(s)
	return string(data)
}

// TestBenchCorpusIDs checks the ids of the whole 10 MB benchmark corpus
// against official tiktoken (npm tiktoken@1.0.22 encode_ordinary on each
// document): sha256 of each document's ids joined by "," and "\n"-terminated.
// The benchmark measures exact tokenization, not an approximation.
func TestBenchCorpusIDs(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes 10 MB twice")
	}
	docs, _ := corpus(t)
	for _, c := range []struct {
		name, path string
		ntok       int
		sha        string
	}{
		{"cl100k", testrefs.Path(t, "models", "tiny", "hf", "tokenizer.json"), 3676634, "284e801d4c376b7740c290e70e528248cd85a6c119fd89e4366aff6ba33d7625"},
		{"o200k", testrefs.Path(t, "tokenizer", "phi4mini"), 3617725, "37cba5483cc29a25022743a3a6934cc0cdb918caacae29d92250557e9a5a5afe"},
	} {
		tok := mustLoad(t, c.path)
		h := sha256.New()
		n := 0
		var buf []byte
		for _, ids := range tok.EncodeBatch(docs, EncodeOptions{}) {
			buf = buf[:0]
			for i, id := range ids {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = strconv.AppendInt(buf, int64(id), 10)
			}
			h.Write(append(buf, '\n'))
			n += len(ids)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != c.sha || n != c.ntok {
			t.Errorf("%s: %d ids, sha256 %s; tiktoken gives %d ids, %s", c.name, n, got, c.ntok, c.sha)
		}
	}
}

// TestBenchCorpus checks the corpus is deterministic and round-trips.
func TestBenchCorpus(t *testing.T) {
	a := benchCorpus(t, 1<<20)
	b := benchCorpus(t, 1<<20)
	if strings.Join(a, "") != strings.Join(b, "") {
		t.Fatal("corpus is not deterministic")
	}
	tok := mustLoad(t, testrefs.Path(t, "models", "tiny", "hf", "tokenizer.json"))
	text := strings.Join(a, "")
	if tok.Decode(tok.Encode(text, EncodeOptions{})) != text {
		t.Fatal("corpus does not round-trip")
	}
	batch := tok.EncodeBatch(a, EncodeOptions{})
	for i, doc := range a {
		checkIDs(t, "batch", batch[i], tok.Encode(doc, EncodeOptions{}))
	}
}

// BenchmarkPretokenize measures the pre-tokenizer scanners alone.
func BenchmarkPretokenize(b *testing.B) {
	_, text := corpus(b)
	for _, p := range []Pattern{PatternCL100K, PatternO200K} {
		b.Run(p.String(), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			n := 0
			for b.Loop() {
				for i := 0; i < len(text); n++ {
					i = p.nextPiece(text, i)
				}
			}
			_ = n
		})
	}
}

// BenchmarkLoad measures loading the full vocabularies.
func BenchmarkLoad(b *testing.B) {
	for name, path := range map[string]string{
		"cl100k-tokenizer.json": testrefs.Path(b, "models", "tiny", "hf", "tokenizer.json"),
		"cl100k-gguf":           testrefs.Path(b, "models", "tiny", "phi3-random-tiny-Q4_K_M.gguf"),
		"o200k-vocab.json":      testrefs.Path(b, "tokenizer", "phi4mini"),
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Load(path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
