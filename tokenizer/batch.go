package tokenizer

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// EncodeBatch encodes texts in parallel on all CPUs (GOMAXPROCS) and returns
// their ids in order: out[i] = Encode(texts[i], opts).
func (t *Tokenizer) EncodeBatch(texts []string, opts EncodeOptions) [][]int {
	out := make([][]int, len(texts))
	workers := min(runtime.GOMAXPROCS(0), len(texts))
	if workers <= 1 {
		for i, s := range texts {
			out[i] = t.Encode(s, opts)
		}
		return out
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(texts) {
					return
				}
				out[i] = t.Encode(texts[i], opts)
			}
		})
	}
	wg.Wait()
	return out
}
