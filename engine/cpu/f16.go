package cpu

import (
	"sync"

	"github.com/phi4mac/phi4mac/engine/quant"
)

// f16Table maps every half-precision bit pattern to its float32 value; the
// pure-Go kernels index it directly in their inner loops. The conversions
// themselves are engine/quant's (F16ToF32, F32ToF16, BF16ToF32).
var f16Table = sync.OnceValue(func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		t[i] = quant.F16ToF32(uint16(i))
	}
	return &t
})
