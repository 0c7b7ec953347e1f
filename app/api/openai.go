package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/phi4mac/phi4mac/app/llm"
)

// stopList is OpenAI's "stop": a string, an array of up to 4 strings, or null.
type stopList []string

func (s *stopList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*s = nil
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = stopList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return &fieldError{"stop", "field \"stop\" must be a string or an array of strings"}
	}
	*s = many
	return nil
}

// oaContent is a message's content: a string, an array of parts, or null.
type oaContent string

func (c *oaContent) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*c = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = oaContent(s)
		return nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(b, &parts); err != nil {
		return &fieldError{"messages", "message content must be a string or an array of content parts"}
	}
	var sb strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return &fieldError{"messages", fmt.Sprintf("content part type %q is not supported: phi4mac models read text only", p.Type)}
		}
		sb.WriteString(p.Text)
	}
	*c = oaContent(sb.String())
	return nil
}

type oaMessage struct {
	Role    string    `json:"role"`
	Content oaContent `json:"content"`
}

type oaSampling struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	Seed                *int64          `json:"seed"`
	Stop                stopList        `json:"stop"`
	N                   *int            `json:"n"`
	Logprobs            json.RawMessage `json:"logprobs"`
}

type oaChatRequest struct {
	oaSampling
	Messages       []oaMessage `json:"messages"`
	ResponseFormat *struct {
		Type string `json:"type"`
	} `json:"response_format"`
	Tools json.RawMessage `json:"tools"`
}

type oaCompletionRequest struct {
	oaSampling
	Prompt json.RawMessage `json:"prompt"`
	Echo   bool            `json:"echo"`
	Suffix *string         `json:"suffix"`
}

// params validates the sampling fields and fills in defaults.
func (s *Server) oaParams(q *oaSampling, defaultMax int) (llm.Params, error) {
	p := s.opts.Defaults
	if defaultMax > 0 {
		p.MaxTokens = defaultMax
	}
	if q.Temperature != nil {
		if *q.Temperature < 0 || *q.Temperature > 2 {
			return p, badRequest("temperature", "temperature %g is out of range: use 0 to 2", *q.Temperature)
		}
		p.Temperature = *q.Temperature
	}
	if q.TopP != nil {
		if *q.TopP < 0 || *q.TopP > 1 {
			return p, badRequest("top_p", "top_p %g is out of range: use 0 to 1", *q.TopP)
		}
		p.TopP = *q.TopP
	}
	if q.Seed != nil {
		p.Seed, p.HasSeed = *q.Seed, true
	}
	for _, mt := range []struct {
		name string
		v    *int
	}{{"max_tokens", q.MaxTokens}, {"max_completion_tokens", q.MaxCompletionTokens}} {
		if mt.v != nil {
			if *mt.v < 1 {
				return p, badRequest(mt.name, "%s must be at least 1", mt.name)
			}
			p.MaxTokens = *mt.v
		}
	}
	if q.N != nil && *q.N != 1 {
		return p, badRequest("n", "n=%d is not supported: phi4mac returns one choice", *q.N)
	}
	if l := bytes.TrimSpace(q.Logprobs); len(l) > 0 && string(l) != "null" && string(l) != "false" && string(l) != "0" {
		return p, badRequest("logprobs", "logprobs are not supported")
	}
	if len(q.Stop) > 4 {
		return p, badRequest("stop", "stop holds %d strings; the limit is 4", len(q.Stop))
	}
	for _, st := range q.Stop {
		if st == "" {
			return p, badRequest("stop", "stop strings must not be empty")
		}
	}
	return p, nil
}

func (s *Server) handleChatCompletions(w http.ResponseWriter, r *http.Request) {
	var q oaChatRequest
	if err := decodeJSON(r, &q); err != nil {
		writeError(w, r, err)
		return
	}
	j, err := s.oaChatJob(&q)
	if err != nil {
		writeError(w, r, err)
		return
	}
	id, created := newID("chatcmpl-"), time.Now().Unix()
	if !q.Stream {
		var text strings.Builder
		res, info, err := s.generate(r.Context(), j, func(t string) error { text.WriteString(t); return nil })
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"id": id, "object": "chat.completion", "created": created, "model": info.Name,
			"system_fingerprint": "phi4mac",
			"choices": []any{map[string]any{
				"index": 0, "logprobs": nil, "finish_reason": res.FinishReason,
				"message": map[string]any{"role": "assistant", "content": text.String(), "refusal": nil},
			}},
			"usage": oaUsage(res),
		})
		return
	}

	sw := newStreamWriter(w, "text/event-stream")
	var model string
	chunk := func(delta map[string]any, finish any) []byte {
		return sse(map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
			"system_fingerprint": "phi4mac",
			"choices":            []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}},
		})
	}
	emit := func(t string) error {
		if !sw.started {
			if err := sw.write(chunk(map[string]any{"role": "assistant", "content": ""}, nil)); err != nil {
				return err
			}
		}
		return sw.write(chunk(map[string]any{"content": t}, nil))
	}
	j.model = q.Model
	info, err := s.resolveModel(r.Context(), q.Model)
	if err != nil {
		writeError(w, r, err)
		return
	}
	model = info.Name
	res, _, err := s.generate(r.Context(), j, emit)
	if err != nil {
		if sw.started {
			_ = sw.write(sse(errorBody(r, toAPIError(err))))
		} else {
			writeError(w, r, err)
		}
		return
	}
	if !sw.started {
		_ = sw.write(chunk(map[string]any{"role": "assistant", "content": ""}, nil))
	}
	_ = sw.write(chunk(map[string]any{}, res.FinishReason))
	if q.StreamOptions != nil && q.StreamOptions.IncludeUsage {
		_ = sw.write(sse(map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
			"system_fingerprint": "phi4mac", "choices": []any{}, "usage": oaUsage(res),
		}))
	}
	_ = sw.write([]byte("data: [DONE]\n\n"))
}

func (s *Server) oaChatJob(q *oaChatRequest) (*job, error) {
	p, err := s.oaParams(&q.oaSampling, 0)
	if err != nil {
		return nil, err
	}
	if len(q.Messages) == 0 {
		return nil, badRequest("messages", "messages must hold at least one message")
	}
	if t := bytes.TrimSpace(q.Tools); len(t) > 0 && string(t) != "null" && string(t) != "[]" {
		return nil, badRequest("tools", "tools are not supported")
	}
	j := &job{model: q.Model, stops: q.Stop, req: llm.Request{Params: p, Messages: []llm.Message{}}}
	if rf := q.ResponseFormat; rf != nil {
		switch rf.Type {
		case "", "text":
		case "json_object":
			j.json = true
		default:
			return nil, badRequest("response_format", "response_format type %q is not supported: use \"text\" or \"json_object\"", rf.Type)
		}
	}
	for i, m := range q.Messages {
		role := m.Role
		switch role {
		case "developer":
			role = "system"
		case "system", "user", "assistant":
		default:
			return nil, badRequest(fmt.Sprintf("messages[%d].role", i), "message role %q is not supported: use system, user or assistant", m.Role)
		}
		j.req.Messages = append(j.req.Messages, llm.Message{Role: role, Content: string(m.Content)})
	}
	return j, nil
}

func (s *Server) handleCompletions(w http.ResponseWriter, r *http.Request) {
	var q oaCompletionRequest
	if err := decodeJSON(r, &q); err != nil {
		writeError(w, r, err)
		return
	}
	p, err := s.oaParams(&q.oaSampling, 16) // OpenAI's documented default
	if err != nil {
		writeError(w, r, err)
		return
	}
	prompt, err := completionPrompt(q.Prompt)
	if err == nil && q.Echo {
		err = badRequest("echo", "echo is not supported")
	}
	if err == nil && q.Suffix != nil && *q.Suffix != "" {
		err = badRequest("suffix", "suffix is not supported")
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	j := &job{model: q.Model, stops: q.Stop, req: llm.Request{Prompt: prompt, Params: p}}
	id, created := newID("cmpl-"), time.Now().Unix()
	info, err := s.resolveModel(r.Context(), q.Model)
	if err != nil {
		writeError(w, r, err)
		return
	}
	choice := func(text string, finish any) map[string]any {
		return map[string]any{"text": text, "index": 0, "logprobs": nil, "finish_reason": finish}
	}
	body := func(choices []any) map[string]any {
		return map[string]any{"id": id, "object": "text_completion", "created": created, "model": info.Name,
			"system_fingerprint": "phi4mac", "choices": choices}
	}
	if !q.Stream {
		var text strings.Builder
		res, _, err := s.generate(r.Context(), j, func(t string) error { text.WriteString(t); return nil })
		if err != nil {
			writeError(w, r, err)
			return
		}
		b := body([]any{choice(text.String(), res.FinishReason)})
		b["usage"] = oaUsage(res)
		writeJSON(w, http.StatusOK, b)
		return
	}
	sw := newStreamWriter(w, "text/event-stream")
	res, _, err := s.generate(r.Context(), j, func(t string) error {
		return sw.write(sse(body([]any{choice(t, nil)})))
	})
	if err != nil {
		if sw.started {
			_ = sw.write(sse(errorBody(r, toAPIError(err))))
		} else {
			writeError(w, r, err)
		}
		return
	}
	_ = sw.write(sse(body([]any{choice("", res.FinishReason)})))
	if q.StreamOptions != nil && q.StreamOptions.IncludeUsage {
		b := body([]any{})
		b["usage"] = oaUsage(res)
		_ = sw.write(sse(b))
	}
	_ = sw.write([]byte("data: [DONE]\n\n"))
}

// completionPrompt accepts a string or an array holding one string.
func completionPrompt(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", badRequest("prompt", "prompt is required")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err == nil {
		if len(many) != 1 {
			return "", badRequest("prompt", "prompt arrays must hold exactly one string (got %d)", len(many))
		}
		return many[0], nil
	}
	return "", badRequest("prompt", "prompt must be a string or an array of one string (token arrays are not supported)")
}

func oaUsage(r llm.Result) map[string]any {
	return map[string]any{
		"prompt_tokens": r.PromptTokens, "completion_tokens": r.CompletionTokens,
		"total_tokens":          r.PromptTokens + r.CompletionTokens,
		"prompt_tokens_details": map[string]any{"cached_tokens": r.CachedTokens},
	}
}

func sse(v any) []byte {
	b := marshal(v)
	out := make([]byte, 0, len(b)+8)
	out = append(out, "data: "...)
	out = append(out, b...)
	return append(out, "\n\n"...)
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	list, err := s.opts.Loader.List(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	data := make([]any, 0, len(list))
	for _, m := range list {
		data = append(data, oaModel(m))
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	info, err := s.resolveModel(r.Context(), r.PathValue("id"))
	if err != nil || r.PathValue("id") == "" {
		if err == nil {
			err = &apiError{status: http.StatusNotFound, code: "model_not_found", msg: "model id is empty"}
		}
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, oaModel(info))
}

func oaModel(m llm.Info) map[string]any {
	return map[string]any{"id": m.Name, "object": "model", "created": m.Modified.Unix(), "owned_by": "phi4mac"}
}
