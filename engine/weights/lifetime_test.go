package weights

import (
	"encoding/binary"
	"math"
	"os"
	"strings"
	"testing"
	"unsafe"

	"github.com/phi4mac/phi4mac/engine/quant"
	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// TestUseAfterClose checks that a Tensor kept past Close no longer points
// into the unmapped file (a use would fault and kill the process): its
// Data is nil, so decoding it fails with an error. Closing twice is a no-op.
func TestUseAfterClose(t *testing.T) {
	open := map[string]func() (Source, error){
		"gguf": func() (Source, error) {
			return OpenGGUF(testrefs.Path(t, "models/micro/phi3-random-micro-Q4_K_M.gguf"))
		},
		"safetensors": func() (Source, error) {
			return OpenSafetensors(testrefs.Path(t, "models/micro/hf"))
		},
	}
	for name, openFn := range open {
		t.Run(name, func(t *testing.T) {
			src, err := openFn()
			if err != nil {
				t.Fatal(err)
			}
			kept := src.Tensors()[0]
			if len(kept.Data) == 0 {
				t.Fatal("tensor has no data before Close")
			}
			if err := src.Close(); err != nil {
				t.Fatal(err)
			}
			if err := src.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if kept.Data != nil {
				t.Fatalf("%s: Data still refers to the unmapped file after Close", kept.Name)
			}
			n := kept.Type.BlockSize()
			if err := quant.Dequantize(kept.Type, kept.Data, make([]float32, n)); err == nil {
				t.Fatal("decoding a closed tensor: no error")
			}
		})
	}
}

// truncationPoints returns the prefix lengths to test for a file whose
// header (everything the parser decodes) ends at headerEnd: every length
// up to headerEnd, and in the data section the bytes around each tensor's
// start and end plus every 4096th length. Past the header the parser only
// compares offsets with the file size, so these cover every outcome.
func truncationPoints(size, headerEnd int, spans [][2]int) []int {
	var ns []int
	for n := range min(headerEnd+1, size) {
		ns = append(ns, n)
	}
	for n := headerEnd; n < size; n += 4096 {
		ns = append(ns, n)
	}
	for _, s := range spans {
		for _, n := range []int{s[0], s[0] + 1, s[1] - 1, s[1]} {
			if n > headerEnd && n < size {
				ns = append(ns, n)
			}
		}
	}
	return ns
}

// TestGGUFEveryPrefix cuts real files at every length through the header
// and at every tensor boundary: each cut that loses a byte of metadata or
// tensor data is an error naming the problem; none panics. (A cut that only
// drops padding after the last tensor loses nothing and may be accepted.)
func TestGGUFEveryPrefix(t *testing.T) {
	files := []string{"models/micro/phi3-random-micro-Q4_K_M.gguf"}
	if !testing.Short() {
		files = append(files, "models/stories260K/stories260K.gguf", "models/micromini/phi4mini-random-micromini-Q8_0.gguf")
	}
	for _, p := range files {
		data, err := os.ReadFile(testrefs.Path(t, p))
		if err != nil {
			t.Fatal(err)
		}
		g, err := OpenGGUFBytes(data)
		if err != nil {
			t.Fatal(err)
		}
		var spans [][2]int
		end := g.DataOffset()
		for _, tt := range g.Tensors() {
			off, _ := g.TensorOffset(tt.Name)
			s := g.DataOffset() + int(off)
			spans = append(spans, [2]int{s, s + len(tt.Data)})
			end = max(end, s+len(tt.Data))
		}
		for _, n := range truncationPoints(len(data), g.DataOffset(), spans) {
			_, err := OpenGGUFBytes(data[:n])
			if n < end && err == nil {
				t.Fatalf("%s cut to %d of %d bytes: no error", p, n, len(data))
			}
			if n >= end && err != nil {
				t.Fatalf("%s cut to %d bytes (all tensor data present): %v", p, n, err)
			}
			if err != nil && !strings.Contains(err.Error(), "<memory>") {
				t.Fatalf("error does not name the file: %v", err)
			}
		}
	}
}

// TestSafetensorsEveryPrefix does the same for safetensors files.
func TestSafetensorsEveryPrefix(t *testing.T) {
	for _, p := range []string{"models/micro/hf/model.safetensors", "models/micromini/hf/model.safetensors"} {
		data, err := os.ReadFile(testrefs.Path(t, p))
		if err != nil {
			t.Fatal(err)
		}
		tensors, _, err := parseSafetensors(data)
		if err != nil {
			t.Fatal(err)
		}
		hdr := 8 + int(binary.LittleEndian.Uint64(data))
		var spans [][2]int
		end := hdr
		for _, tt := range tensors {
			s := hdr + offsetIn(data, tt.Data)
			spans = append(spans, [2]int{s, s + len(tt.Data)})
			end = max(end, s+len(tt.Data))
		}
		for _, n := range truncationPoints(len(data), hdr, spans) {
			_, _, err := parseSafetensors(data[:n])
			if n < end && err == nil {
				t.Fatalf("%s cut to %d of %d bytes: no error", p, n, len(data))
			}
			if n >= end && err != nil {
				t.Fatalf("%s cut to %d bytes: %v", p, n, err)
			}
		}
	}
}

// offsetIn returns the offset of sub within the data section that follows
// the header of file (sub aliases file).
func offsetIn(file, sub []byte) int {
	if len(sub) == 0 {
		return 0
	}
	hdr := 8 + int(binary.LittleEndian.Uint64(file))
	return int(uintptr(unsafe.Pointer(&sub[0]))-uintptr(unsafe.Pointer(&file[0]))) - hdr
}

// TestShapesFitInt checks that a dimension too large for this platform's
// int is an error, not a silently truncated Shape (possible on 32-bit
// platforms, where a zero-sized tensor could carry a dimension of 2^32+1).
func TestShapesFitInt(t *testing.T) {
	for _, dim := range []uint64{1<<32 + 32, uint64(math.MaxInt)/8 + 32, 1 << 62} {
		b := header(3, 1, 0).str("t").u32(2).u64(dim).u64(0).u32(0).u64(0)
		for b.Len()%32 != 0 {
			b.WriteByte(0)
		}
		g, err := OpenGGUFBytes(b.Bytes())
		if err == nil {
			tt := g.Tensors()[0]
			if uint64(tt.Shape[1]) != dim || tt.Shape[0] != 0 {
				t.Errorf("dims [%d 0]: shape %v", dim, tt.Shape)
			}
			if dim > maxElems {
				t.Errorf("dims [%d 0] accepted; the limit is %d", dim, maxElems)
			}
		} else if dim <= maxElems {
			t.Errorf("dims [%d 0]: %v", dim, err)
		}
		js := `{"t":{"dtype":"F32","shape":[0,` + uitoa(dim) + `],"data_offsets":[0,0]}}`
		ts, _, err := parseSafetensors(stFile(js, 0))
		if err == nil && (uint64(ts[0].Shape[1]) != dim || dim > maxElems) {
			t.Errorf("safetensors shape [0 %d]: accepted as %v", dim, ts[0].Shape)
		}
	}
}

func uitoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}
