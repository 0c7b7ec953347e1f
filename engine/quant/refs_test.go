package quant_test

import (
	"bytes"
	"fmt"
	"math"
	"testing"

	"github.com/phi4mac/phi4mac/engine/quant"
	"github.com/phi4mac/phi4mac/engine/weights"
	"github.com/phi4mac/phi4mac/internal/testrefs"
)

func openGGUF(t *testing.T, rel string) *weights.GGUF {
	t.Helper()
	g, err := weights.OpenGGUF(testrefs.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func dequant(t *testing.T, tt *weights.Tensor) []float32 {
	t.Helper()
	out := make([]float32, tt.Elements())
	if err := quant.Dequantize(tt.Type, tt.Data, out); err != nil {
		t.Fatalf("%s: %v", tt.Name, err)
	}
	return out
}

// TestQuantizeMatchesLlamaQuantize quantizes the F16 micro model's tensors
// with our reference quantizers and compares them byte for byte with the
// files llama-quantize wrote from the same F16 file.
func TestQuantizeMatchesLlamaQuantize(t *testing.T) {
	src := openGGUF(t, "models/micro/phi3-random-micro-F16.gguf")
	for _, file := range []string{
		"models/micro/phi3-random-micro-Q8_0.gguf",
		"models/micro/phi3-random-micro-Q4_0.gguf",
		"models/micro/phi3-random-micro-Q4_K_M.gguf",
	} {
		q := openGGUF(t, file)
		counts := map[quant.Type]int{}
		for _, qt := range q.Tensors() {
			st, ok := src.Tensor(qt.Name)
			if !ok {
				t.Fatalf("%s: tensor %s not in F16 file", file, qt.Name)
			}
			if !quant.CanQuantize(qt.Type) {
				t.Fatalf("%s: %s has type %s we cannot quantize", file, qt.Name, qt.Type)
			}
			got := make([]byte, len(qt.Data))
			if err := quant.Quantize(qt.Type, dequant(t, st), got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, qt.Data) {
				t.Errorf("%s: %s (%s): our quantization differs from llama-quantize's at byte %d",
					file, qt.Name, qt.Type, firstDiff(got, qt.Data))
			}
			counts[qt.Type]++
		}
		t.Logf("%s: byte-identical tensors by type: %v", file, counts)
		if file == "models/micro/phi3-random-micro-Q4_K_M.gguf" && counts[quant.Q5_0] == 0 {
			t.Errorf("expected Q5_0 tensors in %s", file)
		}
		if counts[quant.Q8_0] == 0 {
			t.Errorf("expected Q8_0 tensors in %s", file)
		}
	}
}

// TestQuantizeMicromini does the same for micromini's Q8_0 file.
func TestQuantizeMicromini(t *testing.T) {
	src := openGGUF(t, "models/micromini/phi4mini-random-micromini-F16.gguf")
	q := openGGUF(t, "models/micromini/phi4mini-random-micromini-Q8_0.gguf")
	n := 0
	for _, qt := range q.Tensors() {
		if qt.Type != quant.Q8_0 {
			continue
		}
		st, _ := src.Tensor(qt.Name)
		if got := quant.QuantizeQ8_0(dequant(t, st)); !bytes.Equal(got, qt.Data) {
			t.Errorf("%s differs at byte %d", qt.Name, firstDiff(got, qt.Data))
		}
		n++
	}
	if n != 9 {
		t.Errorf("%d Q8_0 tensors, want 9", n)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestFloatFormatsAgree checks that the micro model's F32, F16 and BF16
// GGUFs (which hold identical values) dequantize identically.
func TestFloatFormatsAgree(t *testing.T) {
	f32 := openGGUF(t, "models/micro/phi3-random-micro-F32.gguf")
	for _, other := range []string{"models/micro/phi3-random-micro-F16.gguf", "models/micro/phi3-random-micro-BF16.gguf"} {
		g := openGGUF(t, other)
		for _, tt := range f32.Tensors() {
			ot, ok := g.Tensor(tt.Name)
			if !ok {
				t.Fatalf("%s missing in %s", tt.Name, other)
			}
			a, b := dequant(t, tt), dequant(t, ot)
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("%s %s[%d]: %v vs F32 %v", other, tt.Name, i, b[i], a[i])
				}
			}
		}
	}
}

// TestDequantizeCloseToSource checks the quantized micro tensors decode to
// values within the format's error bound of the F16 originals.
func TestDequantizeCloseToSource(t *testing.T) {
	src := openGGUF(t, "models/micro/phi3-random-micro-F16.gguf")
	// Max error per block in units of the block's max |x|.
	bound := map[quant.Type]float64{quant.Q8_0: 0.5/127 + 1e-3, quant.Q5_0: 1.0/16 + 1e-3, quant.Q4_0: 1.0/8 + 1e-3}
	for _, file := range []string{"models/micro/phi3-random-micro-Q8_0.gguf", "models/micro/phi3-random-micro-Q4_0.gguf", "models/micro/phi3-random-micro-Q4_K_M.gguf"} {
		q := openGGUF(t, file)
		for _, qt := range q.Tensors() {
			if !qt.Type.Quantized() {
				continue
			}
			st, _ := src.Tensor(qt.Name)
			want, got := dequant(t, st), dequant(t, qt)
			for b := 0; b < len(want); b += 32 {
				var amax float64
				for _, v := range want[b : b+32] {
					amax = math.Max(amax, math.Abs(float64(v)))
				}
				for i := b; i < b+32; i++ {
					if e := math.Abs(float64(got[i] - want[i])); e > bound[qt.Type]*amax {
						t.Fatalf("%s %s[%d]: %v vs %v (error %.3g of block max %.3g)", file, qt.Name, i, got[i], want[i], e, amax)
					}
				}
			}
		}
	}
}

// TestTinyKQuantsDecode checks the tiny Q4_K_M model's Q4_K and Q6_K tensors
// decode to values of the generator's distribution: BF16-exact uniform
// weights in [-2^-E, 2^-E), so every decoded value lies (within the
// quantization error) in that range and the empirical std is near
// 2^-E/sqrt(3).
func TestTinyKQuantsDecode(t *testing.T) {
	g := openGGUF(t, "models/tiny/phi3-random-tiny-Q4_K_M.gguf")
	// Half-width exponents of the tiny preset (make_tiny_phi3.py docstring).
	exps := map[string]int{"attn_qkv": 3, "attn_output": 5, "ffn_up": 3, "ffn_down": 6, "token_embd": 2, "output": 2}
	seen := map[quant.Type]int{}
	for _, tt := range g.Tensors() {
		if tt.Type != quant.Q4_K && tt.Type != quant.Q6_K {
			continue
		}
		seen[tt.Type]++
		var e int
		for k, v := range exps {
			if tt.Name == k+".weight" || bytes.HasSuffix([]byte(tt.Name), []byte("."+k+".weight")) {
				e = v
			}
		}
		if e == 0 {
			t.Fatalf("unexpected tensor %s", tt.Name)
		}
		hw := math.Ldexp(1, -e)
		x := dequant(t, tt)
		var sum, sum2 float64
		for _, v := range x {
			if math.Abs(float64(v)) > hw*1.07 {
				t.Fatalf("%s: value %v outside ±%v", tt.Name, v, hw)
			}
			sum += float64(v)
			sum2 += float64(v) * float64(v)
		}
		n := float64(len(x))
		std := math.Sqrt(sum2/n - (sum/n)*(sum/n))
		want := hw / math.Sqrt(3)
		if math.Abs(std-want)/want > 0.03 || math.Abs(sum/n) > want*0.01 {
			t.Errorf("%s (%s): mean %.4g std %.4g, want ~0 and %.4g", tt.Name, tt.Type, sum/n, std, want)
		}
	}
	if seen[quant.Q4_K] != 13 || seen[quant.Q6_K] != 5 {
		t.Errorf("tensor types %v, want 13 Q4_K and 5 Q6_K", seen)
	}
}

func BenchmarkDequantize(b *testing.B) {
	const n = 1 << 20
	for _, typ := range []quant.Type{quant.F32, quant.F16, quant.BF16, quant.Q8_0, quant.Q4_0, quant.Q5_0, quant.Q4_K, quant.Q6_K} {
		b.Run(typ.String(), func(b *testing.B) {
			size, _ := typ.RowBytes(n)
			src := make([]byte, size)
			for i := range src {
				src[i] = byte(i*131 + i>>7)
			}
			// Keep the scales finite and small.
			bs, bb := typ.BlockSize(), typ.BlockBytes()
			if typ.Quantized() {
				for blk := 0; blk < size/bb; blk++ {
					off := blk * bb
					switch typ {
					case quant.Q6_K:
						off += 208
					}
					src[off], src[off+1] = 0x00, 0x2c
					if typ == quant.Q4_K {
						src[off+2], src[off+3] = 0x00, 0x2c
					}
				}
			}
			_ = bs
			dst := make([]float32, n)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := quant.Dequantize(typ, src, dst); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Melem/s")
		})
	}
}

func ExampleDequantize() {
	// One Q8_0 block: scale 0.5 (F16 0x3800), quants 0, 1, -2, ...
	block := make([]byte, 34)
	block[0], block[1] = 0x00, 0x38
	block[3], block[4] = 1, 0xfe
	out := make([]float32, 32)
	if err := quant.Dequantize(quant.Q8_0, block, out); err != nil {
		panic(err)
	}
	fmt.Println(out[:3])
	// Output: [0 0.5 -1]
}

func BenchmarkQuantize(b *testing.B) {
	const n = 1 << 18
	src := make([]float32, n)
	for i := range src {
		src[i] = float32(math.Sin(float64(i))) * 0.05
	}
	for _, typ := range []quant.Type{quant.F16, quant.BF16, quant.Q8_0, quant.Q4_0, quant.Q5_0, quant.Q4_K, quant.Q6_K} {
		b.Run(typ.String(), func(b *testing.B) {
			size, _ := typ.RowBytes(n)
			dst := make([]byte, size)
			b.SetBytes(4 * n)
			b.ReportAllocs()
			for b.Loop() {
				if err := quant.Quantize(typ, src, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
