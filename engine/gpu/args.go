package gpu

import "encoding/binary"

// The argument structs of metal/args.h, field for field (uint = uint32,
// float = float32, names in CamelCase). TestArgsMatchHeader checks them.

// RMSNormArgs mirrors struct RMSNormArgs.
type RMSNormArgs struct {
	N, XStride, DstStride uint32
	Eps                   float32
}

// GemvArgs mirrors struct GemvArgs.
type GemvArgs struct {
	K, N, RowBytes, NTok, XStride, DstStride, Accumulate, AccStride uint32
}

// GemmArgs mirrors struct GemmArgs.
type GemmArgs struct {
	K, N, RowBytes, NTok, XStride, DstStride, Accumulate, AccStride uint32
}

// RopeArgs mirrors struct RopeArgs.
type RopeArgs struct {
	NTok, NHeads, HeadDim, RotHalf, RowStride, Pos0, Mode uint32
	Scale                                                 float32
}

// EmbedArgs mirrors struct EmbedArgs.
type EmbedArgs struct {
	K, RowBytes, NTok, DstStride, NRows uint32
}

// ElementwiseArgs mirrors struct ElementwiseArgs.
type ElementwiseArgs struct {
	N, NTok, SrcStride, DstStride uint32
}

// KVAppendArgs mirrors struct KVAppendArgs.
type KVAppendArgs struct {
	NTok, NHeads, NKVHeads, HeadDim, RowStride, Ctx, Pos0 uint32
}

// AttnArgs mirrors struct AttnArgs.
type AttnArgs struct {
	NTok, NHeads, NKVHeads, HeadDim, QStride, DstStride, Ctx, Pos0, Chunk, NSplit uint32
	Scale                                                                         float32
}

// ArgmaxArgs mirrors struct ArgmaxArgs.
type ArgmaxArgs struct {
	N, NRows, Stride uint32
}

// Pack returns the bytes of an argument struct as the kernels see them
// (little endian, no padding: every field is 4 bytes).
func Pack(args any) []byte {
	b, err := binary.Append(nil, binary.LittleEndian, args)
	if err != nil {
		panic("gpu: pack " + err.Error()) // only the fixed-size structs above are passed
	}
	return b
}

// Args returns a Binding holding an argument struct (Metal's setBytes).
func Args(args any) Binding { return Binding{Bytes: Pack(args)} }
