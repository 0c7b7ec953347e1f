package weights

import (
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/phi4mac/phi4mac/engine/quant"
	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// TestWriteGGUFReproducesRefs re-serialises every shipped GGUF (written by
// llama.cpp's gguf-py and llama-quantize) and expects identical bytes.
func TestWriteGGUFReproducesRefs(t *testing.T) {
	for _, tc := range refGGUFs {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			p := testrefs.Path(t, tc.path)
			if testing.Short() && strings.Contains(p, "tiny") {
				t.Skip("40 MB file in -short mode")
			}
			g, err := OpenGGUF(p)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			var buf bytes.Buffer
			if err := WriteGGUF(&buf, g.KVs(), g.Tensors()); err != nil {
				t.Fatal(err)
			}
			want := mustRead(t, p)
			if !bytes.Equal(buf.Bytes(), want) {
				t.Fatalf("rewritten file differs at byte %d (%d vs %d bytes)", firstDiffBytes(buf.Bytes(), want), buf.Len(), len(want))
			}
		})
	}
}

func firstDiffBytes(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestGGUFRoundTripAllValueTypes writes every metadata type, including
// nested arrays, and reads it back.
func TestGGUFRoundTripAllValueTypes(t *testing.T) {
	meta := []KV{
		{"general.alignment", Uint32Value(64)},
		{"u8", Value{Type: TypeUint8, V: uint8(200)}},
		{"i8", Value{Type: TypeInt8, V: int8(-100)}},
		{"u16", Value{Type: TypeUint16, V: uint16(60000)}},
		{"i16", Value{Type: TypeInt16, V: int16(-30000)}},
		{"u32", Uint32Value(4000000000)},
		{"i32", Int32Value(-2000000000)},
		{"f32", Float32Value(1.5)},
		{"bool", BoolValue(true)},
		{"str", StringValue("héllo")},
		{"u64", Uint64Value(1 << 63)},
		{"i64", Value{Type: TypeInt64, V: int64(-1 << 62)}},
		{"f64", Value{Type: TypeFloat64, V: 2.25}},
		{"a.u8", Value{Type: TypeArray, Elem: TypeUint8, V: []uint8{1, 2}}},
		{"a.i8", Value{Type: TypeArray, Elem: TypeInt8, V: []int8{-1}}},
		{"a.u16", Value{Type: TypeArray, Elem: TypeUint16, V: []uint16{7}}},
		{"a.i16", Value{Type: TypeArray, Elem: TypeInt16, V: []int16{-7}}},
		{"a.u32", Value{Type: TypeArray, Elem: TypeUint32, V: []uint32{9}}},
		{"a.i32", Int32sValue([]int32{-9, 9})},
		{"a.f32", Float32sValue([]float32{0.5})},
		{"a.bool", Value{Type: TypeArray, Elem: TypeBool, V: []bool{true, false}}},
		{"a.str", StringsValue([]string{"a", "", "c"})},
		{"a.u64", Value{Type: TypeArray, Elem: TypeUint64, V: []uint64{1 << 60}}},
		{"a.i64", Value{Type: TypeArray, Elem: TypeInt64, V: []int64{-5}}},
		{"a.f64", Value{Type: TypeArray, Elem: TypeFloat64, V: []float64{3.5}}},
		{"a.nested", Value{Type: TypeArray, Elem: TypeArray, V: []Value{
			StringsValue([]string{"x"}), Int32sValue([]int32{1, 2, 3}),
			{Type: TypeArray, Elem: TypeArray, V: []Value{Float32sValue([]float32{})}}}}},
	}
	tensors := []*Tensor{
		{Name: "a", Type: quant.F32, Shape: []int{3}, Data: bytes.Repeat([]byte{1}, 12)},
		{Name: "b", Type: quant.Q8_0, Shape: []int{2, 64}, Data: bytes.Repeat([]byte{2}, 4*34)},
		{Name: "c", Type: quant.F16, Shape: []int{1, 2, 3, 4}, Data: bytes.Repeat([]byte{3}, 48)},
	}
	var buf bytes.Buffer
	if err := WriteGGUF(&buf, meta, tensors); err != nil {
		t.Fatal(err)
	}
	g, err := OpenGGUFBytes(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if g.Alignment() != 64 || g.DataOffset()%64 != 0 {
		t.Errorf("alignment %d, data offset %d", g.Alignment(), g.DataOffset())
	}
	if !reflect.DeepEqual(g.KVs(), meta) {
		t.Errorf("metadata differs:\n got %v\nwant %v", g.KVs(), meta)
	}
	for i, tt := range g.Tensors() {
		w := tensors[i]
		if tt.Name != w.Name || tt.Type != w.Type || !slicesEqual(tt.Shape, w.Shape) || !bytes.Equal(tt.Data, w.Data) {
			t.Errorf("tensor %d: %+v, want %+v", i, tt, w)
		}
	}
	if u, ok := g.Uint("u64"); !ok || u != 1<<63 {
		t.Errorf("Uint(u64) = %d", u)
	}
	if _, ok := g.Uint("i8"); ok {
		t.Error("Uint of a negative int8 succeeded")
	}
	if i, ok := g.Ints("a.i32"); !ok || !reflect.DeepEqual(i, []int64{-9, 9}) {
		t.Errorf("Ints = %v", i)
	}
	if f, ok := g.Floats("a.f32"); !ok || f[0] != 0.5 {
		t.Errorf("Floats = %v", f)
	}
	if b, ok := g.Bool("bool"); !ok || !b {
		t.Error("Bool")
	}
}

func TestGGUFWriterErrors(t *testing.T) {
	var buf bytes.Buffer
	w := NewGGUFWriter(&buf)
	if err := w.SetMeta("k", Value{Type: TypeUint32, V: "no"}); err == nil {
		t.Error("mismatched value type accepted")
	}
	if err := w.SetMeta("general.alignment", Uint32Value(3)); err == nil {
		t.Error("alignment 3 accepted")
	}
	if err := w.SetMeta("general.alignment", Uint32Value(1<<31)); err == nil {
		t.Error("alignment 2^31 accepted (the reader refuses it)")
	}
	if err := w.AddTensor("t", quant.Q8_0, []int{2, 20}); err == nil {
		t.Error("row not a multiple of the block accepted")
	}
	if err := w.AddTensor("t", quant.Type(77), []int{4}); err == nil {
		t.Error("unknown type accepted")
	}
	if err := w.AddTensor("t", quant.F32, []int{4}); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("t", quant.F32, []int{4}); err == nil {
		t.Error("duplicate tensor accepted")
	}
	if err := w.AddTensor("u", quant.F32, []int{2}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTensor("u", make([]byte, 8)); err == nil {
		t.Error("out-of-order write accepted")
	}
	if err := w.WriteTensor("t", make([]byte, 15)); err == nil {
		t.Error("short data accepted")
	}
	if err := w.WriteTensor("t", make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	if err := w.SetMeta("late", BoolValue(true)); err == nil {
		t.Error("metadata after header accepted")
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), `"u" declared but not written`) {
		t.Errorf("Close = %v", err)
	}
}
