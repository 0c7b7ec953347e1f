package weights

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/phi4mac/phi4mac/engine/quant"
)

// GGUFMagic is the 4-byte magic that starts every GGUF file ("GGUF").
const GGUFMagic = "GGUF"

// DefaultAlignment is the data alignment GGUF uses when general.alignment is
// absent.
const DefaultAlignment = 32

// maxAlignment bounds general.alignment (GGUF files use 32; a larger
// power of two is accepted up to this).
const maxAlignment = 1 << 20

// maxDims is GGML's limit on tensor rank.
const maxDims = 4

// maxArrayDepth bounds nesting of array-of-array metadata values.
const maxArrayDepth = 8

// GGUF is an open GGUF file: its metadata and tensor table, with tensor data
// aliasing one read-only mapping of the file.
type GGUF struct {
	name       string // file path, or "<memory>"
	version    uint32
	keys       []string
	meta       map[string]Value
	tensors    []*Tensor
	byName     map[string]*Tensor
	offsets    []uint64 // tensor data offsets relative to dataOffset, in file order
	alignment  int
	dataOffset int
	data       []byte
	release    func() error
}

// OpenGGUF maps the GGUF file at path and parses its header, metadata and
// tensor table. Tensor data is not read: each Tensor's Data is a slice of
// the mapping. Close the GGUF to unmap it.
func OpenGGUF(path string) (*GGUF, error) {
	data, release, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("open gguf %s: %w", path, err)
	}
	g, err := parseGGUF(path, data)
	if err != nil {
		release()
		return nil, err
	}
	g.release = release
	return g, nil
}

// OpenGGUFBytes parses an in-memory GGUF file (for example one embedded in
// the binary with a go:embed directive). Tensor data aliases data, which must
// not be modified.
func OpenGGUFBytes(data []byte) (*GGUF, error) {
	return parseGGUF("<memory>", data)
}

// Close releases the file mapping. Tensor data must not be used afterwards:
// Close sets each Tensor's Data to nil, so that a late use through the
// Tensor fails with an error or an index panic instead of a fault on
// unmapped memory (copies of Data taken earlier are not protected).
// Closing twice is harmless.
func (g *GGUF) Close() error {
	if g.release == nil {
		return nil
	}
	for _, t := range g.tensors {
		t.Data = nil
	}
	err := g.release()
	g.release = nil
	g.data = nil
	if err != nil {
		return fmt.Errorf("close gguf %s: %w", g.name, err)
	}
	return nil
}

// Path returns the file path the GGUF was opened from ("<memory>" for
// OpenGGUFBytes).
func (g *GGUF) Path() string { return g.name }

// Version returns the GGUF format version (2 or 3).
func (g *GGUF) Version() uint32 { return g.version }

// Alignment returns the tensor data alignment in bytes.
func (g *GGUF) Alignment() int { return g.alignment }

// DataOffset returns the file offset at which tensor data begins.
func (g *GGUF) DataOffset() int { return g.dataOffset }

// Size returns the size of the file in bytes.
func (g *GGUF) Size() int { return len(g.data) }

// Tensors returns the tensors in file order.
func (g *GGUF) Tensors() []*Tensor { return g.tensors }

// Tensor returns the tensor called name.
func (g *GGUF) Tensor(name string) (*Tensor, bool) {
	t, ok := g.byName[name]
	return t, ok
}

// Keys returns the metadata keys in file order.
func (g *GGUF) Keys() []string { return g.keys }

// KVs returns all metadata entries in file order, with their exact types
// (ready to copy into a GGUFWriter).
func (g *GGUF) KVs() []KV {
	out := make([]KV, len(g.keys))
	for i, k := range g.keys {
		out[i] = KV{k, g.meta[k]}
	}
	return out
}

// Meta returns the metadata value for key with its exact type.
func (g *GGUF) Meta(key string) (Value, bool) {
	v, ok := g.meta[key]
	return v, ok
}

// String returns a string metadata value.
func (g *GGUF) String(key string) (string, bool) {
	s, ok := g.meta[key].V.(string)
	return s, ok
}

// Uint returns an integer metadata value of any integer kind; negative
// values report false.
func (g *GGUF) Uint(key string) (uint64, bool) {
	v, ok := g.meta[key]
	if !ok || v.Type == TypeArray {
		return 0, false
	}
	return asUint(v.V)
}

// Float returns a float32 or float64 metadata value (integers convert too).
func (g *GGUF) Float(key string) (float64, bool) {
	v, ok := g.meta[key]
	if !ok || v.Type == TypeArray {
		return 0, false
	}
	return asFloat(v.V)
}

// Bool returns a bool metadata value.
func (g *GGUF) Bool(key string) (bool, bool) {
	b, ok := g.meta[key].V.(bool)
	return b, ok
}

// Strings returns an array-of-strings metadata value. The slice is shared;
// do not modify it.
func (g *GGUF) Strings(key string) ([]string, bool) {
	s, ok := g.meta[key].V.([]string)
	return s, ok
}

// Ints returns an array of any integer kind as int64s.
func (g *GGUF) Ints(key string) ([]int64, bool) {
	v, ok := g.meta[key]
	if !ok || v.Type != TypeArray {
		return nil, false
	}
	return ints(v.V)
}

// Floats returns an array of floats (or integers) as float64s.
func (g *GGUF) Floats(key string) ([]float64, bool) {
	v, ok := g.meta[key]
	if !ok || v.Type != TypeArray {
		return nil, false
	}
	return floats(v.V)
}

// TensorOffset returns the offset of the tensor's data relative to
// DataOffset, as recorded in the tensor table.
func (g *GGUF) TensorOffset(name string) (uint64, bool) {
	t, ok := g.byName[name]
	if !ok {
		return 0, false
	}
	i := slices.Index(g.tensors, t)
	return g.offsets[i], true
}

// decoder reads little-endian GGUF fields from a byte slice, bounding every
// length by the bytes that remain.
type decoder struct {
	buf []byte
	off int
}

var errShort = errors.New("unexpected end of file")

func (d *decoder) remaining() int { return len(d.buf) - d.off }

func (d *decoder) bytes(n int) ([]byte, error) {
	if n < 0 || n > d.remaining() {
		return nil, errShort
	}
	b := d.buf[d.off : d.off+n]
	d.off += n
	return b, nil
}

func (d *decoder) u8() (uint8, error) {
	b, err := d.bytes(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (d *decoder) u16() (uint16, error) {
	b, err := d.bytes(2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func (d *decoder) u32() (uint32, error) {
	b, err := d.bytes(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (d *decoder) u64() (uint64, error) {
	b, err := d.bytes(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// count reads a uint64 element count and checks that count elements of at
// least minSize bytes each could fit in the rest of the file.
func (d *decoder) count(what string, minSize int) (int, error) {
	n, err := d.u64()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if minSize < 1 {
		minSize = 1
	}
	if n > uint64(d.remaining()/minSize) {
		return 0, fmt.Errorf("%s %d exceeds the %d bytes left in the file", what, n, d.remaining())
	}
	return int(n), nil
}

func (d *decoder) str() (string, error) {
	n, err := d.count("string length", 1)
	if err != nil {
		return "", err
	}
	b, _ := d.bytes(n)
	return string(b), nil
}

// value reads a metadata value of type t.
func (d *decoder) value(t ValueType, depth int) (Value, error) {
	v := Value{Type: t}
	var err error
	switch t {
	case TypeUint8:
		var x uint8
		x, err = d.u8()
		v.V = x
	case TypeInt8:
		var x uint8
		x, err = d.u8()
		v.V = int8(x)
	case TypeBool:
		var x uint8
		x, err = d.u8()
		if err == nil && x > 1 {
			err = fmt.Errorf("bool value %d is neither 0 nor 1", x)
		}
		v.V = x == 1
	case TypeUint16:
		var x uint16
		x, err = d.u16()
		v.V = x
	case TypeInt16:
		var x uint16
		x, err = d.u16()
		v.V = int16(x)
	case TypeUint32:
		var x uint32
		x, err = d.u32()
		v.V = x
	case TypeInt32:
		var x uint32
		x, err = d.u32()
		v.V = int32(x)
	case TypeFloat32:
		var x uint32
		x, err = d.u32()
		v.V = math.Float32frombits(x)
	case TypeUint64:
		var x uint64
		x, err = d.u64()
		v.V = x
	case TypeInt64:
		var x uint64
		x, err = d.u64()
		v.V = int64(x)
	case TypeFloat64:
		var x uint64
		x, err = d.u64()
		v.V = math.Float64frombits(x)
	case TypeString:
		v.V, err = d.str()
	case TypeArray:
		return d.array(depth)
	default:
		return v, fmt.Errorf("unknown metadata value type %d", uint32(t))
	}
	return v, err
}

func (d *decoder) array(depth int) (Value, error) {
	if depth >= maxArrayDepth {
		return Value{}, fmt.Errorf("arrays nested deeper than %d", maxArrayDepth)
	}
	et, err := d.u32()
	if err != nil {
		return Value{}, err
	}
	elem := ValueType(et)
	v := Value{Type: TypeArray, Elem: elem}
	minSize := elem.size()
	switch elem {
	case TypeString:
		minSize = 8
	case TypeArray:
		minSize = 12
	case TypeUint8, TypeInt8, TypeBool, TypeUint16, TypeInt16, TypeUint32, TypeInt32,
		TypeFloat32, TypeUint64, TypeInt64, TypeFloat64:
	default:
		return v, fmt.Errorf("unknown array element type %d", et)
	}
	n, err := d.count("array length", minSize)
	if err != nil {
		return v, err
	}
	if sz := elem.size(); sz > 0 {
		raw, _ := d.bytes(n * sz)
		v.V, err = decodeFixedArray(elem, raw, n)
		return v, err
	}
	switch elem {
	case TypeString:
		// Validate the lengths in a first pass, then copy the whole region
		// into one string and slice it: one allocation instead of one per
		// token (a vocabulary has 100k-200k strings).
		start := d.off
		for i := range n {
			l, err := d.count("string length", 1)
			if err != nil {
				return v, fmt.Errorf("element %d: %w", i, err)
			}
			d.off += l
		}
		region := string(d.buf[start:d.off])
		a := make([]string, n)
		off := 0
		for i := range a {
			l := int(binary.LittleEndian.Uint64(d.buf[start+off:]))
			a[i] = region[off+8 : off+8+l]
			off += 8 + l
		}
		v.V = a
	default: // TypeArray
		a := make([]Value, n)
		for i := range a {
			if a[i], err = d.array(depth + 1); err != nil {
				return v, fmt.Errorf("element %d: %w", i, err)
			}
		}
		v.V = a
	}
	return v, nil
}

// decodeLE decodes n little-endian elements of size bytes each from raw
// (which holds at least n·size bytes) with conv.
func decodeLE[T any](raw []byte, n, size int, conv func([]byte) T) []T {
	a := make([]T, n)
	for i := range a {
		a[i] = conv(raw[size*i:])
	}
	return a
}

func decodeFixedArray(elem ValueType, raw []byte, n int) (any, error) {
	le := binary.LittleEndian
	switch elem {
	case TypeUint8:
		return append([]uint8(nil), raw...), nil
	case TypeInt8:
		a := make([]int8, n)
		for i := range a {
			a[i] = int8(raw[i])
		}
		return a, nil
	case TypeBool:
		a := make([]bool, n)
		for i := range a {
			if raw[i] > 1 {
				return nil, fmt.Errorf("element %d: bool value %d is neither 0 nor 1", i, raw[i])
			}
			a[i] = raw[i] == 1
		}
		return a, nil
	case TypeUint16:
		return decodeLE(raw, n, 2, le.Uint16), nil
	case TypeInt16:
		return decodeLE(raw, n, 2, func(b []byte) int16 { return int16(le.Uint16(b)) }), nil
	case TypeUint32:
		return decodeLE(raw, n, 4, le.Uint32), nil
	case TypeInt32:
		return decodeLE(raw, n, 4, func(b []byte) int32 { return int32(le.Uint32(b)) }), nil
	case TypeFloat32:
		return decodeLE(raw, n, 4, func(b []byte) float32 { return math.Float32frombits(le.Uint32(b)) }), nil
	case TypeUint64:
		return decodeLE(raw, n, 8, le.Uint64), nil
	case TypeInt64:
		return decodeLE(raw, n, 8, func(b []byte) int64 { return int64(le.Uint64(b)) }), nil
	case TypeFloat64:
		return decodeLE(raw, n, 8, func(b []byte) float64 { return math.Float64frombits(le.Uint64(b)) }), nil
	}
	return nil, fmt.Errorf("unknown array element type %d", uint32(elem))
}

// parseGGUF parses a complete GGUF file held in data.
func parseGGUF(name string, data []byte) (*GGUF, error) {
	g, err := parseGGUFInner(name, data)
	if err != nil {
		return nil, fmt.Errorf("gguf %s: %w", name, err)
	}
	return g, nil
}

func parseGGUFInner(name string, data []byte) (*GGUF, error) {
	d := &decoder{buf: data}
	magic, err := d.bytes(4)
	if err != nil || string(magic) != GGUFMagic {
		return nil, errors.New("not a GGUF file (bad magic)")
	}
	version, err := d.u32()
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	switch {
	case version == 2 || version == 3:
	case version == 1:
		return nil, errors.New("GGUF version 1 is not supported (convert the file with a current llama.cpp)")
	case version&0xffff == 0 && bits.ReverseBytes32(version) <= 3:
		return nil, errors.New("big-endian GGUF files are not supported")
	default:
		return nil, fmt.Errorf("unsupported GGUF version %d", version)
	}
	// Each tensor info takes at least 8+4+8+4+8 bytes, each KV pair 8+4+1.
	nTensors, err := d.count("tensor count", 32)
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	nKV, err := d.count("metadata count", 13)
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}

	g := &GGUF{
		name:      name,
		version:   version,
		keys:      make([]string, 0, nKV),
		meta:      make(map[string]Value, nKV),
		alignment: DefaultAlignment,
		data:      data,
	}
	for i := range nKV {
		key, err := d.str()
		if err != nil {
			return nil, fmt.Errorf("metadata entry %d: key: %w", i, err)
		}
		t, err := d.u32()
		if err != nil {
			return nil, fmt.Errorf("metadata %q: %w", key, err)
		}
		v, err := d.value(ValueType(t), 0)
		if err != nil {
			return nil, fmt.Errorf("metadata %q: %w", key, err)
		}
		if _, dup := g.meta[key]; dup {
			return nil, fmt.Errorf("metadata key %q appears twice", key)
		}
		g.keys = append(g.keys, key)
		g.meta[key] = v
	}
	if v, ok := g.meta["general.alignment"]; ok {
		a, isU32 := v.V.(uint32)
		if !isU32 || a == 0 || a&(a-1) != 0 || a > maxAlignment {
			return nil, fmt.Errorf("general.alignment must be a power-of-two uint32 up to %d, got %v (%s)", maxAlignment, v.V, v.Type)
		}
		g.alignment = int(a)
	}

	type info struct {
		dims   []uint64
		typ    quant.Type
		offset uint64
	}
	infos := make([]info, nTensors)
	g.tensors = make([]*Tensor, nTensors)
	g.byName = make(map[string]*Tensor, nTensors)
	for i := range nTensors {
		tname, err := d.str()
		if err != nil {
			return nil, fmt.Errorf("tensor %d: name: %w", i, err)
		}
		nd, err := d.u32()
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", tname, err)
		}
		if nd == 0 || nd > maxDims {
			return nil, fmt.Errorf("tensor %q: %d dimensions (want 1..%d)", tname, nd, maxDims)
		}
		dims := make([]uint64, nd)
		for j := range dims {
			if dims[j], err = d.u64(); err != nil {
				return nil, fmt.Errorf("tensor %q: %w", tname, err)
			}
		}
		tt, err := d.u32()
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", tname, err)
		}
		off, err := d.u64()
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", tname, err)
		}
		if _, dup := g.byName[tname]; dup {
			return nil, fmt.Errorf("tensor %q appears twice", tname)
		}
		typ := quant.Type(tt)
		if !typ.Known() {
			return nil, fmt.Errorf("tensor %q has unsupported type %s (phi4mac reads F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K; requantize the model)", tname, typ)
		}
		infos[i] = info{dims: dims, typ: typ, offset: off}
		t := &Tensor{Name: tname, Type: typ}
		g.tensors[i] = t
		g.byName[tname] = t
	}

	g.dataOffset = alignUp(d.off, g.alignment)
	if g.dataOffset > len(data) {
		if nTensors > 0 {
			return nil, fmt.Errorf("tensor data section starts at %d, past the end of the %d-byte file (truncated?)", g.dataOffset, len(data))
		}
		g.dataOffset = len(data)
	}
	avail := uint64(len(data) - g.dataOffset)
	g.offsets = make([]uint64, nTensors)
	for i, in := range infos {
		t := g.tensors[i]
		size, shape, err := tensorSize(in.typ, in.dims)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		if in.offset%uint64(g.alignment) != 0 {
			return nil, fmt.Errorf("tensor %q: data offset %d is not a multiple of the alignment %d", t.Name, in.offset, g.alignment)
		}
		if in.offset > avail || size > avail-in.offset {
			return nil, fmt.Errorf("tensor %q: data [%d, +%d) extends past the end of the file (%d data bytes; truncated?)", t.Name, in.offset, size, avail)
		}
		start := g.dataOffset + int(in.offset)
		t.Shape = shape
		t.Data = data[start : start+int(size) : start+int(size)]
		g.offsets[i] = in.offset
	}
	// Tensors may not share bytes (llama.cpp even requires them to be laid
	// out back to back in table order; other orders are accepted here).
	order := make([]int, nTensors)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		// Empty tensors first at equal offsets: they overlap nothing.
		return cmp.Or(cmp.Compare(g.offsets[a], g.offsets[b]), cmp.Compare(len(g.tensors[a].Data), len(g.tensors[b].Data)))
	})
	for k := 1; k < len(order); k++ {
		prev, cur := order[k-1], order[k]
		if g.offsets[prev]+uint64(len(g.tensors[prev].Data)) > g.offsets[cur] {
			return nil, fmt.Errorf("tensor %q overlaps tensor %q (data offsets %d and %d); the file is corrupt", g.tensors[cur].Name, g.tensors[prev].Name, g.offsets[cur], g.offsets[prev])
		}
	}
	return g, nil
}

// tensorSize returns the byte size of a tensor of type typ with GGUF
// dimensions dims (innermost first) and its shape outermost first, checking
// for overflow and block alignment.
func tensorSize(typ quant.Type, dims []uint64) (uint64, []int, error) {
	shape := make([]int, len(dims))
	elems := uint64(1)
	for j, n := range dims {
		hi, lo := bits.Mul64(elems, n)
		if n > maxElems || hi != 0 || lo > maxElems {
			return 0, nil, fmt.Errorf("dimensions %v overflow (more than %d elements)", dims, maxElems)
		}
		elems = lo
		shape[len(dims)-1-j] = int(n)
	}
	bs := uint64(typ.BlockSize())
	if dims[0]%bs != 0 {
		return 0, nil, fmt.Errorf("row length %d is not a multiple of the %s block size %d", dims[0], typ, bs)
	}
	return elems / bs * uint64(typ.BlockBytes()), shape, nil
}

// maxElems bounds a tensor's element count (and each dimension) so that
// the count, and its size in bytes at up to 8 bytes per element, fit in an
// int on this platform (32-bit ones included).
const maxElems = uint64(math.MaxInt / 8)

func alignUp(n, a int) int { return (n + a - 1) / a * a }
