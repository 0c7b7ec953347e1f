package synth

import (
	"bytes"
	"math"
	"testing"

	"github.com/phi4mac/phi4mac/engine/quant"
	"github.com/phi4mac/phi4mac/engine/weights"
	"github.com/phi4mac/phi4mac/internal/testrefs"
)

// TestKQuantizersMatchLlamaQuantize quantizes the regenerated tiny weights
// with our Q4_K and Q6_K reference quantizers and compares the first 4096
// blocks of every K-quant tensor with the shipped llama-quantize Q4_K_M
// file (TestReproduceTiny compares the whole file).
func TestKQuantizersMatchLlamaQuantize(t *testing.T) {
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
	const maxBlocks = 4096
	for _, tt := range g.Tensors() {
		if tt.Type != quant.Q4_K && tt.Type != quant.Q6_K {
			continue
		}
		s := specs[tt.Name]
		bb := tt.Type.BlockBytes()
		nb := min(maxBlocks, len(tt.Data)/bb)
		bits := make([]uint16, nb*256)
		GenerateBF16(c.Seed, s, 0, bits)
		x := make([]float32, 256)
		out := make([]byte, bb)
		bad := 0
		for blk := range nb {
			for i := range x {
				x[i] = math.Float32frombits(uint32(bits[blk*256+i]) << 16)
			}
			if tt.Type == quant.Q4_K {
				quant.QuantizeBlockQ4_K((*[256]float32)(x), (*[144]byte)(out))
			} else {
				quant.QuantizeBlockQ6_K((*[256]float32)(x), (*[210]byte)(out))
			}
			if !bytes.Equal(out, tt.Data[blk*bb:(blk+1)*bb]) {
				if bad < 3 {
					t.Logf("%s block %d differs:\n ours %x\n ref  %x", tt.Name, blk, out, tt.Data[blk*bb:(blk+1)*bb])
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%s (%s): %d of %d blocks differ", tt.Name, tt.Type, bad, nb)
		}
	}
}
