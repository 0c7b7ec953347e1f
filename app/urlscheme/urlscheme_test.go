package urlscheme

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Action
		err  string
	}{
		{in: "phi4mac://ask?q=What+is+a+monad%3F", want: Action{Kind: "ask", Question: "What is a monad?"}},
		{in: "PHI4MAC://Ask?q=hi&model=ollama:phi4:latest", want: Action{Kind: "ask", Question: "hi", Model: "ollama:phi4:latest"}},
		{in: "phi4mac:ask?q=%C3%A9t%C3%A9", want: Action{Kind: "ask", Question: "été"}},
		{in: "phi4mac:///ask?q=x", want: Action{Kind: "ask", Question: "x"}},
		{in: "phi4mac://chat", want: Action{Kind: "chat"}},
		{in: "phi4mac://chat?q=hello&model=microsoft/phi-4", want: Action{Kind: "chat", Question: "hello", Model: "microsoft/phi-4"}},
		{in: "phi4mac://ask", err: "needs a question"},
		{in: "phi4mac://ask?q=%20%20", err: "needs a question"},
		{in: "https://ask?q=x", err: "scheme"},
		{in: "phi4mac://run?cmd=rm", err: "unknown action"},
		{in: "phi4mac://ask/extra?q=x", err: "unexpected path"},
		{in: "phi4mac://ask?q=x&model=/etc/passwd", err: "not a path"},
		{in: "phi4mac://ask?q=x&model=../../x", err: "not a path"},
		{in: "phi4mac://ask?q=%ff", err: "UTF-8"},
		{in: "phi4mac://ask?q=%zz", err: "query"},
		{in: "phi4mac://ask?q=" + strings.Repeat("a", MaxQuestion+1), err: "longer"},
		{in: "::::", err: "valid"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrBadURL) {
				t.Errorf("Parse(%.40q) = %+v, %v; want error with %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestURLRoundTrip(t *testing.T) {
	for _, a := range []Action{
		{Kind: "ask", Question: "a & b = c? 100%"},
		{Kind: "chat"},
		{Kind: "chat", Question: "line1\nline2", Model: "ollama:phi4:latest"},
	} {
		got, err := Parse(URL(a))
		if err != nil || got != a {
			t.Errorf("round trip of %+v via %s: %+v %v", a, URL(a), got, err)
		}
	}
}

type recorder struct{ calls []string }

func (r *recorder) Ask(_ context.Context, a Action) error {
	r.calls = append(r.calls, "ask:"+a.Question)
	return nil
}
func (r *recorder) Chat(_ context.Context, a Action) error {
	r.calls = append(r.calls, "chat:"+a.Question)
	return nil
}

func TestRoute(t *testing.T) {
	var r recorder
	for _, u := range []string{"phi4mac://ask?q=one", "phi4mac://chat?q=two", "phi4mac://bogus"} {
		_ = Route(context.Background(), u, &r)
	}
	if strings.Join(r.calls, ",") != "ask:one,chat:two" {
		t.Errorf("calls %q", r.calls)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"phi4mac://ask?q=x", "phi4mac:chat", "phi4mac://chat?q=a&model=b", "phi4mac:///ask?q=%20"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			return
		}
		if a.Kind != "ask" && a.Kind != "chat" {
			t.Fatalf("Parse(%q) kind %q", s, a.Kind)
		}
		if b, err := Parse(URL(a)); err != nil || b != a {
			t.Fatalf("re-parse of %q: %+v %v (was %+v)", URL(a), b, err, a)
		}
	})
}
