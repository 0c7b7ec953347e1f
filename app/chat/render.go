package chat

import (
	"io"
	"strings"
	"unicode/utf8"
)

// printable drops what a terminal would take as a command rather than
// text from model output: control characters other than newline and tab
// (ESC starts colour, cursor, title and clipboard sequences), C1 controls
// and bytes that are not UTF-8 (0x9b is CSI on 8-bit terminals).
func printable(s string) string {
	if strings.IndexFunc(s, unprintable) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unprintable(r) {
			return -1
		}
		return r
	}, s)
}

func unprintable(r rune) bool {
	return r == utf8.RuneError || (r < 0x20 && r != '\n' && r != '\t') || (r >= 0x7f && r < 0xa0)
}

// answerWriter streams an answer: raw text as it comes, or, with a
// renderer, one Markdown block at a time (a paragraph, list or fenced code
// block is rendered as soon as it is complete).
type answerWriter struct {
	out    io.Writer
	render func(string) (string, error)
	buf    strings.Builder
}

func newAnswerWriter(out io.Writer, render func(string) (string, error)) *answerWriter {
	return &answerWriter{out: out, render: render}
}

func (w *answerWriter) write(s string) error {
	if w.render == nil {
		_, err := io.WriteString(w.out, s)
		return err
	}
	w.buf.WriteString(s)
	text := w.buf.String()
	cut := blockEnd(text)
	if cut <= 0 {
		return nil
	}
	w.buf.Reset()
	w.buf.WriteString(text[cut:])
	return w.emit(text[:cut])
}

func (w *answerWriter) flush() error {
	if w.render == nil || w.buf.Len() == 0 {
		return nil
	}
	text := w.buf.String()
	w.buf.Reset()
	return w.emit(text)
}

func (w *answerWriter) emit(block string) error {
	if strings.TrimSpace(block) == "" {
		return nil
	}
	r, err := w.render(block)
	if err != nil {
		r = block // show the raw text rather than nothing
	}
	_, werr := io.WriteString(w.out, r)
	return werr
}

// blockEnd returns the end of the last complete Markdown block in text:
// after a blank line outside a code fence, or after a closing fence line.
// It returns 0 when no block is complete yet.
func blockEnd(text string) int {
	end, pos := 0, 0
	inFence := false
	prevBlank := false
	for {
		nl := strings.IndexByte(text[pos:], '\n')
		if nl < 0 {
			return end
		}
		line := text[pos : pos+nl]
		next := pos + nl + 1
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~"):
			if inFence {
				end = next
			}
			inFence = !inFence
			prevBlank = false
		case trimmed == "" && !inFence:
			if !prevBlank && pos > 0 {
				end = next
			}
			prevBlank = true
		default:
			prevBlank = false
		}
		pos = next
	}
}
