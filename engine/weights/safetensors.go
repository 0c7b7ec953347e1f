package weights

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/phi4mac/phi4mac/engine/quant"
)

// IndexFile is the name of the shard index of a sharded safetensors model.
const IndexFile = "model.safetensors.index.json"

// maxSafetensorsHeader bounds the JSON header (the format's own limit is
// 100 MB).
const maxSafetensorsHeader = 100 << 20

// Safetensors is an open safetensors model: one file, or the shards listed
// by a model.safetensors.index.json. Tensor data aliases read-only mappings.
type Safetensors struct {
	path     string
	tensors  []*Tensor
	byName   map[string]*Tensor
	metadata map[string]string
	releases []func() error
}

// OpenSafetensors opens a safetensors model. path is a .safetensors file, a
// model.safetensors.index.json shard index, or a folder holding either
// (model.safetensors.index.json is preferred, then model.safetensors).
// Supported dtypes are F32, F16 and BF16.
func OpenSafetensors(path string) (*Safetensors, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open safetensors: %w", err)
	}
	if fi.IsDir() {
		idx := filepath.Join(path, IndexFile)
		if _, err := os.Stat(idx); err == nil {
			return openSharded(idx)
		}
		single := filepath.Join(path, "model.safetensors")
		if _, err := os.Stat(single); err != nil {
			return nil, fmt.Errorf("open safetensors: %s has neither %s nor model.safetensors", path, IndexFile)
		}
		path = single
	} else if strings.HasSuffix(path, ".json") {
		return openSharded(path)
	}
	s := &Safetensors{path: path, byName: map[string]*Tensor{}}
	if _, err := s.addFile(path); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// openSharded opens every shard named by the index at path.
func openSharded(path string) (*Safetensors, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("open safetensors index: %w", err)
	}
	var index struct {
		Metadata  map[string]any    `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(raw, &index); err != nil {
		return nil, fmt.Errorf("safetensors index %s: %w", path, err)
	}
	if len(index.WeightMap) == 0 {
		return nil, fmt.Errorf("safetensors index %s: empty weight_map", path)
	}
	dir := filepath.Dir(path)
	var shards []string
	for _, shard := range index.WeightMap {
		if shard == "" || filepath.IsAbs(shard) || strings.Contains(filepath.ToSlash(shard), "/") || shard == ".." {
			return nil, fmt.Errorf("safetensors index %s: bad shard file name %q", path, shard)
		}
		if !slices.Contains(shards, shard) {
			shards = append(shards, shard)
		}
	}
	sort.Strings(shards)
	s := &Safetensors{path: path, byName: map[string]*Tensor{}}
	inShard := map[string]string{}
	for _, shard := range shards {
		added, err := s.addFile(filepath.Join(dir, shard))
		if err != nil {
			s.Close()
			return nil, err
		}
		for _, t := range added {
			inShard[t.Name] = shard
		}
	}
	for name, shard := range index.WeightMap {
		if got, ok := inShard[name]; !ok || got != shard {
			s.Close()
			return nil, fmt.Errorf("safetensors index %s: tensor %q is not in its shard %s", path, name, shard)
		}
	}
	return s, nil
}

// addFile maps one safetensors file and adds its tensors.
func (s *Safetensors) addFile(path string) ([]*Tensor, error) {
	data, release, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("open safetensors %s: %w", path, err)
	}
	s.releases = append(s.releases, release)
	tensors, meta, err := parseSafetensors(data)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	for _, t := range tensors {
		if _, dup := s.byName[t.Name]; dup {
			return nil, fmt.Errorf("safetensors %s: tensor %q also appears in another shard", path, t.Name)
		}
		s.byName[t.Name] = t
	}
	s.tensors = append(s.tensors, tensors...)
	if meta != nil && s.metadata == nil {
		s.metadata = meta
	}
	return tensors, nil
}

// Close releases all mappings. Tensor data must not be used afterwards:
// as GGUF.Close does, Close sets each Tensor's Data to nil. Closing twice
// is harmless.
func (s *Safetensors) Close() error {
	var errs []error
	if s.releases == nil {
		return nil
	}
	for _, t := range s.tensors {
		t.Data = nil // see GGUF.Close
	}
	for _, r := range s.releases {
		errs = append(errs, r())
	}
	s.releases = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close safetensors %s: %w", s.path, err)
	}
	return nil
}

// Path returns the path the model was opened from.
func (s *Safetensors) Path() string { return s.path }

// Tensors returns all tensors: shards in file-name order, and within a file
// in data order.
func (s *Safetensors) Tensors() []*Tensor { return s.tensors }

// Tensor returns the tensor called name.
func (s *Safetensors) Tensor(name string) (*Tensor, bool) {
	t, ok := s.byName[name]
	return t, ok
}

// Metadata returns the __metadata__ string map of the (first) file, or nil.
func (s *Safetensors) Metadata() map[string]string { return s.metadata }

// SafetensorsDType returns the safetensors dtype name of a tensor type
// ("F32", "F16", "BF16"), or false for types safetensors cannot hold.
func SafetensorsDType(t quant.Type) (string, bool) {
	switch t {
	case quant.F32, quant.F16, quant.BF16:
		return t.String(), true
	}
	return "", false
}

type stEntry struct {
	DType       string            `json:"dtype"`
	Shape       []int64           `json:"shape"`
	DataOffsets []uint64          `json:"data_offsets"`
	Raw         map[string]string `json:"-"`
}

// parseSafetensors parses a whole safetensors file held in data.
func parseSafetensors(data []byte) ([]*Tensor, map[string]string, error) {
	if len(data) < 8 {
		return nil, nil, errors.New("file too short for a safetensors header")
	}
	n := binary.LittleEndian.Uint64(data)
	if n > uint64(len(data)-8) || n > maxSafetensorsHeader {
		return nil, nil, fmt.Errorf("header length %d exceeds the file (%d bytes) or the 100 MB limit", n, len(data))
	}
	header := data[8 : 8+n]
	body := data[8+n:]
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(header, &raw); err != nil {
		return nil, nil, fmt.Errorf("header JSON: %w", err)
	}
	var meta map[string]string
	tensors := make([]*Tensor, 0, len(raw))
	begins := map[*Tensor]uint64{}
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &meta); err != nil {
				return nil, nil, fmt.Errorf("__metadata__ must map strings to strings: %w", err)
			}
			continue
		}
		var e stEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		t, begin, err := e.tensor(name, body)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		tensors = append(tensors, t)
		begins[t] = begin
	}
	sort.Slice(tensors, func(i, j int) bool {
		bi, bj := begins[tensors[i]], begins[tensors[j]]
		if bi != bj {
			return bi < bj
		}
		return tensors[i].Name < tensors[j].Name
	})
	var end uint64
	for i, t := range tensors {
		b := begins[t]
		if i > 0 && b < end {
			return nil, nil, fmt.Errorf("tensor %q overlaps tensor %q", t.Name, tensors[i-1].Name)
		}
		end = b + uint64(len(t.Data))
	}
	return tensors, meta, nil
}

func (e *stEntry) tensor(name string, body []byte) (*Tensor, uint64, error) {
	var typ quant.Type
	switch e.DType {
	case "F32":
		typ = quant.F32
	case "F16":
		typ = quant.F16
	case "BF16":
		typ = quant.BF16
	case "":
		return nil, 0, errors.New("missing dtype")
	default:
		return nil, 0, fmt.Errorf("unsupported dtype %s (phi4mac reads F32, F16 and BF16 safetensors)", e.DType)
	}
	if len(e.DataOffsets) != 2 {
		return nil, 0, fmt.Errorf("data_offsets must have 2 entries, has %d", len(e.DataOffsets))
	}
	if len(e.Shape) > 8 {
		return nil, 0, fmt.Errorf("%d dimensions", len(e.Shape))
	}
	shape := make([]int, len(e.Shape))
	elems := uint64(1)
	for i, d := range e.Shape {
		if d < 0 {
			return nil, 0, fmt.Errorf("negative dimension %d", d)
		}
		hi, lo := bits.Mul64(elems, uint64(d))
		if uint64(d) > maxElems || hi != 0 || lo > maxElems {
			return nil, 0, fmt.Errorf("shape %v overflows", e.Shape)
		}
		elems = lo
		shape[i] = int(d)
	}
	size := elems * uint64(typ.BlockBytes())
	begin, end := e.DataOffsets[0], e.DataOffsets[1]
	if begin > end || end > uint64(len(body)) {
		return nil, 0, fmt.Errorf("data_offsets [%d, %d] outside the %d data bytes (truncated?)", begin, end, len(body))
	}
	if end-begin != size {
		return nil, 0, fmt.Errorf("data_offsets [%d, %d] hold %d bytes, but %s %v needs %d", begin, end, end-begin, e.DType, e.Shape, size)
	}
	return &Tensor{Name: name, Type: typ, Shape: shape, Data: body[begin:end:end]}, begin, nil
}
