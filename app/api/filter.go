package api

import (
	"encoding/json"
	"errors"
	"strings"
)

// errStopped is returned by an emit callback to end generation normally:
// a stop string matched, or a JSON answer is complete.
var errStopped = errors.New("stop condition reached")

// errBadJSON: in JSON mode the model wrote something that is not JSON.
var errBadJSON = errors.New("model output is not a JSON object")

// stopFilter passes text on, holding back any tail that could be the start
// of a stop string, and cuts the output just before the first stop string
// to be completed.
type stopFilter struct {
	stops []string
	held  string
	out   func(string) error
}

func (f *stopFilter) push(s string) error {
	if len(f.stops) == 0 {
		return f.out(s)
	}
	f.held += s
	// Stop at the stop string that is complete first (the smallest end);
	// of those ending there, the longest. So the result does not depend on
	// how the text arrives in pieces.
	cut, end := -1, -1
	for _, st := range f.stops {
		if i := strings.Index(f.held, st); i >= 0 && (end < 0 || i+len(st) < end || (i+len(st) == end && i < cut)) {
			cut, end = i, i+len(st)
		}
	}
	if cut >= 0 {
		text := f.held[:cut]
		f.held = ""
		if text != "" {
			if err := f.out(text); err != nil {
				return err
			}
		}
		return errStopped
	}
	keep := 0
	for _, st := range f.stops {
		for n := min(len(st)-1, len(f.held)); n > keep; n-- {
			if strings.HasSuffix(f.held, st[:n]) {
				keep = n
				break
			}
		}
	}
	text := f.held[:len(f.held)-keep]
	f.held = f.held[len(f.held)-keep:]
	if text == "" {
		return nil
	}
	return f.out(text)
}

// flush emits what was held back once generation is over.
func (f *stopFilter) flush() error {
	if f.held == "" {
		return nil
	}
	s := f.held
	f.held = ""
	return f.out(s)
}

// jsonGuard implements response_format json_object / format "json".
//
// What it guarantees: the text it passes on is a prefix of one JSON object
// (leading whitespace dropped); it ends generation as soon as that object's
// closing brace arrives and then checks the whole object with json.Valid.
// So a response that finished normally holds exactly one syntactically
// valid JSON object. If the model writes anything that cannot start an
// object, or the finished object does not parse, the request fails with
// errBadJSON; if the token limit cuts the object short the text is
// incomplete and the finish reason says "length" (as OpenAI documents).
// It does not constrain sampling (the engine exposes no logit mask) and
// does not check a JSON schema.
type jsonGuard struct {
	out      func(string) error
	buf      strings.Builder
	started  bool
	depth    int
	inString bool
	escape   bool
	done     bool
}

func (g *jsonGuard) push(s string) error {
	if g.done {
		return errStopped
	}
	if !g.started {
		s = strings.TrimLeft(s, " \t\r\n")
		if s == "" {
			return nil
		}
		if s[0] != '{' {
			return errBadJSON
		}
		g.started = true
	}
	end := -1
	for i := 0; i < len(s) && end < 0; i++ {
		c := s[i]
		switch {
		case g.escape:
			g.escape = false
		case g.inString:
			if c == '\\' {
				g.escape = true
			} else if c == '"' {
				g.inString = false
			}
		case c == '"':
			g.inString = true
		case c == '{' || c == '[':
			g.depth++
		case c == '}' || c == ']':
			g.depth--
			if g.depth == 0 {
				end = i + 1
			}
		}
	}
	if end >= 0 {
		s = s[:end]
	}
	g.buf.WriteString(s)
	if end >= 0 {
		g.done = true
		if !json.Valid([]byte(g.buf.String())) {
			return errBadJSON
		}
	}
	if err := g.out(s); err != nil {
		return err
	}
	if g.done {
		return errStopped
	}
	return nil
}

// jsonInstruction is added to the system prompt in JSON mode.
const jsonInstruction = "Reply with one JSON object and nothing else."
