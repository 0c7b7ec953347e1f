//go:build linux

package weights

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// rss returns the resident file-backed and anonymous memory of this
// process in bytes, from /proc/self/status.
func rss(t *testing.T) (file, anon int64) {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch k {
		case "RssFile":
			file = n << 10
		case "RssAnon":
			anon = n << 10
		}
	}
	return file, anon
}

// TestOpenGGUFMapsLazily opens the 40 MB tiny Q4_K_M model and checks that
// only the header and metadata pages become resident; the tensor data is
// paged in when touched.
func TestOpenGGUFMapsLazily(t *testing.T) {
	if !mapped {
		t.Fatal("linux build does not map files")
	}
	p := testrefs.Path(t, "models/tiny/phi3-random-tiny-Q4_K_M.gguf")
	file0, anon0 := rss(t)
	g, err := OpenGGUF(p)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	file1, anon1 := rss(t)
	dataBytes := int64(g.Size() - g.DataOffset())
	const slack = 4 << 20
	t.Logf("file %d MB, metadata %.1f MB, tensor data %.1f MB", g.Size()>>20, float64(g.DataOffset())/(1<<20), float64(dataBytes)/(1<<20))
	t.Logf("after open: RssFile +%.1f MB, RssAnon +%.1f MB", float64(file1-file0)/(1<<20), float64(anon1-anon0)/(1<<20))
	if file1-file0 > int64(g.DataOffset())+slack {
		t.Errorf("open made %d file-backed bytes resident; metadata is only %d bytes", file1-file0, g.DataOffset())
	}
	var sum byte
	for _, tt := range g.Tensors() {
		for i := 0; i < len(tt.Data); i += 4096 {
			sum += tt.Data[i]
		}
	}
	file2, _ := rss(t)
	t.Logf("after touching every tensor page: RssFile +%.1f MB (checksum %d)", float64(file2-file0)/(1<<20), sum)
	if file2-file1 < dataBytes*9/10 {
		t.Errorf("touching the tensors added only %d resident bytes of %d: data does not come from the mapping?", file2-file1, dataBytes)
	}
}

func BenchmarkOpenGGUFTiny(b *testing.B) {
	p := testrefs.Path(b, "models/tiny/phi3-random-tiny-Q4_K_M.gguf")
	b.ReportAllocs()
	for b.Loop() {
		g, err := OpenGGUF(p)
		if err != nil {
			b.Fatal(err)
		}
		g.Close()
	}
}
