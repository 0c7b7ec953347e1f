package chat

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"charm.land/glamour/v2"
	"github.com/peterh/liner"
)

// Terminal is a LineReader over the real terminal with line editing and a
// history kept in a file.
type Terminal struct {
	l           *liner.State
	historyPath string
}

// NewTerminal takes over the terminal for line editing. historyPath, when
// set, is loaded now and saved by Close.
func NewTerminal(historyPath string) *Terminal {
	l := liner.NewLiner()
	l.SetCtrlCAborts(true)
	l.SetMultiLineMode(true)
	l.SetCompleter(func(line string) []string {
		var out []string
		for _, c := range []string{"/new", "/system ", "/save ", "/model ", "/temperature ", "/help", "/quit"} {
			if len(line) > 0 && line[0] == '/' && len(c) >= len(line) && c[:len(line)] == line {
				out = append(out, c)
			}
		}
		return out
	})
	t := &Terminal{l: l, historyPath: historyPath}
	if historyPath != "" {
		if f, err := os.Open(historyPath); err == nil {
			_, _ = l.ReadHistory(f)
			f.Close()
		}
	}
	return t
}

// ReadLine implements LineReader.
func (t *Terminal) ReadLine(prompt string) (string, error) {
	line, err := t.l.Prompt(prompt)
	switch {
	case errors.Is(err, liner.ErrPromptAborted):
		return "", ErrLineAborted
	case err != nil:
		return "", err
	}
	if line != "" {
		t.l.AppendHistory(line)
	}
	return line, nil
}

// Close restores the terminal and saves the history.
func (t *Terminal) Close() error {
	var herr error
	if t.historyPath != "" {
		if err := os.MkdirAll(filepath.Dir(t.historyPath), 0o700); err == nil {
			if f, err := os.OpenFile(t.historyPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err == nil {
				_, herr = t.l.WriteHistory(f)
				f.Close()
			}
		}
	}
	if err := t.l.Close(); err != nil {
		return err
	}
	return herr
}

// MarkdownRenderer returns a renderer for answers on a terminal of the
// given width (glamour's dark style, or $GLAMOUR_STYLE).
func MarkdownRenderer(width int) (func(string) (string, error), error) {
	style := os.Getenv("GLAMOUR_STYLE")
	if style == "" {
		style = "dark"
	}
	if width <= 0 {
		width = 80
	}
	r, err := glamour.NewTermRenderer(glamour.WithStandardStyle(style), glamour.WithWordWrap(min(width, 120)))
	if err != nil {
		return nil, fmt.Errorf("markdown renderer: %w", err)
	}
	return r.Render, nil
}
