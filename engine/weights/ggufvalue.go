package weights

import (
	"fmt"
	"math"
)

// ValueType is the type tag of a GGUF metadata value.
type ValueType uint32

// GGUF metadata value types, with their on-disk ids.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32",
	"float32", "bool", "string", "array", "uint64", "int64", "float64"}

// String returns the GGUF name of the type, e.g. "uint32".
func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("valuetype(%d)", uint32(t))
}

// size returns the encoded size of a fixed-size scalar type, or 0 for
// strings, arrays and unknown types.
func (t ValueType) size() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// Value is one GGUF metadata value with its exact on-disk type, so that a
// value read from one file can be written to another unchanged.
//
// V holds, for scalars, the Go value of matching type (uint8, int8, uint16,
// int16, uint32, int32, float32, bool, string, uint64, int64, float64). For
// arrays (Type == TypeArray) Elem is the element type and V is the matching
// slice ([]uint8 ... []float64, []bool, []string), or []Value when the
// elements are themselves arrays.
type Value struct {
	Type ValueType
	Elem ValueType
	V    any
}

// Scalar metadata value constructors, for building metadata to write.

// Uint32Value returns a uint32 metadata value.
func Uint32Value(v uint32) Value { return Value{Type: TypeUint32, V: v} }

// Int32Value returns an int32 metadata value.
func Int32Value(v int32) Value { return Value{Type: TypeInt32, V: v} }

// Uint64Value returns a uint64 metadata value.
func Uint64Value(v uint64) Value { return Value{Type: TypeUint64, V: v} }

// Float32Value returns a float32 metadata value.
func Float32Value(v float32) Value { return Value{Type: TypeFloat32, V: v} }

// BoolValue returns a bool metadata value.
func BoolValue(v bool) Value { return Value{Type: TypeBool, V: v} }

// StringValue returns a string metadata value.
func StringValue(v string) Value { return Value{Type: TypeString, V: v} }

// StringsValue returns an array-of-strings metadata value.
func StringsValue(v []string) Value { return Value{Type: TypeArray, Elem: TypeString, V: v} }

// Int32sValue returns an array-of-int32 metadata value.
func Int32sValue(v []int32) Value { return Value{Type: TypeArray, Elem: TypeInt32, V: v} }

// Float32sValue returns an array-of-float32 metadata value.
func Float32sValue(v []float32) Value { return Value{Type: TypeArray, Elem: TypeFloat32, V: v} }

// Len returns the number of elements of an array value (0 for scalars).
func (v Value) Len() int {
	switch a := v.V.(type) {
	case []uint8:
		return len(a)
	case []int8:
		return len(a)
	case []uint16:
		return len(a)
	case []int16:
		return len(a)
	case []uint32:
		return len(a)
	case []int32:
		return len(a)
	case []float32:
		return len(a)
	case []bool:
		return len(a)
	case []string:
		return len(a)
	case []uint64:
		return len(a)
	case []int64:
		return len(a)
	case []float64:
		return len(a)
	case []Value:
		return len(a)
	}
	return 0
}

// asUint converts an integer scalar to uint64; negative values fail.
func asUint(x any) (uint64, bool) {
	switch v := x.(type) {
	case uint8:
		return uint64(v), true
	case uint16:
		return uint64(v), true
	case uint32:
		return uint64(v), true
	case uint64:
		return v, true
	case int8:
		return uint64(v), v >= 0
	case int16:
		return uint64(v), v >= 0
	case int32:
		return uint64(v), v >= 0
	case int64:
		return uint64(v), v >= 0
	}
	return 0, false
}

// asInt converts an integer scalar to int64; uint64 values above MaxInt64 fail.
func asInt(x any) (int64, bool) {
	switch v := x.(type) {
	case uint8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint32:
		return int64(v), true
	case uint64:
		return int64(v), v <= math.MaxInt64
	case int8:
		return int64(v), true
	case int16:
		return int64(v), true
	case int32:
		return int64(v), true
	case int64:
		return v, true
	}
	return 0, false
}

// asFloat converts a float or integer scalar to float64.
func asFloat(x any) (float64, bool) {
	switch v := x.(type) {
	case float32:
		return float64(v), true
	case float64:
		return v, true
	}
	if i, ok := asInt(x); ok {
		return float64(i), true
	}
	if u, ok := asUint(x); ok {
		return float64(u), true
	}
	return 0, false
}

// ints converts an integer array to []int64.
func ints(x any) ([]int64, bool) {
	var out []int64
	conv := func(n int, at func(i int) int64) []int64 {
		out = make([]int64, n)
		for i := range out {
			out[i] = at(i)
		}
		return out
	}
	switch a := x.(type) {
	case []uint8:
		return conv(len(a), func(i int) int64 { return int64(a[i]) }), true
	case []int8:
		return conv(len(a), func(i int) int64 { return int64(a[i]) }), true
	case []uint16:
		return conv(len(a), func(i int) int64 { return int64(a[i]) }), true
	case []int16:
		return conv(len(a), func(i int) int64 { return int64(a[i]) }), true
	case []uint32:
		return conv(len(a), func(i int) int64 { return int64(a[i]) }), true
	case []int32:
		return conv(len(a), func(i int) int64 { return int64(a[i]) }), true
	case []int64:
		return conv(len(a), func(i int) int64 { return a[i] }), true
	case []uint64:
		for _, v := range a {
			if v > math.MaxInt64 {
				return nil, false
			}
		}
		return conv(len(a), func(i int) int64 { return int64(a[i]) }), true
	}
	return nil, false
}

// floats converts a float (or integer) array to []float64.
func floats(x any) ([]float64, bool) {
	switch a := x.(type) {
	case []float32:
		out := make([]float64, len(a))
		for i, v := range a {
			out[i] = float64(v)
		}
		return out, true
	case []float64:
		return append([]float64(nil), a...), true
	}
	is, ok := ints(x)
	if !ok {
		return nil, false
	}
	out := make([]float64, len(is))
	for i, v := range is {
		out[i] = float64(v)
	}
	return out, true
}
