package api

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// pieces splits s at the given byte offsets (mod len(s)), as token streams do.
func pieces(s string, cuts []byte) []string {
	var out []string
	last := 0
	for _, c := range cuts {
		if len(s) == 0 {
			break
		}
		i := int(c) % (len(s) + 1)
		if i > last {
			out = append(out, s[last:i])
			last = i
		}
	}
	return append(out, s[last:])
}

func runStop(text string, stops []string, cuts []byte) (string, bool) {
	var sb strings.Builder
	f := &stopFilter{stops: stops, out: func(s string) error { sb.WriteString(s); return nil }}
	for _, p := range pieces(text, cuts) {
		if err := f.push(p); errors.Is(err, errStopped) {
			return sb.String(), true
		}
	}
	f.flush()
	return sb.String(), false
}

func TestStopFilter(t *testing.T) {
	tests := []struct {
		text  string
		stops []string
		cuts  []byte
		want  string
		stop  bool
	}{
		{"hello world", []string{"wor"}, []byte{3, 7}, "hello ", true},
		{"hello world", []string{"xyz"}, []byte{1, 2, 3}, "hello world", false},
		{"ab<|end|>cd", []string{"<|end|>"}, []byte{3, 4, 5, 6}, "ab", true},
		{"aaab", []string{"aab"}, []byte{1, 2, 3}, "a", true},
		{"tail <|en", []string{"<|end|>"}, []byte{6}, "tail <|en", false},
		{"x STOP y STO", []string{"STO", "P y"}, nil, "x ", true},
		{"abcd", []string{"abcd", "bc"}, nil, "a", true}, // "bc" is complete first
		{"abcd", []string{"abcd", "bc"}, []byte{2}, "a", true},
	}
	for _, tt := range tests {
		got, stop := runStop(tt.text, tt.stops, tt.cuts)
		if got != tt.want || stop != tt.stop {
			t.Errorf("%q stops %q: got %q %v, want %q %v", tt.text, tt.stops, got, stop, tt.want, tt.stop)
		}
	}
}

// FuzzStopFilter: however the text is split into pieces, the output is the
// text up to the first occurrence of a stop string.
func FuzzStopFilter(f *testing.F) {
	f.Add("hello world", "wor", "ld", []byte{3, 7})
	f.Add("ab<|end|>cd", "<|end|>", "", []byte{3, 4, 5})
	f.Add("aaaab", "aab", "b", []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, text, s1, s2 string, cuts []byte) {
		var stops []string
		for _, s := range []string{s1, s2} {
			if s != "" {
				stops = append(stops, s)
			}
		}
		// Byte by byte: the first prefix that contains a stop string ends
		// the text, at the earliest start among the stops it contains.
		want, wantStop := text, false
		for l := 1; l <= len(text) && !wantStop; l++ {
			for _, s := range stops {
				if i := strings.Index(text[:l], s); i >= 0 && (!wantStop || i < len(want)) {
					want, wantStop = text[:i], true
				}
			}
		}
		got, stop := runStop(text, stops, cuts)
		if got != want || stop != wantStop {
			t.Fatalf("%q stops %q cuts %v: got %q %v, want %q %v", text, stops, cuts, got, stop, want, wantStop)
		}
	})
}

// FuzzJSONGuard: a guard that finishes without error has passed on exactly
// the first JSON value of the text, and that value is an object.
func FuzzJSONGuard(f *testing.F) {
	f.Add(` {"a": [1, "}\""]} trailing`, []byte{2, 9})
	f.Add(`{"a":{"b":{}}}`, []byte{1})
	f.Add(`Sure: {"a":1}`, []byte{})
	f.Add(`{"a" 1}`, []byte{3})
	f.Fuzz(func(t *testing.T, text string, cuts []byte) {
		var sb strings.Builder
		g := &jsonGuard{out: func(s string) error { sb.WriteString(s); return nil }}
		var err error
		for _, p := range pieces(text, cuts) {
			if err = g.push(p); err != nil {
				break
			}
		}
		if !errors.Is(err, errStopped) {
			return // failed or unfinished: nothing is promised
		}
		out := sb.String()
		if !json.Valid([]byte(out)) || !strings.HasPrefix(out, "{") {
			t.Fatalf("%q: guard passed %q", text, out)
		}
		var raw json.RawMessage
		if derr := json.NewDecoder(strings.NewReader(text)).Decode(&raw); derr != nil || string(raw) != out {
			t.Fatalf("%q: guard passed %q, first JSON value %q (%v)", text, out, raw, derr)
		}
	})
}
