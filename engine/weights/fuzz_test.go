package weights

import (
	"bytes"
	"os"
	"runtime/metrics"
	"testing"

	"github.com/phi4mac/phi4mac/engine/quant"
	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// heapAllocs returns the cumulative bytes allocated on the heap.
func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// checkAllocBound fails if parsing n input bytes allocated more than a
// small multiple of n: every length in the file is bounded by the bytes
// that remain, so no input can make the reader allocate gigabytes.
func checkAllocBound(t *testing.T, before uint64, n int) {
	if got, limit := heapAllocs()-before, uint64(64*n+4<<20); got > limit {
		t.Fatalf("parsing %d bytes allocated %d bytes (limit %d)", n, got, limit)
	}
}

func addFileSeeds(f *testing.F, paths ...string) {
	for _, p := range paths {
		data, err := os.ReadFile(testrefs.Path(f, p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		for _, n := range []int{64, 1024, 8192} {
			if n < len(data) {
				f.Add(data[:n])
			}
		}
	}
}

// The fuzz targets are seeded with real model files of 0.2-1 MB. Run them
// with a bounded minimization, e.g.
//
//	go test ./engine/weights -run XXX -fuzz FuzzGGUF -fuzztime 60s -fuzzminimizetime 10x
//
// With the default (60 s per input), minimizing one interesting input of
// that size takes the whole run: the fuzzer reports "execs: 10" for a
// minute and tests almost nothing.

// FuzzGGUF checks that OpenGGUFBytes never panics or over-allocates, and
// that whatever it accepts decodes and survives a write/read round trip.
func FuzzGGUF(f *testing.F) {
	addFileSeeds(f,
		"models/micro/phi3-random-micro-Q4_0.gguf",
		"models/micro/phi3-random-micro-Q4_K_M.gguf",
		"models/micromini/phi4mini-random-micromini-Q8_0.gguf",
		"models/stories260K/stories260K.gguf",
	)
	// A small file with every metadata type and several tensor types.
	var buf bytes.Buffer
	meta := []KV{
		{"general.alignment", Uint32Value(16)},
		{"a", Value{Type: TypeArray, Elem: TypeArray, V: []Value{StringsValue([]string{"x", "yz"}), Int32sValue([]int32{1})}}},
		{"b", BoolValue(true)}, {"f", Value{Type: TypeFloat64, V: 1.5}}, {"i", Value{Type: TypeInt8, V: int8(-3)}},
	}
	tensors := []*Tensor{
		{Name: "q4k", Type: quant.Q4_K, Shape: []int{1, 256}, Data: make([]byte, 144)},
		{Name: "q6k", Type: quant.Q6_K, Shape: []int{256}, Data: make([]byte, 210)},
		{Name: "q5", Type: quant.Q5_0, Shape: []int{32}, Data: make([]byte, 22)},
	}
	if err := WriteGGUF(&buf, meta, tensors); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		before := heapAllocs()
		g, err := OpenGGUFBytes(data)
		checkAllocBound(t, before, len(data))
		if err != nil {
			return
		}
		// Every tensor lies inside the input and decodes without panicking.
		for _, tt := range g.Tensors() {
			n := min(tt.Elements(), 512)
			n -= n % tt.Type.BlockSize()
			if err := quant.Dequantize(tt.Type, tt.Data, make([]float32, n)); err != nil {
				t.Fatalf("%s: %v", tt.Name, err)
			}
		}
		for _, k := range g.Keys() {
			g.String(k)
			g.Uint(k)
			g.Float(k)
			g.Ints(k)
			g.Floats(k)
			g.Strings(k)
		}
		// What was read can be written and reads back the same.
		var out bytes.Buffer
		if err := WriteGGUF(&out, g.KVs(), g.Tensors()); err != nil {
			t.Fatalf("rewrite: %v", err)
		}
		g2, err := OpenGGUFBytes(out.Bytes())
		if err != nil {
			t.Fatalf("reread: %v", err)
		}
		if len(g2.Tensors()) != len(g.Tensors()) || len(g2.Keys()) != len(g.Keys()) {
			t.Fatal("round trip changed the file")
		}
		for i, tt := range g.Tensors() {
			if !bytes.Equal(tt.Data, g2.Tensors()[i].Data) {
				t.Fatalf("%s: data changed in round trip", tt.Name)
			}
		}
	})
}

// FuzzSafetensors checks that parseSafetensors never panics or
// over-allocates and that every tensor it accepts has the bytes its shape
// needs.
func FuzzSafetensors(f *testing.F) {
	addFileSeeds(f, "models/micro/hf/model.safetensors", "models/micromini/hf/model.safetensors")
	var buf bytes.Buffer
	err := WriteSafetensors(&buf, []*Tensor{
		{Name: "a", Type: quant.F16, Shape: []int{2, 2}, Data: make([]byte, 8)},
		{Name: "b\u00e9", Type: quant.F32, Shape: []int{}, Data: make([]byte, 4)},
	}, map[string]string{"format": "pt"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		before := heapAllocs()
		tensors, _, err := parseSafetensors(data)
		checkAllocBound(t, before, len(data))
		if err != nil {
			return
		}
		for _, tt := range tensors {
			if len(tt.Data) != tt.Elements()*tt.Type.BlockBytes() {
				t.Fatalf("%s: %d bytes for %v", tt.Name, len(tt.Data), tt.Shape)
			}
			n := min(tt.Elements(), 512)
			if err := quant.Dequantize(tt.Type, tt.Data, make([]float32, n)); err != nil {
				t.Fatalf("%s: %v", tt.Name, err)
			}
		}
	})
}
