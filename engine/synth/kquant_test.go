package synth

import (
	"math"
	"testing"

	"github.com/phi4mac/phi4mac/engine/quant"
	"github.com/phi4mac/phi4mac/engine/weights"
	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// TestTinyQ4KMDecodesToOriginalWeights dequantizes every tensor of the
// shipped tiny Q4_K_M model (llama-quantize output) and compares it with
// the regenerated original weights: each Q4_K/Q6_K sub-block must decode
// to within its quantization step of the original values, which a wrong
// scale, nibble or bit layout would break at once.
func TestTinyQ4KMDecodesToOriginalWeights(t *testing.T) {
	if testing.Short() {
		t.Skip("dequantizes 54M weights")
	}
	g, err := weights.OpenGGUF(testrefs.Path(t, "models/tiny/phi3-random-tiny-Q4_K_M.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	c := preset(t, "tiny")
	specs := map[string]TensorSpec{}
	for _, s := range c.Tensors() {
		specs[s.GGUFName] = s
	}
	// Largest error allowed per element, relative to the range of its
	// 32-element (Q4_K) or 16-element (Q6_K) sub-block: half a step plus
	// the slack of 6-bit scales.
	rel := map[quant.Type]float64{quant.Q4_K: 1.0 / 15 * 1.25, quant.Q6_K: 1.0 / 63 * 1.5, quant.F32: 0}
	sub := map[quant.Type]int{quant.Q4_K: 32, quant.Q6_K: 16, quant.F32: 1}
	for _, tt := range g.Tensors() {
		s, ok := specs[tt.Name]
		if !ok {
			t.Fatalf("unexpected tensor %s", tt.Name)
		}
		bound, ok := rel[tt.Type]
		if !ok {
			t.Fatalf("%s: unexpected type %s", tt.Name, tt.Type)
		}
		got := make([]float32, tt.Elements())
		if err := quant.Dequantize(tt.Type, tt.Data, got); err != nil {
			t.Fatal(err)
		}
		bits := make([]uint16, len(got))
		GenerateBF16(c.Seed, s, 0, bits)
		var sumErr2, sumX2 float64
		n := sub[tt.Type]
		for b := 0; b < len(got); b += n {
			lo, hi := math.Inf(1), math.Inf(-1)
			for _, h := range bits[b : b+n] {
				v := float64(math.Float32frombits(uint32(h) << 16))
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
			span := math.Max(hi, 0) - math.Min(lo, 0) // K-quant ranges include 0
			for i := b; i < b+n; i++ {
				want := float64(math.Float32frombits(uint32(bits[i]) << 16))
				e := math.Abs(float64(got[i]) - want)
				if e > bound*span+1e-7 {
					t.Fatalf("%s (%s) element %d: %v, original %v (sub-block span %v)", tt.Name, tt.Type, i, got[i], want, span)
				}
				sumErr2 += e * e
				sumX2 += want * want
			}
		}
		t.Logf("%-26s %-4s relative RMS error %.4f", tt.Name, tt.Type, math.Sqrt(sumErr2/sumX2))
	}
}
