// Package urlscheme parses and routes phi4mac:// links, so that Shortcuts,
// other apps and web pages can start a question or a chat:
//
//	phi4mac://ask?q=What+is+a+monad%3F[&model=NAME]
//	phi4mac://chat[?q=first+message][&model=NAME]
//
// On macOS the app registers the scheme in its Info.plist (see
// InfoPlistURLTypes) and hands each URL to Route; on every system
// `phi4mac open-url URL` takes the same path.
package urlscheme

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Scheme is the URL scheme phi4mac registers.
const Scheme = "phi4mac"

// MaxQuestion caps a question carried in a URL, in bytes.
const MaxQuestion = 32 << 10

// Action is what a link asks for.
type Action struct {
	Kind     string // "ask" or "chat"
	Question string // the question (ask: required; chat: optional first message)
	Model    string // a model name from the catalogue; "" for the default
}

// ErrBadURL: the link is not a valid phi4mac:// link.
var ErrBadURL = errors.New("not a valid phi4mac:// link")

// Parse reads a phi4mac:// link. It accepts phi4mac://ask?..,
// phi4mac:ask?.. and phi4mac:///ask?.. alike.
func Parse(raw string) (Action, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return Action{}, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	if !strings.EqualFold(u.Scheme, Scheme) {
		return Action{}, fmt.Errorf("%w: scheme %q, want %s://", ErrBadURL, u.Scheme, Scheme)
	}
	kind := u.Host
	rawQuery := u.RawQuery
	switch {
	case u.Opaque != "": // phi4mac:ask?q=...
		kind = u.Opaque
	case kind == "":
		kind = strings.Trim(u.Path, "/")
	case strings.Trim(u.Path, "/") != "":
		return Action{}, fmt.Errorf("%w: unexpected path %q", ErrBadURL, u.Path)
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return Action{}, fmt.Errorf("%w: query: %v", ErrBadURL, err)
	}
	a := Action{Kind: strings.ToLower(kind), Question: strings.TrimSpace(q.Get("q")), Model: q.Get("model")}
	if len(a.Question) > MaxQuestion {
		return Action{}, fmt.Errorf("%w: the question is longer than %d bytes", ErrBadURL, MaxQuestion)
	}
	if !utf8.ValidString(a.Question) || !utf8.ValidString(a.Model) {
		return Action{}, fmt.Errorf("%w: not UTF-8", ErrBadURL)
	}
	if strings.ContainsAny(a.Model, "\x00\\") || strings.HasPrefix(a.Model, "/") || strings.HasPrefix(a.Model, ".") || strings.HasPrefix(a.Model, "~") {
		return Action{}, fmt.Errorf("%w: model must be a name from `phi4mac models`, not a path", ErrBadURL)
	}
	switch a.Kind {
	case "ask":
		if a.Question == "" {
			return Action{}, fmt.Errorf("%w: phi4mac://ask needs a question (phi4mac://ask?q=QUESTION)", ErrBadURL)
		}
	case "chat":
	default:
		return Action{}, fmt.Errorf("%w: unknown action %q (use ask or chat)", ErrBadURL, a.Kind)
	}
	return a, nil
}

// Handler carries out actions: the CLI prints, the app opens windows.
type Handler interface {
	Ask(ctx context.Context, a Action) error
	Chat(ctx context.Context, a Action) error
}

// Route parses raw and calls the matching Handler method.
func Route(ctx context.Context, raw string, h Handler) error {
	a, err := Parse(raw)
	if err != nil {
		return err
	}
	if a.Kind == "ask" {
		return h.Ask(ctx, a)
	}
	return h.Chat(ctx, a)
}

// URL builds the link for a (the inverse of Parse).
func URL(a Action) string {
	q := url.Values{}
	if a.Question != "" {
		q.Set("q", a.Question)
	}
	if a.Model != "" {
		q.Set("model", a.Model)
	}
	u := url.URL{Scheme: Scheme, Host: a.Kind, RawQuery: q.Encode()}
	return u.String()
}

// InfoPlistURLTypes is the CFBundleURLTypes entry the macOS app bundle
// needs in its Info.plist to receive phi4mac:// links.
const InfoPlistURLTypes = `<key>CFBundleURLTypes</key>
<array>
	<dict>
		<key>CFBundleURLName</key>
		<string>com.phi4mac.url</string>
		<key>CFBundleURLSchemes</key>
		<array>
			<string>phi4mac</string>
		</array>
	</dict>
</array>`
