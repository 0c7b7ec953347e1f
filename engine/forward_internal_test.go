package engine

import "testing"

// TestScratchBytes checks the activation estimate NewSession checks
// against available memory: a file can declare a huge feed-forward width
// with a tiny hidden size (small tensors, huge batch buffers).
func TestScratchBytes(t *testing.T) {
	c := &Config{Hidden: 2, Heads: 1, KVHeads: 1, HeadDim: 2, FFN: 1 << 22, Vocab: 10}
	// gate_up alone: 512 rows of 2·FFN float32.
	if got, min := scratchBytes(c, 512), int64(512*2*(1<<22)*4); got < min {
		t.Errorf("scratch for FFN 2^22, batch 512: %d bytes, want at least %d", got, min)
	}
	if got := scratchBytes(c, 1); got > 64<<20 {
		t.Errorf("scratch for batch 1: %d bytes", got)
	}
}
