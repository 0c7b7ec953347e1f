package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/phi4mac/phi4mac/app/llm"
)

// Options configure a Server.
type Options struct {
	// Loader finds and loads models. Required.
	Loader llm.Loader
	// Defaults are used for sampling parameters a request leaves out.
	Defaults llm.Params
	// SystemPrompt is prepended to chats that bring no system message.
	SystemPrompt string
	// IdleUnload unloads the model after this long unused; 0 keeps it.
	IdleUnload time.Duration
	// Token, when set, is required as "Authorization: Bearer <Token>".
	Token string
	// AllowedOrigins are the exact browser origins CORS admits.
	AllowedOrigins []string
	// AllowedHosts are Host names accepted besides loopback ones (for a
	// deliberate non-loopback listen address). "*" accepts any Host and is
	// allowed only with a Token (a rebinding page cannot know the token).
	AllowedHosts []string
	// MaxBodyBytes caps a request body (default 8 MiB).
	MaxBodyBytes int64
	// MaxPromptBytes caps the text of one prompt (default 1 MiB).
	MaxPromptBytes int
	// BodyTimeout caps the time a client may take to send its request
	// body (default 30 s); the generation after it is not limited.
	BodyTimeout time.Duration
	// MaxQueue caps waiting requests (default 64); more get 503.
	MaxQueue int
	// Version is reported by /api/version.
	Version string
	// Logger receives request and model logs; nil discards them.
	Logger *slog.Logger
}

// Server serves the API. Create it with New; it is an http.Handler.
type Server struct {
	opts   Options
	run    *runner
	mux    *http.ServeMux
	log    *slog.Logger
	origin map[string]bool
}

// New returns a Server for opts.
func New(opts Options) (*Server, error) {
	if opts.Loader == nil {
		return nil, errors.New("api: Options.Loader is required")
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 8 << 20
	}
	if opts.MaxPromptBytes <= 0 {
		opts.MaxPromptBytes = 1 << 20
	}
	if opts.BodyTimeout <= 0 {
		opts.BodyTimeout = 30 * time.Second
	}
	if opts.MaxQueue <= 0 {
		opts.MaxQueue = 64
	}
	if opts.Version == "" {
		opts.Version = "0.0.0"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, log: log, origin: map[string]bool{}, mux: http.NewServeMux()}
	if slices.Contains(opts.AllowedHosts, "*") && opts.Token == "" {
		return nil, errors.New("api: AllowedHosts \"*\" requires a Token")
	}
	for _, o := range opts.AllowedOrigins {
		if o == "*" {
			return nil, errors.New("api: AllowedOrigins may not contain \"*\"")
		}
		s.origin[strings.ToLower(strings.TrimSuffix(o, "/"))] = true
	}
	s.run = newRunner(opts.Loader, opts.IdleUnload, opts.MaxQueue, log)
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	s.mux.HandleFunc("/v1/chat/completions", post(s.handleChatCompletions))
	s.mux.HandleFunc("/v1/completions", post(s.handleCompletions))
	s.mux.HandleFunc("/v1/models", get(s.handleModels))
	s.mux.HandleFunc("/v1/models/{id...}", get(s.handleModel))
	s.mux.HandleFunc("/api/chat", post(s.handleOllamaChat))
	s.mux.HandleFunc("/api/generate", post(s.handleOllamaGenerate))
	s.mux.HandleFunc("/api/tags", get(s.handleTags))
	s.mux.HandleFunc("/api/show", post(s.handleShow))
	s.mux.HandleFunc("/api/ps", get(s.handlePs))
	s.mux.HandleFunc("/api/version", get(s.handleVersion))
	s.mux.HandleFunc("/{$}", get(func(w http.ResponseWriter, r *http.Request) {
		// Exactly Ollama's answer: clients detect a server by comparing it.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "Ollama is running")
	}))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, &apiError{status: http.StatusNotFound, code: "not_found", msg: "no such endpoint: " + r.URL.Path})
	})
}

func post(h http.HandlerFunc) http.HandlerFunc { return method(http.MethodPost, h) }
func get(h http.HandlerFunc) http.HandlerFunc  { return method(http.MethodGet, h) }

func method(m string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != m && !(m == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", m)
			writeError(w, r, &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
				msg: fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, m)})
			return
		}
		h(w, r)
	}
}

// ServeHTTP logs the request and serves it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	s.serve(rec, r)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
		"bytes", rec.bytes, "took", time.Since(start).Round(time.Microsecond), "canceled", r.Context().Err() != nil)
}

// statusRecorder notes the status and size of a response. Unwrap lets
// http.ResponseController reach the real writer (Flush, deadlines).
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// serve applies the security checks, then routes.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if !s.hostAllowed(r.Host) {
		writeError(w, r, &apiError{status: http.StatusForbidden, code: "forbidden_host",
			msg: fmt.Sprintf("host %q is not allowed: connect through localhost or 127.0.0.1", r.Host)})
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		if !s.origin[strings.ToLower(origin)] {
			writeError(w, r, &apiError{status: http.StatusForbidden, code: "forbidden_origin",
				msg: fmt.Sprintf("origin %q is not allowed (add it to api.allowed_origins)", origin)})
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", allowHeaders(r.Header.Get("Access-Control-Request-Headers")))
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	// The liveness probe at "/" needs no token: it tells no more than an
	// open port does, and Ollama clients probe it before sending any key.
	if s.opts.Token != "" && !(r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead)) {
		got, ok := bearerToken(r.Header.Get("Authorization"))
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.opts.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="phi4mac"`)
			writeError(w, r, &apiError{status: http.StatusUnauthorized, code: "invalid_api_key",
				typ: "authentication_error", msg: "missing or wrong API token (send Authorization: Bearer <token>)"})
			return
		}
	}
	if r.Body != nil && r.Body != http.NoBody {
		// A slow body (slowloris) must not hold the connection forever: the
		// read deadline lasts until the body is read, then is lifted so that
		// a long generation is not cut short.
		rc := http.NewResponseController(w)
		if rc.SetReadDeadline(time.Now().Add(s.opts.BodyTimeout)) == nil {
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
	}
	s.mux.ServeHTTP(w, r)
}

// deadlineBody lifts the connection's read deadline once the body has been
// read to its end.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// allowHeaders answers a preflight's Access-Control-Request-Headers from an
// allowed origin: the headers it asks for (clients such as the OpenAI SDK
// send their own x-stainless-* headers), provided the list is well formed;
// otherwise Authorization and Content-Type only.
func allowHeaders(requested string) string {
	const base = "Authorization, Content-Type"
	if requested == "" || len(requested) > 2048 {
		return base
	}
	for _, name := range strings.Split(requested, ",") {
		name = strings.TrimSpace(name)
		if name == "" || strings.IndexFunc(name, func(r rune) bool {
			return !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
		}) >= 0 {
			return base
		}
	}
	return base + ", " + requested
}

func (s *Server) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if isLoopbackHost(host) {
		return true
	}
	return slices.ContainsFunc(s.opts.AllowedHosts, func(a string) bool { return a == "*" || strings.EqualFold(a, host) })
}

// isLoopbackHost reports whether host can only reach this machine:
// "localhost", a "*.localhost" name, or a loopback IP. (config has the same
// rule for validating the listen address; this copy keeps viper out of the
// server's dependencies.)
func isLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Close unloads the model; requests after Close fail.
func (s *Server) Close() error {
	s.run.close()
	return nil
}

// Status is a snapshot of the server's state.
type Status struct {
	Loaded string // name of the resident model, "" if none
	Busy   bool   // a generation is running
	Queued int    // requests waiting
}

// Status reports what the server is doing.
func (s *Server) Status() Status {
	lm, busy, q := s.run.status()
	st := Status{Busy: busy, Queued: q}
	if lm != nil {
		st.Loaded = lm.info.Name
	}
	return st
}

// apiError is an error with an HTTP status, written in the format of the
// API the request came through.
type apiError struct {
	status int
	typ    string // OpenAI "type"; default from status
	code   string // OpenAI "code"
	param  string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(param, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "invalid_request", param: param, msg: fmt.Sprintf(format, args...)}
}

// toAPIError maps errors from loading and generating to HTTP statuses.
func toAPIError(err error) *apiError {
	var ae *apiError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mbe):
		return &apiError{status: http.StatusRequestEntityTooLarge, code: "request_too_large",
			msg: fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)}
	case errors.Is(err, llm.ErrUnknownModel):
		return &apiError{status: http.StatusNotFound, code: "model_not_found", param: "model", msg: err.Error()}
	case errors.Is(err, llm.ErrContextFull):
		return &apiError{status: http.StatusBadRequest, code: "context_length_exceeded", param: "messages", msg: err.Error()}
	case errors.Is(err, llm.ErrBadRequest):
		return &apiError{status: http.StatusBadRequest, code: "invalid_request", msg: err.Error()}
	case errors.Is(err, errQueueFull):
		return &apiError{status: http.StatusServiceUnavailable, code: "overloaded", typ: "server_error", msg: err.Error()}
	case errors.Is(err, errBadJSON):
		return &apiError{status: http.StatusInternalServerError, code: "invalid_json_output", typ: "server_error",
			msg: "the model did not produce a valid JSON object; try again or rephrase"}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &apiError{status: 499, code: "canceled", msg: "request canceled"}
	default:
		return &apiError{status: http.StatusInternalServerError, code: "internal_error", typ: "server_error", msg: err.Error()}
	}
}

// isOpenAI reports whether r came through the OpenAI-compatible API.
func isOpenAI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/v1/") }

// writeError writes err as JSON in the request's API's error format.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := toAPIError(err)
	if e.status == 499 { // the client is gone; nothing to write
		return
	}
	if e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, e.status, errorBody(r, e))
}

func errorBody(r *http.Request, e *apiError) any {
	if !isOpenAI(r) {
		return map[string]string{"error": e.msg}
	}
	typ := e.typ
	if typ == "" {
		typ = "invalid_request_error"
		if e.status == http.StatusNotFound && e.code != "model_not_found" {
			typ = "not_found_error"
		}
	}
	var param any
	if e.param != "" {
		param = e.param
	}
	return map[string]any{"error": map[string]any{"message": e.msg, "type": typ, "param": param, "code": e.code}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// bearerToken returns the credentials of an "Authorization: Bearer <token>"
// header. The scheme name is case-insensitive (RFC 9110 §11.1), so clients
// that send "bearer" are accepted too.
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
