package weights

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/phi4mac/phi4mac/engine/quant"
	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// refGGUFs lists every GGUF shipped in the refs with facts to check.
var refGGUFs = []struct {
	path     string
	tensors  int
	arch     string
	name     string
	types    map[string]quant.Type // a few tensors and their types
	emb      []int                 // token_embd.weight shape
	vocabLen int
}{
	{"models/micro/phi3-random-micro-F32.gguf", 15, "phi3", "Random Phi4 Micro",
		map[string]quant.Type{"blk.0.attn_qkv.weight": quant.F32, "output_norm.weight": quant.F32}, []int{1024, 64}, 1024},
	{"models/micro/phi3-random-micro-F16.gguf", 15, "phi3", "Random Phi4 Micro",
		map[string]quant.Type{"blk.0.attn_qkv.weight": quant.F16, "output_norm.weight": quant.F32}, []int{1024, 64}, 1024},
	{"models/micro/phi3-random-micro-BF16.gguf", 15, "phi3", "Random Phi4 Micro",
		map[string]quant.Type{"blk.0.attn_qkv.weight": quant.BF16, "blk.1.ffn_norm.weight": quant.F32}, []int{1024, 64}, 1024},
	{"models/micro/phi3-random-micro-Q8_0.gguf", 15, "phi3", "Random Phi4 Micro",
		map[string]quant.Type{"blk.0.attn_qkv.weight": quant.Q8_0, "output.weight": quant.Q8_0}, []int{1024, 64}, 1024},
	{"models/micro/phi3-random-micro-Q4_0.gguf", 15, "phi3", "Random Phi4 Micro",
		map[string]quant.Type{"blk.0.attn_qkv.weight": quant.Q4_0, "output.weight": quant.Q8_0}, []int{1024, 64}, 1024},
	{"models/micro/phi3-random-micro-Q4_K_M.gguf", 15, "phi3", "Random Phi4 Micro",
		map[string]quant.Type{"token_embd.weight": quant.Q5_0, "output.weight": quant.Q8_0}, []int{1024, 64}, 1024},
	{"models/micromini/phi4mini-random-micromini-F32.gguf", 16, "phi3", "Random Phi4Mini Micromini",
		map[string]quant.Type{"rope_factors_long.weight": quant.F32}, []int{1024, 128}, 1024},
	{"models/micromini/phi4mini-random-micromini-Q8_0.gguf", 16, "phi3", "Random Phi4Mini Micromini",
		map[string]quant.Type{"token_embd.weight": quant.Q8_0}, []int{1024, 128}, 1024},
	{"models/tiny/phi3-random-tiny-Q4_K_M.gguf", 0, "phi3", "Random Phi4 Tiny",
		map[string]quant.Type{"output.weight": quant.Q6_K, "output_norm.weight": quant.F32}, []int{100352, 256}, 100352},
	{"models/stories260K/stories260K.gguf", 0, "llama", "", map[string]quant.Type{"token_embd.weight": quant.F32}, []int{512, 64}, 512},
}

func TestOpenGGUFRefs(t *testing.T) {
	for _, tc := range refGGUFs {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			g, err := OpenGGUF(testrefs.Path(t, tc.path))
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if v := g.Version(); v != 3 && v != 2 {
				t.Errorf("version %d", v)
			}
			if arch, _ := g.String("general.architecture"); arch != tc.arch {
				t.Errorf("architecture %q, want %q", arch, tc.arch)
			}
			if tc.name != "" {
				if name, _ := g.String("general.name"); name != tc.name {
					t.Errorf("general.name %q, want %q", name, tc.name)
				}
			}
			if tc.tensors > 0 && len(g.Tensors()) != tc.tensors {
				t.Errorf("%d tensors, want %d", len(g.Tensors()), tc.tensors)
			}
			for name, typ := range tc.types {
				tt, ok := g.Tensor(name)
				if !ok {
					t.Errorf("tensor %s missing", name)
					continue
				}
				if tt.Type != typ {
					t.Errorf("%s type %s, want %s", name, tt.Type, typ)
				}
			}
			emb, ok := g.Tensor("token_embd.weight")
			if !ok || !slicesEqual(emb.Shape, tc.emb) {
				t.Errorf("token_embd shape %v, want %v", emb.Shape, tc.emb)
			}
			toks, ok := g.Strings("tokenizer.ggml.tokens")
			if !ok || len(toks) != tc.vocabLen {
				t.Errorf("tokenizer.ggml.tokens: %d entries, want %d", len(toks), tc.vocabLen)
			}
			// Every tensor's data lies inside the mapping and has the right size.
			base := uintptr(unsafe.Pointer(unsafe.SliceData(g.data)))
			end := base + uintptr(len(g.data))
			for _, tt := range g.Tensors() {
				rb, err := tt.Type.RowBytes(tt.Shape[len(tt.Shape)-1])
				if err != nil {
					t.Fatal(err)
				}
				want := rb * (tt.Elements() / tt.Shape[len(tt.Shape)-1])
				if len(tt.Data) != want {
					t.Errorf("%s: %d bytes, want %d", tt.Name, len(tt.Data), want)
				}
				p := uintptr(unsafe.Pointer(unsafe.SliceData(tt.Data)))
				if p < base || p+uintptr(len(tt.Data)) > end {
					t.Errorf("%s: data does not alias the file mapping", tt.Name)
				}
				if (p-base)%uintptr(g.Alignment()) != 0 {
					t.Errorf("%s: data not aligned", tt.Name)
				}
			}
		})
	}
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestGGUFMetadataGetters(t *testing.T) {
	g, err := OpenGGUF(testrefs.Path(t, "models/micromini/phi4mini-random-micromini-F32.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if n, ok := g.Uint("phi3.block_count"); !ok || n != 2 {
		t.Errorf("phi3.block_count = %d, %v", n, ok)
	}
	if n, ok := g.Uint("phi3.rope.dimension_count"); !ok || n != 48 {
		t.Errorf("phi3.rope.dimension_count = %d, %v", n, ok)
	}
	if f, ok := g.Float("phi3.rope.freq_base"); !ok || f != 10000 {
		t.Errorf("phi3.rope.freq_base = %v, %v", f, ok)
	}
	if f, ok := g.Float("phi3.attention.layer_norm_rms_epsilon"); !ok || float32(f) != 1e-5 {
		t.Errorf("eps = %v, %v", f, ok)
	}
	if pre, ok := g.String("tokenizer.ggml.pre"); !ok || pre != "gpt-4o" {
		t.Errorf("tokenizer.ggml.pre = %q", pre)
	}
	if types, ok := g.Ints("tokenizer.ggml.token_type"); !ok || len(types) != 1024 || types[0] != 1 || types[1023] != 5 {
		t.Errorf("token_type: ok=%v len=%d", ok, len(types))
	}
	if _, ok := g.Uint("general.name"); ok {
		t.Error("Uint on a string key succeeded")
	}
	if _, ok := g.String("no.such.key"); ok {
		t.Error("missing key found")
	}
	if len(g.Keys()) == 0 || g.Keys()[0] != "general.architecture" {
		t.Errorf("keys start %v", g.Keys()[:1])
	}
	long, ok := g.Tensor("rope_factors_long.weight")
	if !ok || !slicesEqual(long.Shape, []int{24}) {
		t.Fatalf("rope_factors_long: %v", long)
	}
}

// ggufBuilder assembles small GGUF files by hand for error tests.
type ggufBuilder struct{ bytes.Buffer }

func (b *ggufBuilder) u32(v uint32) *ggufBuilder { binary.Write(b, binary.LittleEndian, v); return b }
func (b *ggufBuilder) u64(v uint64) *ggufBuilder { binary.Write(b, binary.LittleEndian, v); return b }
func (b *ggufBuilder) str(s string) *ggufBuilder { b.u64(uint64(len(s))); b.WriteString(s); return b }

func header(version uint32, nTensors, nKV uint64) *ggufBuilder {
	b := &ggufBuilder{}
	b.WriteString("GGUF")
	return b.u32(version).u64(nTensors).u64(nKV)
}

func TestGGUFBadInput(t *testing.T) {
	tensor := func(b *ggufBuilder, name string, typ uint32, off uint64, dims ...uint64) *ggufBuilder {
		b.str(name).u32(uint32(len(dims)))
		for _, d := range dims {
			b.u64(d)
		}
		return b.u32(typ).u64(off)
	}
	pad := func(b *ggufBuilder, n int) []byte {
		for b.Len()%32 != 0 {
			b.WriteByte(0)
		}
		b.Write(make([]byte, n))
		return b.Bytes()
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "bad magic"},
		{"magic", []byte("GGML\x03\x00\x00\x00"), "bad magic"},
		{"v1", header(1, 0, 0).Bytes(), "version 1"},
		{"bigendian", append([]byte("GGUF"), 0, 0, 0, 3), "big-endian"},
		{"v9", header(9, 0, 0).Bytes(), "unsupported GGUF version 9"},
		{"truncated header", []byte("GGUF\x03\x00\x00\x00\x01"), "end of file"},
		{"huge tensor count", header(3, 1<<60, 0).Bytes(), "tensor count"},
		{"huge kv count", header(3, 0, 1<<40).Bytes(), "metadata count"},
		{"huge string", header(3, 0, 1).str("k").u32(uint32(TypeString)).u64(1 << 62).Bytes(), "string length"},
		{"huge array", header(3, 0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeUint64)).u64(1 << 40).Bytes(), "array length"},
		{"bad value type", header(3, 0, 1).str("k").u32(99).Bytes(), "unknown metadata value type 99"},
		{"bad bool", append(header(3, 0, 1).str("k").u32(uint32(TypeBool)).Bytes(), 7), "bool"},
		{"bad alignment", header(3, 0, 1).str("general.alignment").u32(uint32(TypeUint32)).u32(3).Bytes(), "alignment"},
		{"zero alignment", header(3, 0, 1).str("general.alignment").u32(uint32(TypeUint32)).u32(0).Bytes(), "power-of-two"},
		{"alignment not uint32", header(3, 0, 1).str("general.alignment").u32(uint32(TypeUint64)).u64(32).Bytes(), "power-of-two uint32"},
		{"huge alignment", header(3, 0, 1).str("general.alignment").u32(uint32(TypeUint32)).u32(1 << 31).Bytes(), "power-of-two"},
		{"unknown tensor type", pad(tensor(header(3, 1, 0), "blk.0.x", 3, 0, 32), 32), `tensor "blk.0.x" has unsupported type type(3)`},
		{"too many dims", pad(tensor(header(3, 1, 0), "t", 0, 0, 1, 1, 1, 1, 1), 4), "5 dimensions"},
		{"overflow", pad(tensor(header(3, 1, 0), "t", 0, 0, 1<<30, 1<<30, 1<<30), 4), "overflow"},
		{"block multiple", pad(tensor(header(3, 1, 0), "t", 8, 0, 16), 34), "not a multiple of the Q8_0 block size"},
		{"past end", pad(tensor(header(3, 1, 0), "t", 0, 0, 8), 16), `tensor "t": data [0, +32) extends past the end`},
		{"misaligned", pad(tensor(header(3, 1, 0), "t", 0, 4, 1), 64), "not a multiple of the alignment"},
		{"dup tensor", pad(tensor(tensor(header(3, 2, 0), "t", 0, 0, 1), "t", 0, 32, 1), 64), `tensor "t" appears twice`},
		{"overlap", pad(tensor(tensor(header(3, 2, 0), "a", 0, 0, 16), "b", 0, 32, 16), 96), `tensor "b" overlaps tensor "a"`},
		{"overlap reversed", pad(tensor(tensor(header(3, 2, 0), "a", 0, 32, 16), "b", 0, 0, 16), 96), `tensor "a" overlaps tensor "b"`},
	}
	// An empty tensor may share its offset with another tensor.
	for _, order := range [][2]string{{"a", "e"}, {"e", "a"}} {
		dims := map[string]uint64{"a": 16, "e": 0}
		b := tensor(tensor(header(3, 2, 0), order[0], 0, 0, dims[order[0]]), order[1], 0, 0, dims[order[1]])
		if _, err := OpenGGUFBytes(pad(b, 64)); err != nil {
			t.Errorf("empty tensor at a used offset (%v): %v", order, err)
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenGGUFBytes(tc.data)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestGGUFDuplicateKey(t *testing.T) {
	b := header(3, 0, 2)
	b.str("k").u32(uint32(TypeUint8)).WriteByte(1)
	b.str("k").u32(uint32(TypeUint8)).WriteByte(2)
	if _, err := OpenGGUFBytes(b.Bytes()); err == nil || !strings.Contains(err.Error(), `"k" appears twice`) {
		t.Fatalf("err = %v", err)
	}
}

func TestGGUFTruncatedRefs(t *testing.T) {
	data, err := os.ReadFile(testrefs.Path(t, "models/micro/phi3-random-micro-Q4_0.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 3, 20, 100, 1000, 10000, len(data) / 2, len(data) - 1} {
		if _, err := OpenGGUFBytes(data[:n]); err == nil {
			t.Errorf("truncated to %d bytes: no error", n)
		}
	}
	if _, err := OpenGGUFBytes(data); err != nil {
		t.Fatal(err)
	}
}

func TestOpenGGUFErrorsNameFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.gguf")
	if err := os.WriteFile(p, []byte("GGUF\x03\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := OpenGGUF(p)
	if err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("err = %v, want it to name %s", err, p)
	}
	if _, err := OpenGGUF(filepath.Join(t.TempDir(), "missing.gguf")); err == nil {
		t.Fatal("missing file: no error")
	}
}
