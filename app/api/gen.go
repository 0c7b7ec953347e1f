package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/phi4mac/phi4mac/app/llm"
)

// decodeJSON decodes the request body into v, rejecting malformed JSON,
// wrong types, trailing data and oversized bodies with a clear message.
// Unknown fields are ignored, as the real APIs do.
func decodeJSON(r *http.Request, v any) error {
	if r.Body == nil {
		return badRequest("", "request body is empty: send a JSON object")
	}
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("", "request body holds more than one JSON value")
	}
	return nil
}

func decodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var mbe *http.MaxBytesError
	var fe *fieldError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, io.EOF):
		return badRequest("", "request body is empty: send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "request body is truncated JSON")
	case errors.As(err, &syn):
		return badRequest("", "request body is not valid JSON (at byte %d): %v", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return badRequest("", "request body must be a JSON object, not %s", typ.Value)
		}
		return badRequest(field, "field %q has the wrong type: got %s, want %s", field, typ.Value, jsonKind(typ.Type.String()))
	case errors.As(err, &fe):
		return badRequest(fe.field, "%s", fe.msg)
	case errors.As(err, &ne) && ne.Timeout():
		return &apiError{status: http.StatusRequestTimeout, code: "request_timeout", msg: "the request body did not arrive in time"}
	default:
		return badRequest("", "cannot decode request: %v", err)
	}
}

func jsonKind(goType string) string {
	switch {
	case strings.Contains(goType, "int"):
		return "an integer"
	case strings.Contains(goType, "float"):
		return "a number"
	case goType == "bool" || goType == "*bool":
		return "a boolean"
	case strings.Contains(goType, "string"):
		return "a string"
	case strings.HasPrefix(goType, "[]") || strings.HasPrefix(goType, "*[]"):
		return "an array"
	default:
		return "an object"
	}
}

// fieldError is returned by custom UnmarshalJSON methods.
type fieldError struct{ field, msg string }

func (e *fieldError) Error() string { return e.msg }

// job is one generation request, in API-neutral form.
type job struct {
	model     string
	req       llm.Request
	stops     []string
	json      bool
	keepAlive *time.Duration
}

// resolveModel finds the model a request names; "" is the default model.
func (s *Server) resolveModel(ctx context.Context, name string) (llm.Info, error) {
	list, err := s.opts.Loader.List(ctx)
	if err != nil {
		return llm.Info{}, fmt.Errorf("list models: %w", err)
	}
	if name == "" {
		if len(list) == 0 {
			return llm.Info{}, &apiError{status: http.StatusNotFound, code: "model_not_found", param: "model",
				msg: "no models installed: run `phi4mac pull microsoft/phi-4` or set a model path"}
		}
		return list[0], nil
	}
	for _, pass := range []func(string) string{
		func(n string) string { return n },
		func(n string) string { return strings.TrimSuffix(n, ":latest") },
	} {
		for _, m := range list {
			if pass(m.Name) == pass(name) {
				return m, nil
			}
		}
	}
	return llm.Info{}, &apiError{status: http.StatusNotFound, code: "model_not_found", param: "model",
		msg: fmt.Sprintf("model %q not found (see GET /v1/models or /api/tags)", name)}
}

// prepare applies the default system prompt, JSON mode and size limits.
func (s *Server) prepare(j *job) error {
	size := len(j.req.Prompt)
	for _, m := range j.req.Messages {
		size += len(m.Content)
	}
	if size > s.opts.MaxPromptBytes {
		return &apiError{status: http.StatusRequestEntityTooLarge, code: "prompt_too_large", param: "messages",
			msg: fmt.Sprintf("prompt is %d bytes; the limit is %d", size, s.opts.MaxPromptBytes)}
	}
	if j.req.Messages == nil {
		return nil
	}
	hasSystem := len(j.req.Messages) > 0 && j.req.Messages[0].Role == "system"
	if !hasSystem && (s.opts.SystemPrompt != "" || j.json) {
		j.req.Messages = append([]llm.Message{{Role: "system", Content: s.opts.SystemPrompt}}, j.req.Messages...)
	}
	if j.json {
		sys := &j.req.Messages[0]
		sys.Content = strings.TrimSpace(sys.Content + "\n" + jsonInstruction)
	}
	return nil
}

// generate runs j on its model, streaming text to emit after stop strings
// and JSON mode are applied. It returns the model it ran on.
func (s *Server) generate(ctx context.Context, j *job, emit func(string) error) (llm.Result, llm.Info, error) {
	info, err := s.resolveModel(ctx, j.model)
	if err != nil {
		return llm.Result{}, info, err
	}
	if err := s.prepare(j); err != nil {
		return llm.Result{}, info, err
	}
	var res llm.Result
	err = s.run.use(ctx, info.Name, j.keepAlive, func(m llm.Model, load time.Duration) error {
		out := emit
		var guard *jsonGuard
		if j.json {
			guard = &jsonGuard{out: emit}
			out = guard.push
		}
		sf := &stopFilter{stops: j.stops, out: out}
		r, err := m.Generate(ctx, j.req, sf.push)
		r.LoadDuration = load
		if err == nil {
			err = sf.flush()
		}
		if errors.Is(err, errStopped) {
			err = nil
			r.FinishReason = "stop"
		}
		if err == nil && guard != nil && !guard.done && r.FinishReason != "length" {
			err = errBadJSON
		}
		res = r
		return err
	})
	return res, info, err
}

// streamWriter writes a streamed response, sending headers with the first
// event so that errors before it still get a proper status.
type streamWriter struct {
	w           http.ResponseWriter
	rc          *http.ResponseController
	contentType string
	started     bool
}

func newStreamWriter(w http.ResponseWriter, contentType string) *streamWriter {
	return &streamWriter{w: w, rc: http.NewResponseController(w), contentType: contentType}
}

func (sw *streamWriter) write(b []byte) error {
	if !sw.started {
		h := sw.w.Header()
		h.Set("Content-Type", sw.contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		sw.w.WriteHeader(http.StatusOK)
		sw.started = true
	}
	if _, err := sw.w.Write(b); err != nil {
		return err
	}
	return sw.rc.Flush()
}

func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own response types are marshalled; they always encode.
		panic(fmt.Sprintf("api: marshal %T: %v", v, err))
	}
	return b
}
