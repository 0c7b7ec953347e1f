package weights

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unsafe"

	"github.com/phi4mac/phi4mac/engine/quant"
	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// hfToGGUF maps Phi-3 HF tensor names to llama.cpp's GGUF names.
func hfToGGUF(name string) string {
	r := strings.NewReplacer(
		"model.embed_tokens.weight", "token_embd.weight",
		"model.norm.weight", "output_norm.weight",
		"lm_head.weight", "output.weight",
		"model.layers.", "blk.",
		".input_layernorm.", ".attn_norm.",
		".post_attention_layernorm.", ".ffn_norm.",
		".self_attn.qkv_proj.", ".attn_qkv.",
		".self_attn.o_proj.", ".attn_output.",
		".mlp.gate_up_proj.", ".ffn_up.",
		".mlp.down_proj.", ".ffn_down.",
	)
	return r.Replace(name)
}

func TestSafetensorsMatchesGGUF(t *testing.T) {
	for _, tc := range []struct{ hf, gguf string }{
		{"models/micro/hf", "models/micro/phi3-random-micro-F32.gguf"},
		{"models/micromini/hf/model.safetensors", "models/micromini/phi4mini-random-micromini-F32.gguf"},
	} {
		st, err := OpenSafetensors(testrefs.Path(t, tc.hf))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		g, err := OpenGGUF(testrefs.Path(t, tc.gguf))
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		if got := st.Metadata()["format"]; got != "pt" {
			t.Errorf("%s: __metadata__ format %q", tc.hf, got)
		}
		for _, tt := range st.Tensors() {
			if tt.Type != quant.BF16 {
				t.Errorf("%s: %s type %s", tc.hf, tt.Name, tt.Type)
			}
			gt, ok := g.Tensor(hfToGGUF(tt.Name))
			if !ok {
				t.Fatalf("%s: no GGUF tensor for %s", tc.hf, tt.Name)
			}
			if !slicesEqual(tt.Shape, gt.Shape) {
				t.Errorf("%s: shape %v, GGUF %v", tt.Name, tt.Shape, gt.Shape)
			}
			a, b := make([]float32, tt.Elements()), make([]float32, gt.Elements())
			if err := quant.Dequantize(tt.Type, tt.Data, a); err != nil {
				t.Fatal(err)
			}
			if err := quant.Dequantize(gt.Type, gt.Data, b); err != nil {
				t.Fatal(err)
			}
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("%s[%d]: %v vs GGUF %v", tt.Name, i, a[i], b[i])
				}
			}
		}
	}
}

func TestSafetensorsZeroCopy(t *testing.T) {
	p := testrefs.Path(t, "models/micro/hf/model.safetensors")
	st, err := OpenSafetensors(p)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fi, _ := os.Stat(p)
	ts := st.Tensors()
	// All tensors lie in one contiguous range no larger than the file, in
	// data order: they alias the single mapping.
	first := uintptr(unsafe.Pointer(unsafe.SliceData(ts[0].Data)))
	last := ts[len(ts)-1]
	end := uintptr(unsafe.Pointer(unsafe.SliceData(last.Data))) + uintptr(len(last.Data))
	if end-first > uintptr(fi.Size()) {
		t.Fatalf("tensor data spans %d bytes, file is %d: not one mapping", end-first, fi.Size())
	}
	if !mapped {
		return
	}
	header := binary.LittleEndian.Uint64(mustRead(t, p)[:8])
	if end-first != uintptr(fi.Size())-8-uintptr(header) {
		t.Fatalf("tensor data spans %d bytes, want %d", end-first, uintptr(fi.Size())-8-uintptr(header))
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWriteSafetensorsReproducesReference re-serialises the micro and
// micromini safetensors (written by the reference Python generator) and
// expects identical bytes.
func TestWriteSafetensorsReproducesReference(t *testing.T) {
	for _, rel := range []string{"models/micro/hf/model.safetensors", "models/micromini/hf/model.safetensors"} {
		p := testrefs.Path(t, rel)
		st, err := OpenSafetensors(p)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := WriteSafetensors(&buf, st.Tensors(), st.Metadata()); err != nil {
			t.Fatal(err)
		}
		st.Close()
		if want := mustRead(t, p); !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s: rewritten file differs (%d vs %d bytes)", rel, buf.Len(), len(want))
		}
	}
}

func TestSafetensorsSharded(t *testing.T) {
	st, err := OpenSafetensors(testrefs.Path(t, "models/micro/hf/model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dir := t.TempDir()
	all := st.Tensors()
	shards := [][]*Tensor{all[:7], all[7:]}
	weightMap := map[string]string{}
	for i, sh := range shards {
		name := []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}[i]
		var buf bytes.Buffer
		if err := WriteSafetensors(&buf, sh, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, tt := range sh {
			weightMap[tt.Name] = name
		}
	}
	index, _ := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 1}, "weight_map": weightMap})
	if err := os.WriteFile(filepath.Join(dir, IndexFile), index, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, open := range []string{dir, filepath.Join(dir, IndexFile)} {
		sh, err := OpenSafetensors(open)
		if err != nil {
			t.Fatal(err)
		}
		if len(sh.Tensors()) != len(all) {
			t.Fatalf("%d tensors, want %d", len(sh.Tensors()), len(all))
		}
		for _, tt := range all {
			got, ok := sh.Tensor(tt.Name)
			if !ok || !bytes.Equal(got.Data, tt.Data) || !slicesEqual(got.Shape, tt.Shape) {
				t.Fatalf("%s differs after sharding", tt.Name)
			}
		}
		sh.Close()
	}
	// A weight_map entry pointing at the wrong shard is an error.
	weightMap[all[0].Name] = "model-00002-of-00002.safetensors"
	index, _ = json.Marshal(map[string]any{"weight_map": weightMap})
	os.WriteFile(filepath.Join(dir, IndexFile), index, 0o644)
	if _, err := OpenSafetensors(dir); err == nil || !strings.Contains(err.Error(), all[0].Name) {
		t.Fatalf("wrong shard: err = %v", err)
	}
	// A shard name escaping the folder is refused.
	index, _ = json.Marshal(map[string]any{"weight_map": map[string]string{"x": "../x.safetensors"}})
	os.WriteFile(filepath.Join(dir, IndexFile), index, 0o644)
	if _, err := OpenSafetensors(dir); err == nil || !strings.Contains(err.Error(), "bad shard") {
		t.Fatalf("escaping shard: err = %v", err)
	}
}

func stFile(header string, data int) []byte {
	b := make([]byte, 8, 8+len(header)+data)
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	return append(b, make([]byte, data)...)
}

func TestSafetensorsBadInput(t *testing.T) {
	huge := make([]byte, 16)
	binary.LittleEndian.PutUint64(huge, 1<<62)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"huge header", huge, "header length"},
		{"bad json", stFile("{", 0), "header JSON"},
		{"dtype", stFile(`{"t":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, 8), `tensor "t": unsupported dtype I64`},
		{"missing dtype", stFile(`{"t":{"shape":[1],"data_offsets":[0,4]}}`, 4), "missing dtype"},
		{"past end", stFile(`{"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, 8), "outside the 8 data bytes"},
		{"size mismatch", stFile(`{"t":{"dtype":"F16","shape":[4],"data_offsets":[0,4]}}`, 8), "needs 8"},
		{"reversed", stFile(`{"t":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}`, 8), "outside"},
		{"offsets", stFile(`{"t":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, 8), "2 entries"},
		{"negative dim", stFile(`{"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 8), "negative"},
		{"overflow", stFile(`{"t":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}}`, 8), "overflows"},
		{"metadata", stFile(`{"__metadata__":{"a":1}}`, 0), "__metadata__"},
		{"overlap", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), `"b" overlaps tensor "a"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parseSafetensors(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	// The file name appears in errors from OpenSafetensors.
	p := filepath.Join(t.TempDir(), "broken.safetensors")
	os.WriteFile(p, stFile("{", 0), 0o644)
	if _, err := OpenSafetensors(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("err = %v", err)
	}
	if _, err := OpenSafetensors(t.TempDir()); err == nil || !regexp.MustCompile("neither").MatchString(err.Error()) {
		t.Fatalf("empty dir: err = %v", err)
	}
}
