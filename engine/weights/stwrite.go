package weights

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// WriteSafetensors writes tensors (F32, F16 or BF16) as one safetensors
// file: the 8-byte header length, the JSON header (with metadata under
// "__metadata__", keys sorted, then the tensors in the order given, padded
// with spaces to a multiple of 8 bytes) and the tensor data in the same
// order. The JSON is compact and ASCII-only, as Python's json.dumps with
// separators (",", ":") writes it, so the output matches the reference
// generator's byte for byte.
func WriteSafetensors(w io.Writer, tensors []*Tensor, metadata map[string]string) error {
	return WriteSafetensorsFunc(w, tensors, metadata, nil)
}

// WriteSafetensorsFunc is WriteSafetensors for tensors whose data is
// produced on demand: when data is non-nil it is called once per tensor,
// in order, instead of reading Tensor.Data (which may then be nil), so a
// large model can be streamed one tensor at a time.
func WriteSafetensorsFunc(w io.Writer, tensors []*Tensor, metadata map[string]string, data func(t *Tensor) ([]byte, error)) error {
	var h strings.Builder
	h.WriteByte('{')
	first := true
	sep := func() {
		if !first {
			h.WriteByte(',')
		}
		first = false
	}
	if len(metadata) > 0 {
		sep()
		h.WriteString(`"__metadata__":{`)
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				h.WriteByte(',')
			}
			writeJSONString(&h, k)
			h.WriteByte(':')
			writeJSONString(&h, metadata[k])
		}
		h.WriteByte('}')
	}
	var off uint64
	seen := map[string]bool{}
	for _, t := range tensors {
		dtype, ok := SafetensorsDType(t.Type)
		if !ok {
			return fmt.Errorf("write safetensors: tensor %q: type %s cannot be stored in safetensors", t.Name, t.Type)
		}
		if seen[t.Name] || t.Name == "__metadata__" {
			return fmt.Errorf("write safetensors: duplicate or reserved tensor name %q", t.Name)
		}
		seen[t.Name] = true
		size := uint64(t.Elements() * t.Type.BlockBytes())
		if data == nil && uint64(len(t.Data)) != size {
			return fmt.Errorf("write safetensors: tensor %q: %d data bytes, shape %v needs %d", t.Name, len(t.Data), t.Shape, size)
		}
		sep()
		writeJSONString(&h, t.Name)
		h.WriteString(`:{"dtype":"` + dtype + `","shape":[`)
		for i, d := range t.Shape {
			if i > 0 {
				h.WriteByte(',')
			}
			h.WriteString(strconv.Itoa(d))
		}
		end := off + size
		fmt.Fprintf(&h, `],"data_offsets":[%d,%d]}`, off, end)
		off = end
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(h.Len()))
	if _, err := w.Write(n[:]); err != nil {
		return fmt.Errorf("write safetensors: %w", err)
	}
	if _, err := io.WriteString(w, h.String()); err != nil {
		return fmt.Errorf("write safetensors: %w", err)
	}
	for _, t := range tensors {
		b := t.Data
		if data != nil {
			var err error
			if b, err = data(t); err != nil {
				return fmt.Errorf("write safetensors: tensor %q: %w", t.Name, err)
			}
			if want := t.Elements() * t.Type.BlockBytes(); len(b) != want {
				return fmt.Errorf("write safetensors: tensor %q: %d data bytes, shape %v needs %d", t.Name, len(b), t.Shape, want)
			}
		}
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("write safetensors: tensor %q: %w", t.Name, err)
		}
	}
	return nil
}

// writeJSONString writes s as a JSON string with Python's ensure_ascii
// escaping.
func writeJSONString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || (r >= 0x7f && r < 0x10000) || r == utf8.RuneError:
			fmt.Fprintf(b, `\u%04x`, r)
		case r >= 0x10000:
			r -= 0x10000
			fmt.Fprintf(b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}
