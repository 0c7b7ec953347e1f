package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/phi4mac/phi4mac/app/llm"
)

// olOptions are the Ollama "options" phi4mac honours; others are ignored,
// as Ollama ignores options a model does not use.
type olOptions struct {
	Temperature *float64 `json:"temperature"`
	TopP        *float64 `json:"top_p"`
	TopK        *int     `json:"top_k"`
	Seed        *int64   `json:"seed"`
	NumPredict  *int     `json:"num_predict"`
	Stop        []string `json:"stop"`
}

// olDuration is Ollama's keep_alive: a duration string ("5m", "-1s") or a
// number of seconds; negative keeps the model loaded.
type olDuration struct{ d time.Duration }

func (d *olDuration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	var n float64
	if err := json.Unmarshal(b, &n); err == nil {
		if math.IsInf(n*1e9, 0) || math.Abs(n) > 1e9 {
			return &fieldError{"keep_alive", "keep_alive is out of range"}
		}
		d.d = time.Duration(n * float64(time.Second))
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &fieldError{"keep_alive", "keep_alive must be a duration string such as \"5m\" or a number of seconds"}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return &fieldError{"keep_alive", fmt.Sprintf("keep_alive %q is not a duration such as \"5m\"", s)}
	}
	d.d = v
	return nil
}

type olCommon struct {
	Model     string          `json:"model"`
	Stream    *bool           `json:"stream"`
	Format    json.RawMessage `json:"format"`
	Options   *olOptions      `json:"options"`
	KeepAlive *olDuration     `json:"keep_alive"`
}

type olMessage struct {
	Role    string   `json:"role"`
	Content string   `json:"content"`
	Images  []string `json:"images"`
}

type olChatRequest struct {
	olCommon
	Messages []olMessage     `json:"messages"`
	Tools    json.RawMessage `json:"tools"`
}

type olGenerateRequest struct {
	olCommon
	Prompt   string          `json:"prompt"`
	System   string          `json:"system"`
	Suffix   string          `json:"suffix"`
	Template string          `json:"template"`
	Raw      bool            `json:"raw"`
	Images   []string        `json:"images"`
	Context  json.RawMessage `json:"context"`
}

// common validates the shared fields and returns a job skeleton.
func (s *Server) olJob(c *olCommon) (*job, error) {
	j := &job{model: c.Model, req: llm.Request{Params: s.opts.Defaults}}
	if c.KeepAlive != nil {
		d := c.KeepAlive.d
		if d < 0 {
			d = -1
		}
		j.keepAlive = &d
	}
	switch f := bytes.TrimSpace(c.Format); {
	case len(f) == 0, string(f) == "null", string(f) == `""`:
	case string(f) == `"json"`:
		j.json = true
	default:
		return nil, badRequest("format", "format %s is not supported: use \"json\" (JSON schemas are not enforced by phi4mac)", f)
	}
	if o := c.Options; o != nil {
		p := &j.req.Params
		if o.Temperature != nil {
			if *o.Temperature < 0 || *o.Temperature > 2 {
				return nil, badRequest("temperature", "temperature %g is out of range: use 0 to 2", *o.Temperature)
			}
			p.Temperature = *o.Temperature
		}
		if o.TopP != nil {
			if *o.TopP < 0 || *o.TopP > 1 {
				return nil, badRequest("top_p", "top_p %g is out of range: use 0 to 1", *o.TopP)
			}
			p.TopP = *o.TopP
		}
		if o.TopK != nil {
			if *o.TopK < 0 {
				return nil, badRequest("top_k", "top_k must not be negative")
			}
			p.TopK = *o.TopK
		}
		if o.Seed != nil {
			p.Seed, p.HasSeed = *o.Seed, true
		}
		if o.NumPredict != nil {
			p.MaxTokens = max(*o.NumPredict, 0) // -1 and -2: no limit but the context
		}
		for _, st := range o.Stop {
			if st == "" {
				return nil, badRequest("stop", "stop strings must not be empty")
			}
		}
		j.stops = o.Stop
	}
	return j, nil
}

func streaming(b *bool) bool { return b == nil || *b }

func (s *Server) handleOllamaChat(w http.ResponseWriter, r *http.Request) {
	var q olChatRequest
	if err := decodeJSON(r, &q); err != nil {
		writeError(w, r, err)
		return
	}
	j, err := s.olJob(&q.olCommon)
	if err == nil {
		if t := bytes.TrimSpace(q.Tools); len(t) > 0 && string(t) != "null" && string(t) != "[]" {
			err = badRequest("tools", "tools are not supported")
		}
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	if len(q.Messages) == 0 { // Ollama: an empty chat loads (or, with keep_alive 0, unloads) the model
		s.olLoadOnly(w, r, j, func(info llm.Info, reason string) any {
			return map[string]any{"model": info.Name, "created_at": now(), "message": map[string]any{"role": "assistant", "content": ""},
				"done_reason": reason, "done": true}
		})
		return
	}
	j.req.Messages = []llm.Message{}
	for i, m := range q.Messages {
		switch m.Role {
		case "system", "user", "assistant":
		default:
			writeError(w, r, badRequest("messages", "messages[%d]: role %q is not supported: use system, user or assistant", i, m.Role))
			return
		}
		if len(m.Images) > 0 {
			writeError(w, r, badRequest("images", "images are not supported: phi4mac models read text only"))
			return
		}
		j.req.Messages = append(j.req.Messages, llm.Message{Role: m.Role, Content: m.Content})
	}
	s.olRun(w, r, j, !streaming(q.Stream), func(info llm.Info, text string) map[string]any {
		return map[string]any{"model": info.Name, "created_at": now(),
			"message": map[string]any{"role": "assistant", "content": text}, "done": false}
	})
}

func (s *Server) handleOllamaGenerate(w http.ResponseWriter, r *http.Request) {
	var q olGenerateRequest
	if err := decodeJSON(r, &q); err != nil {
		writeError(w, r, err)
		return
	}
	j, err := s.olJob(&q.olCommon)
	switch {
	case err != nil:
	case q.Suffix != "":
		err = badRequest("suffix", "suffix (fill-in-the-middle) is not supported")
	case q.Template != "":
		err = badRequest("template", "custom templates are not supported: phi4mac uses the model's own chat template")
	case len(q.Images) > 0:
		err = badRequest("images", "images are not supported: phi4mac models read text only")
	case len(bytes.TrimSpace(q.Context)) > 0 && string(bytes.TrimSpace(q.Context)) != "null" && string(bytes.TrimSpace(q.Context)) != "[]":
		err = badRequest("context", "context is not supported: use /api/chat for conversations")
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	if q.Prompt == "" {
		s.olLoadOnly(w, r, j, func(info llm.Info, reason string) any {
			return map[string]any{"model": info.Name, "created_at": now(), "response": "", "done_reason": reason, "done": true}
		})
		return
	}
	if q.Raw {
		j.req.Prompt = q.Prompt
	} else {
		j.req.Messages = []llm.Message{}
		if q.System != "" {
			j.req.Messages = append(j.req.Messages, llm.Message{Role: "system", Content: q.System})
		}
		j.req.Messages = append(j.req.Messages, llm.Message{Role: "user", Content: q.Prompt})
	}
	s.olRun(w, r, j, !streaming(q.Stream), func(info llm.Info, text string) map[string]any {
		return map[string]any{"model": info.Name, "created_at": now(), "response": text, "done": false}
	})
}

// olRun runs j and writes Ollama's NDJSON stream (or one object).
func (s *Server) olRun(w http.ResponseWriter, r *http.Request, j *job, whole bool, piece func(llm.Info, string) map[string]any) {
	start := time.Now()
	info, err := s.resolveModel(r.Context(), j.model)
	if err != nil {
		writeError(w, r, err)
		return
	}
	var text strings.Builder
	sw := newStreamWriter(w, "application/x-ndjson")
	emit := func(t string) error {
		if whole {
			text.WriteString(t)
			return nil
		}
		return sw.write(append(marshal(piece(info, t)), '\n'))
	}
	res, _, err := s.generate(r.Context(), j, emit)
	if err != nil {
		if sw.started {
			_ = sw.write(append(marshal(errorBody(r, toAPIError(err))), '\n'))
		} else {
			writeError(w, r, err)
		}
		return
	}
	final := piece(info, text.String())
	final["done"] = true
	final["done_reason"] = res.FinishReason
	final["total_duration"] = time.Since(start).Nanoseconds()
	final["load_duration"] = res.LoadDuration.Nanoseconds()
	final["prompt_eval_count"] = res.PromptTokens
	final["prompt_eval_duration"] = res.PromptTime.Nanoseconds()
	final["eval_count"] = res.CompletionTokens
	final["eval_duration"] = res.GenerateTime.Nanoseconds()
	if whole {
		writeJSON(w, http.StatusOK, final)
		return
	}
	_ = sw.write(append(marshal(final), '\n'))
}

// olLoadOnly handles a request with no prompt: load the model, or unload it
// when keep_alive is 0.
func (s *Server) olLoadOnly(w http.ResponseWriter, r *http.Request, j *job, body func(llm.Info, string) any) {
	info, err := s.resolveModel(r.Context(), j.model)
	if err != nil {
		writeError(w, r, err)
		return
	}
	reason, run := "load", func() error { return s.run.use(r.Context(), info.Name, j.keepAlive, nil) }
	if j.keepAlive != nil && *j.keepAlive == 0 {
		reason, run = "unload", func() error { return s.run.unload(r.Context(), info.Name) }
	}
	if err := run(); err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, body(info, reason))
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func olDetails(m llm.Info) map[string]any {
	return map[string]any{"parent_model": "", "format": m.Format, "family": m.Family, "families": []string{m.Family},
		"parameter_size": m.ParameterSize, "quantization_level": m.Quantization}
}

func (s *Server) handleTags(w http.ResponseWriter, r *http.Request) {
	list, err := s.opts.Loader.List(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	models := make([]any, 0, len(list))
	for _, m := range list {
		models = append(models, map[string]any{"name": m.Name, "model": m.Name, "modified_at": m.Modified,
			"size": m.Size, "digest": m.Digest, "details": olDetails(m)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": models})
}

func (s *Server) handleShow(w http.ResponseWriter, r *http.Request) {
	var q struct {
		Model string `json:"model"`
		Name  string `json:"name"`
	}
	if err := decodeJSON(r, &q); err != nil {
		writeError(w, r, err)
		return
	}
	name := q.Model
	if name == "" {
		name = q.Name
	}
	if name == "" {
		writeError(w, r, badRequest("model", "model is required"))
		return
	}
	info, err := s.resolveModel(r.Context(), name)
	if err != nil {
		writeError(w, r, err)
		return
	}
	mi := map[string]any{"general.architecture": info.Family}
	if info.ContextLength > 0 {
		mi[info.Family+".context_length"] = info.ContextLength
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"license": "", "modelfile": "# served by phi4mac from " + info.Path, "parameters": "", "template": "",
		"details": olDetails(info), "model_info": mi, "capabilities": []string{"completion"}, "modified_at": info.Modified,
	})
}

func (s *Server) handlePs(w http.ResponseWriter, r *http.Request) {
	lm, _, _ := s.run.status()
	models := []any{}
	if lm != nil {
		m := lm.info
		exp := lm.expiresAt
		if exp.IsZero() {
			exp = time.Date(2318, 1, 1, 0, 0, 0, 0, time.UTC) // "forever", as Ollama reports it
		}
		models = append(models, map[string]any{"name": m.Name, "model": m.Name, "size": m.Size, "digest": m.Digest,
			"details": olDetails(m), "expires_at": exp, "size_vram": 0, "context_length": m.ContextLength})
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": models})
}

func (s *Server) handleVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"version": s.opts.Version})
}
