package weights

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/phi4mac/phi4mac/engine/quant"
)

// GGUFWriter streams a GGUF version 3 file. Declare the metadata (SetMeta)
// and the tensors (AddTensor) first, then write each tensor's data
// (WriteTensor) in declaration order, then Close. The header goes out with
// the first WriteTensor (or Close), so tensor data is never buffered:
// quantizing a large model needs memory for one tensor at a time.
//
// The layout is the one llama.cpp's gguf-py and gguf.cpp write: metadata in
// insertion order, tensor infos, zero padding to the alignment, then every
// tensor's data padded to the alignment.
type GGUFWriter struct {
	w         *bufio.Writer
	alignment int
	keys      []string
	meta      map[string]Value
	tensors   []writerTensor
	byName    map[string]int
	next      int // index of the next tensor to write; -1 before the header
	closed    bool
}

type writerTensor struct {
	name   string
	typ    quant.Type
	shape  []int
	size   uint64
	offset uint64
}

// NewGGUFWriter returns a writer that streams a GGUF file to w.
func NewGGUFWriter(w io.Writer) *GGUFWriter {
	return &GGUFWriter{
		w:         bufio.NewWriterSize(w, 1<<20),
		alignment: DefaultAlignment,
		meta:      map[string]Value{},
		byName:    map[string]int{},
		next:      -1,
	}
}

// SetMeta sets metadata key to v. A new key goes after the existing ones; a
// key set again keeps its position. Setting general.alignment (uint32, a
// power of two) changes the data alignment.
func (w *GGUFWriter) SetMeta(key string, v Value) error {
	if w.next >= 0 || w.closed {
		return errors.New("gguf writer: SetMeta after the header was written")
	}
	if err := checkValue(v, 0); err != nil {
		return fmt.Errorf("gguf writer: metadata %q: %w", key, err)
	}
	if key == "general.alignment" {
		a, ok := v.V.(uint32)
		if !ok || a == 0 || a&(a-1) != 0 || a > maxAlignment {
			return fmt.Errorf("gguf writer: general.alignment must be a power-of-two uint32 up to %d, got %v", maxAlignment, v.V)
		}
		w.alignment = int(a)
	}
	if _, ok := w.meta[key]; !ok {
		w.keys = append(w.keys, key)
	}
	w.meta[key] = v
	return nil
}

// AddTensor declares a tensor. shape is outermost first, as in Tensor.
func (w *GGUFWriter) AddTensor(name string, typ quant.Type, shape []int) error {
	if w.next >= 0 || w.closed {
		return errors.New("gguf writer: AddTensor after the header was written")
	}
	if _, dup := w.byName[name]; dup {
		return fmt.Errorf("gguf writer: tensor %q added twice", name)
	}
	if !typ.Known() {
		return fmt.Errorf("gguf writer: tensor %q: unsupported type %s", name, typ)
	}
	if len(shape) == 0 || len(shape) > maxDims {
		return fmt.Errorf("gguf writer: tensor %q: %d dimensions (want 1..%d)", name, len(shape), maxDims)
	}
	dims := make([]uint64, len(shape))
	for i, d := range shape {
		if d < 0 {
			return fmt.Errorf("gguf writer: tensor %q: negative dimension in %v", name, shape)
		}
		dims[len(shape)-1-i] = uint64(d)
	}
	size, _, err := tensorSize(typ, dims)
	if err != nil {
		return fmt.Errorf("gguf writer: tensor %q: %w", name, err)
	}
	var off uint64
	if n := len(w.tensors); n > 0 {
		last := w.tensors[n-1]
		off = last.offset + uint64(alignUp(int(last.size), w.alignment))
	}
	w.byName[name] = len(w.tensors)
	w.tensors = append(w.tensors, writerTensor{name: name, typ: typ, shape: append([]int(nil), shape...), size: size, offset: off})
	return nil
}

// WriteTensor writes the data of the named tensor, which must be the next
// one in declaration order and exactly its size.
func (w *GGUFWriter) WriteTensor(name string, data []byte) error {
	if w.closed {
		return errors.New("gguf writer: WriteTensor after Close")
	}
	if w.next < 0 {
		if err := w.writeHeader(); err != nil {
			return err
		}
	}
	if w.next >= len(w.tensors) {
		return fmt.Errorf("gguf writer: tensor %q: all declared tensors already written", name)
	}
	t := w.tensors[w.next]
	if t.name != name {
		return fmt.Errorf("gguf writer: tensor %q written out of order (next is %q)", name, t.name)
	}
	if uint64(len(data)) != t.size {
		return fmt.Errorf("gguf writer: tensor %q: %d bytes, %s %v needs %d", name, len(data), t.typ, t.shape, t.size)
	}
	if _, err := w.w.Write(data); err != nil {
		return fmt.Errorf("gguf writer: tensor %q: %w", name, err)
	}
	if err := w.pad(len(data)); err != nil {
		return err
	}
	w.next++
	return nil
}

// WriteTensorStream is WriteTensor for data produced in pieces: write is
// called with a writer that accepts the tensor's bytes, which must add up
// to exactly its size. Nothing is buffered beyond the output buffer.
func (w *GGUFWriter) WriteTensorStream(name string, write func(io.Writer) error) error {
	if w.closed {
		return errors.New("gguf writer: WriteTensorStream after Close")
	}
	if w.next < 0 {
		if err := w.writeHeader(); err != nil {
			return err
		}
	}
	if w.next >= len(w.tensors) {
		return fmt.Errorf("gguf writer: tensor %q: all declared tensors already written", name)
	}
	t := w.tensors[w.next]
	if t.name != name {
		return fmt.Errorf("gguf writer: tensor %q written out of order (next is %q)", name, t.name)
	}
	cw := &countingWriter{w: w.w, limit: t.size}
	if err := write(cw); err != nil {
		return fmt.Errorf("gguf writer: tensor %q: %w", name, err)
	}
	if cw.n != t.size {
		return fmt.Errorf("gguf writer: tensor %q: %d bytes written, %s %v needs %d", name, cw.n, t.typ, t.shape, t.size)
	}
	if err := w.pad(int(t.size % uint64(w.alignment))); err != nil {
		return err
	}
	w.next++
	return nil
}

type countingWriter struct {
	w     io.Writer
	n     uint64
	limit uint64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.n+uint64(len(p)) > c.limit {
		return 0, fmt.Errorf("more than the tensor's %d bytes", c.limit)
	}
	n, err := c.w.Write(p)
	c.n += uint64(n)
	return n, err
}

// Close writes the header if no tensor was written yet, checks that every
// declared tensor was written and flushes. It does not close the
// underlying io.Writer.
func (w *GGUFWriter) Close() error {
	if w.closed {
		return nil
	}
	if w.next < 0 {
		if err := w.writeHeader(); err != nil {
			return err
		}
	}
	w.closed = true
	if w.next < len(w.tensors) {
		return fmt.Errorf("gguf writer: tensor %q declared but not written", w.tensors[w.next].name)
	}
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("gguf writer: %w", err)
	}
	return nil
}

func (w *GGUFWriter) pad(n int) error {
	if p := alignUp(n, w.alignment) - n; p > 0 {
		if _, err := w.w.Write(make([]byte, p)); err != nil {
			return fmt.Errorf("gguf writer: %w", err)
		}
	}
	return nil
}

func (w *GGUFWriter) writeHeader() error {
	e := &encoder{w: w.w}
	e.raw([]byte(GGUFMagic))
	e.u32(3)
	e.u64(uint64(len(w.tensors)))
	e.u64(uint64(len(w.keys)))
	for _, k := range w.keys {
		e.str(k)
		v := w.meta[k]
		e.u32(uint32(v.Type))
		e.value(v)
	}
	for _, t := range w.tensors {
		e.str(t.name)
		e.u32(uint32(len(t.shape)))
		for i := len(t.shape) - 1; i >= 0; i-- {
			e.u64(uint64(t.shape[i]))
		}
		e.u32(uint32(t.typ))
		e.u64(t.offset)
	}
	if e.err != nil {
		return fmt.Errorf("gguf writer: header: %w", e.err)
	}
	w.next = 0
	return w.pad(e.n)
}

// encoder writes little-endian GGUF fields, remembering the first error.
type encoder struct {
	w   io.Writer
	n   int
	err error
	buf [8]byte
}

func (e *encoder) raw(b []byte) {
	if e.err != nil {
		return
	}
	n, err := e.w.Write(b)
	e.n += n
	e.err = err
}

func (e *encoder) u8(v uint8)   { e.buf[0] = v; e.raw(e.buf[:1]) }
func (e *encoder) u16(v uint16) { binary.LittleEndian.PutUint16(e.buf[:], v); e.raw(e.buf[:2]) }
func (e *encoder) u32(v uint32) { binary.LittleEndian.PutUint32(e.buf[:], v); e.raw(e.buf[:4]) }
func (e *encoder) u64(v uint64) { binary.LittleEndian.PutUint64(e.buf[:], v); e.raw(e.buf[:8]) }
func (e *encoder) str(s string) { e.u64(uint64(len(s))); e.raw([]byte(s)) }

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// value writes v's payload (without its type tag). v was checked by
// checkValue.
func (e *encoder) value(v Value) {
	switch x := v.V.(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case bool:
		e.u8(b2u(x))
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	case string:
		e.str(x)
	default:
		e.u32(uint32(v.Elem))
		e.u64(uint64(v.Len()))
		switch a := v.V.(type) {
		case []uint8:
			e.raw(a)
		case []int8:
			for _, y := range a {
				e.u8(uint8(y))
			}
		case []bool:
			for _, y := range a {
				e.u8(b2u(y))
			}
		case []uint16:
			for _, y := range a {
				e.u16(y)
			}
		case []int16:
			for _, y := range a {
				e.u16(uint16(y))
			}
		case []uint32:
			for _, y := range a {
				e.u32(y)
			}
		case []int32:
			for _, y := range a {
				e.u32(uint32(y))
			}
		case []float32:
			for _, y := range a {
				e.u32(math.Float32bits(y))
			}
		case []uint64:
			for _, y := range a {
				e.u64(y)
			}
		case []int64:
			for _, y := range a {
				e.u64(uint64(y))
			}
		case []float64:
			for _, y := range a {
				e.u64(math.Float64bits(y))
			}
		case []string:
			for _, y := range a {
				e.str(y)
			}
		case []Value:
			for _, y := range a {
				e.value(y)
			}
		}
	}
}

// checkValue verifies that v.V has the Go type its Type (and Elem) promise.
func checkValue(v Value, depth int) error {
	ok := false
	switch v.Type {
	case TypeUint8:
		_, ok = v.V.(uint8)
	case TypeInt8:
		_, ok = v.V.(int8)
	case TypeUint16:
		_, ok = v.V.(uint16)
	case TypeInt16:
		_, ok = v.V.(int16)
	case TypeUint32:
		_, ok = v.V.(uint32)
	case TypeInt32:
		_, ok = v.V.(int32)
	case TypeFloat32:
		_, ok = v.V.(float32)
	case TypeBool:
		_, ok = v.V.(bool)
	case TypeString:
		_, ok = v.V.(string)
	case TypeUint64:
		_, ok = v.V.(uint64)
	case TypeInt64:
		_, ok = v.V.(int64)
	case TypeFloat64:
		_, ok = v.V.(float64)
	case TypeArray:
		if depth >= maxArrayDepth {
			return fmt.Errorf("arrays nested deeper than %d", maxArrayDepth)
		}
		switch v.Elem {
		case TypeUint8:
			_, ok = v.V.([]uint8)
		case TypeInt8:
			_, ok = v.V.([]int8)
		case TypeUint16:
			_, ok = v.V.([]uint16)
		case TypeInt16:
			_, ok = v.V.([]int16)
		case TypeUint32:
			_, ok = v.V.([]uint32)
		case TypeInt32:
			_, ok = v.V.([]int32)
		case TypeFloat32:
			_, ok = v.V.([]float32)
		case TypeBool:
			_, ok = v.V.([]bool)
		case TypeString:
			_, ok = v.V.([]string)
		case TypeUint64:
			_, ok = v.V.([]uint64)
		case TypeInt64:
			_, ok = v.V.([]int64)
		case TypeFloat64:
			_, ok = v.V.([]float64)
		case TypeArray:
			var a []Value
			a, ok = v.V.([]Value)
			for _, x := range a {
				if x.Type != TypeArray {
					return errors.New("array of arrays holds a non-array element")
				}
				if err := checkValue(x, depth+1); err != nil {
					return err
				}
			}
		}
	}
	if !ok {
		return fmt.Errorf("value %T does not match type %s (elem %s)", v.V, v.Type, v.Elem)
	}
	return nil
}

// KV is one metadata entry.
type KV struct {
	Key   string
	Value Value
}

// WriteGGUF writes a complete GGUF file to w: the metadata entries in
// order, then the tensors with their data.
func WriteGGUF(w io.Writer, meta []KV, tensors []*Tensor) error {
	gw := NewGGUFWriter(w)
	for _, kv := range meta {
		if err := gw.SetMeta(kv.Key, kv.Value); err != nil {
			return err
		}
	}
	for _, t := range tensors {
		if err := gw.AddTensor(t.Name, t.Type, t.Shape); err != nil {
			return err
		}
	}
	for _, t := range tensors {
		if err := gw.WriteTensor(t.Name, t.Data); err != nil {
			return err
		}
	}
	return gw.Close()
}
