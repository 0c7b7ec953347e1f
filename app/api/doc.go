// Package api is phi4mac's local HTTP server: an OpenAI-compatible API
// under /v1 and an Ollama-compatible API under /api, over one loaded model
// (`phi4mac serve`). Existing clients work unchanged: point an OpenAI SDK
// at http://127.0.0.1:11435/v1 or set OLLAMA_HOST=127.0.0.1:11435.
//
// # Endpoints
//
//	POST /v1/chat/completions  stream (SSE) or not; stop, max_tokens /
//	                           max_completion_tokens, temperature, top_p, seed,
//	                           response_format {"type":"json_object"},
//	                           stream_options.include_usage; usage counts with
//	                           prompt_tokens_details.cached_tokens
//	POST /v1/completions       raw prompt (no chat template); max_tokens defaults to 16
//	GET  /v1/models, /v1/models/{id}
//	POST /api/chat, /api/generate   NDJSON stream by default ("stream": false for one
//	                           object); options temperature, top_p, top_k, seed,
//	                           num_predict, stop; format "json"; keep_alive;
//	                           generate with "raw": true skips the template; an
//	                           empty prompt loads (keep_alive 0: unloads) the model
//	GET  /api/tags, /api/ps, /api/version; POST /api/show
//	GET, HEAD /                "Ollama is running", exactly as Ollama answers
//	                           (clients compare it); no token needed
//
// Not supported, with a 400 that says so: n > 1, logprobs, tools, images,
// JSON schemas (response_format json_schema, Ollama format objects),
// fill-in-the-middle suffix, Ollama template and context. Other unknown
// fields are ignored, as the real APIs do. Ollama's num_ctx is ignored: the
// context is a server setting.
//
// # Scheduling
//
// Generations run one at a time; waiting requests are served strictly in
// arrival order (FIFO), up to Options.MaxQueue waiting, beyond which the
// answer is 503 with Retry-After. A client that disconnects, queued or
// mid-answer, cancels its request at once. The model loads on first use,
// is replaced when a request names another one, and unloads after
// Options.IdleUnload without requests (or as keep_alive says). The
// engine-backed models (app/llm/local) keep a few KV-cache sessions and give
// each request the one whose previous prompt it continues, so a follow-up
// turn of a conversation prefills only its new tokens.
//
// # JSON mode
//
// response_format json_object and Ollama's format "json" add an
// instruction to the system prompt and check the output as it streams: it
// must start with "{" (after whitespace), generation ends as soon as the
// top-level object closes, and the whole object must then pass json.Valid.
// So a response that finished normally holds exactly one syntactically
// valid JSON object and nothing else. If the model writes anything else the
// request fails with 500 "invalid_json_output" (in-stream, an error event);
// if max_tokens cuts the object short, the text is incomplete and the
// finish reason is "length", as with OpenAI. Sampling is not constrained (no
// grammar) and no schema is checked.
//
// # Security
//
// The server is meant for one person's machine:
//   - it listens on loopback unless configured otherwise (config refuses a
//     non-loopback address without a token);
//   - every request's Host header must be a loopback name or address
//     (localhost, *.localhost, 127.0.0.0/8, ::1) or one of
//     Options.AllowedHosts: this defeats DNS rebinding, where a web page's
//     own domain is pointed at 127.0.0.1;
//   - a request carrying an Origin header (any browser's cross-site request)
//     is refused with 403 unless that exact origin is listed in
//     Options.AllowedOrigins; "*" is never used; a preflight from an
//     allowed origin admits the request headers it asks for (the OpenAI
//     SDK's x-stainless-* headers);
//   - with Options.Token set (PHI4MAC_API_KEY), every request needs
//     "Authorization: Bearer <token>" (compared in constant time), except
//     the liveness probe GET/HEAD /;
//   - bodies are capped (Options.MaxBodyBytes, 413), prompts too
//     (Options.MaxPromptBytes, 413; longer than the context: 400
//     context_length_exceeded), headers at 64 KiB and 10 s, a body must
//     arrive within Options.BodyTimeout (408).
//
// Errors use each API's own format: {"error":{"message","type","param","code"}}
// under /v1, {"error":"message"} under /api.
package api
