// Package fakeanthropic is a scriptable stand-in for Anthropic's Messages
// API, for end-to-end tests and local runs without internet.
//
// It serves POST /v1/messages (and Claude on Vertex AI's rawPredict and
// streamRawPredict, cloud.go): a message JSON, or Anthropic's SSE events
// (message_start, ping, content_block_start/delta/stop, message_delta,
// message_stop) when the request has "stream": true. Like the real API it
// refuses requests without the anthropic-version header, without model,
// max_tokens or messages, and (when Options.APIKey is set) with another
// x-api-key. Each request is answered by a Behaviour: from the queue filled
// by Enqueue, else from the function set by Script, else Options.Default. A
// Behaviour can return an Anthropic error with any status (529
// overloaded_error, 429 rate_limit_error, ...), send an error event inside a
// 200 stream, cut the stream midway, call tools, and report chosen usage
// figures. Every request received is recorded.
package fakeanthropic

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/llmproc/llmproc/e2e/fake"
)

// Request is one request the server received.
type Request = fake.Request

// Usage holds the token counts reported in an answer.
type Usage struct {
	Input      int // usage.input_tokens (uncached input)
	Output     int // usage.output_tokens
	CacheRead  int // usage.cache_read_input_tokens
	CacheWrite int // usage.cache_creation_input_tokens
	// CacheWrite1h is the part of CacheWrite written for an hour
	// (usage.cache_creation.ephemeral_1h_input_tokens; the rest is 5m).
	CacheWrite1h int
	WebSearches  int // usage.server_tool_use.web_search_requests, when set
}

// ToolUse is one tool call in an answer.
type ToolUse struct {
	ID, Name string
	Input    string // a JSON object; default {}
}

// Behaviour scripts the answer to one request.
type Behaviour struct {
	// Status is the HTTP status; 0 means 200. At 400 or above the body is an
	// Anthropic error built from ErrorType and ErrorMessage, unless Body is set.
	Status       int
	ErrorType    string // error.type; default from the status (529 overloaded_error, ...)
	ErrorMessage string // error.message; default the status text
	// Body, when non-nil, is sent as is (content-type application/json).
	Body []byte
	// Header holds extra response headers, e.g. "Retry-After".
	Header http.Header
	// Latency is waited before the response headers are sent.
	Latency time.Duration
	// Content is the reply text; default "Hello from fakeanthropic." unless
	// ToolUses are set (then an empty Content sends no text block).
	Content string
	// Thinking, when set, is a thinking block (signed "sig-fake") before the text.
	Thinking string
	// Chunks is how many text deltas a stream splits Content into; 0 means
	// one per word.
	Chunks int
	// ToolUses are tool calls made after the text.
	ToolUses []ToolUse
	// StopReason defaults to end_turn, or tool_use when ToolUses is set.
	StopReason string
	Usage      Usage
	// Model is the model named in the answer; default the requested model.
	Model string
	// StreamError, when set, is the error.type of an error event sent after
	// the content in place of message_delta and message_stop.
	StreamError string
	// CutAfter, when positive, closes the connection abruptly after that many
	// SSE events (or after half of a JSON body).
	CutAfter int
}

// Options configure a Server.
type Options struct {
	// Default answers requests when neither the queue nor a script applies.
	Default Behaviour
	// APIKey, when set, is the only x-api-key accepted.
	APIKey string
	// VertexToken, when set, is the only bearer token Vertex paths accept.
	VertexToken string
}

// Server is a running fake Anthropic API.
type Server struct {
	*fake.Server[Request]
	*fake.Queue[Request, Behaviour]
	opts Options
}

// New starts a server on a random loopback port. It panics if it cannot
// listen, like httptest.NewServer.
func New(opts Options) *Server { return fake.Must(Listen("127.0.0.1:0", opts)) }

// Listen starts a server on addr.
func Listen(addr string, opts Options) (*Server, error) {
	s := &Server{Server: fake.New(fake.NewRequest), Queue: fake.NewQueue[Request](opts.Default), opts: opts}
	if err := s.Start(addr, s.Handler()); err != nil {
		return nil, err
	}
	return s, nil
}

// Handler returns the HTTP handler, for use with a caller's own server.
// Requests refused before they reach the model take no behaviour.
func (s *Server) Handler() http.Handler {
	return s.Record(func(w http.ResponseWriter, r *http.Request, req Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/messages":
			s.messages(w, r, req)
		case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/projects/"):
			s.vertex(w, r, req)
		case r.Method == http.MethodPost && r.URL.Path == "/v1/messages/count_tokens":
			// CountTokens answers a quarter of the body's bytes: a figure
			// that tells the fake's count from llmproc's estimate.
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"input_tokens":%d}`, CountTokens(req.Body))
		default:
			writeError(w, http.StatusNotFound, "not_found_error", "Not Found")
		}
	})
}

type messagesRequest struct {
	Model     string            `json:"model"`
	MaxTokens *int              `json:"max_tokens"`
	Messages  []json.RawMessage `json:"messages"`
	Stream    bool              `json:"stream"`
}

func (s *Server) messages(w http.ResponseWriter, r *http.Request, req Request) {
	if r.Header.Get("anthropic-version") == "" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "anthropic-version: header is required")
		return
	}
	if s.opts.APIKey != "" && r.Header.Get("x-api-key") != s.opts.APIKey {
		writeError(w, http.StatusUnauthorized, "authentication_error", "invalid x-api-key")
		return
	}
	var mr messagesRequest
	if err := json.Unmarshal(req.Body, &mr); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid JSON body: "+err.Error())
		return
	}
	s.reply(w, r, req, mr)
}

// reply answers a Messages request (from /v1/messages or a cloud's
// endpoint) by its behaviour.
func (s *Server) reply(w http.ResponseWriter, r *http.Request, req Request, mr messagesRequest) {
	switch {
	case mr.Model == "":
		writeError(w, http.StatusBadRequest, "invalid_request_error", "model: Field required")
		return
	case mr.MaxTokens == nil:
		writeError(w, http.StatusBadRequest, "invalid_request_error", "max_tokens: Field required")
		return
	case len(mr.Messages) == 0:
		writeError(w, http.StatusBadRequest, "invalid_request_error", "messages: at least one message is required")
		return
	}
	b, seq := s.Next(req)
	if b.Latency > 0 {
		select {
		case <-time.After(b.Latency):
		case <-r.Context().Done():
			return
		}
	}
	for k, vs := range b.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	status := b.Status
	if status == 0 {
		status = http.StatusOK
	}
	if b.Body != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(b.Body) //nolint:errcheck
		return
	}
	if status >= 400 {
		typ := b.ErrorType
		if typ == "" {
			typ = errorType(status)
		}
		msg := b.ErrorMessage
		if msg == "" {
			msg = http.StatusText(status)
			if status == 529 {
				msg = "Overloaded"
			}
		}
		writeError(w, status, typ, msg)
		return
	}
	a := newAnswer(b, fmt.Sprintf("msg_fake_%d", seq), mr.Model)
	if mr.Stream {
		s.stream(w, r, status, a)
		return
	}
	data, _ := json.Marshal(a.message())
	w.Header().Set("Content-Type", "application/json")
	if b.CutAfter > 0 {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.WriteHeader(status)
		w.Write(data[:len(data)/2]) //nolint:errcheck
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	w.WriteHeader(status)
	w.Write(data) //nolint:errcheck
}

// answer is one successful reply in the making.
type answer struct {
	id, model string
	b         Behaviour
}

// newAnswer is b's successful answer to a request for model, defaults
// filled in.
func newAnswer(b Behaviour, id, model string) answer {
	a := answer{id: id, model: b.Model, b: b}
	if a.model == "" {
		a.model = model
	}
	if b.Content == "" && len(b.ToolUses) == 0 {
		a.b.Content = "Hello from fakeanthropic."
	}
	if a.b.StopReason == "" {
		a.b.StopReason = "end_turn"
		if len(b.ToolUses) > 0 {
			a.b.StopReason = "tool_use"
		}
	}
	return a
}

func (a answer) usage(output int) map[string]any {
	u := a.b.Usage
	m := map[string]any{
		"input_tokens":                u.Input,
		"cache_creation_input_tokens": u.CacheWrite,
		"cache_read_input_tokens":     u.CacheRead,
		"output_tokens":               output,
		"cache_creation": map[string]any{
			"ephemeral_5m_input_tokens": u.CacheWrite - u.CacheWrite1h,
			"ephemeral_1h_input_tokens": u.CacheWrite1h,
		},
	}
	if u.WebSearches > 0 {
		m["server_tool_use"] = map[string]any{"web_search_requests": u.WebSearches}
	}
	return m
}

// thinkingSignature signs every thinking block the fake writes.
const thinkingSignature = "sig-fake"

func toolInput(t ToolUse) string {
	if t.Input == "" {
		return "{}"
	}
	return t.Input
}

func (a answer) message() map[string]any {
	var content []any
	if a.b.Thinking != "" {
		content = append(content, map[string]any{"type": "thinking", "thinking": a.b.Thinking, "signature": thinkingSignature})
	}
	if a.b.Content != "" {
		content = append(content, map[string]any{"type": "text", "text": a.b.Content})
	}
	for _, t := range a.b.ToolUses {
		content = append(content, map[string]any{"type": "tool_use", "id": t.ID, "name": t.Name, "input": json.RawMessage(toolInput(t))})
	}
	return map[string]any{
		"id": a.id, "type": "message", "role": "assistant", "model": a.model,
		"content": content, "stop_reason": a.b.StopReason, "stop_sequence": nil,
		"usage": a.usage(a.b.Usage.Output),
	}
}

type event struct {
	name string
	data map[string]any
}

func (a answer) events() []event {
	start := map[string]any{
		"id": a.id, "type": "message", "role": "assistant", "model": a.model, "content": []any{},
		"stop_reason": nil, "stop_sequence": nil, "usage": a.usage(1),
	}
	evs := []event{{"message_start", map[string]any{"type": "message_start", "message": start}}}
	next := 0 // the next block's index
	if a.b.Thinking != "" {
		next = 1
		evs = append(evs,
			event{"content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]any{"type": "thinking", "thinking": "", "signature": ""}}},
			event{"content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "thinking_delta", "thinking": a.b.Thinking}}},
			event{"content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "signature_delta", "signature": thinkingSignature}}},
			event{"content_block_stop", map[string]any{"type": "content_block_stop", "index": 0}})
	}
	if a.b.Content != "" {
		text := next
		next++
		evs = append(evs,
			event{"content_block_start", map[string]any{"type": "content_block_start", "index": text, "content_block": map[string]any{"type": "text", "text": ""}}},
			event{"ping", map[string]any{"type": "ping"}})
		for _, piece := range fake.Split(a.b.Content, a.b.Chunks) {
			evs = append(evs, event{"content_block_delta", map[string]any{"type": "content_block_delta", "index": text,
				"delta": map[string]any{"type": "text_delta", "text": piece}}})
		}
		evs = append(evs, event{"content_block_stop", map[string]any{"type": "content_block_stop", "index": text}})
	}
	for i, t := range a.b.ToolUses {
		idx := next + i
		in := toolInput(t)
		evs = append(evs,
			event{"content_block_start", map[string]any{"type": "content_block_start", "index": idx,
				"content_block": map[string]any{"type": "tool_use", "id": t.ID, "name": t.Name, "input": map[string]any{}}}},
			event{"content_block_delta", map[string]any{"type": "content_block_delta", "index": idx,
				"delta": map[string]any{"type": "input_json_delta", "partial_json": in[:len(in)/2]}}},
			event{"content_block_delta", map[string]any{"type": "content_block_delta", "index": idx,
				"delta": map[string]any{"type": "input_json_delta", "partial_json": in[len(in)/2:]}}},
			event{"content_block_stop", map[string]any{"type": "content_block_stop", "index": idx}})
	}
	if a.b.StreamError != "" {
		return append(evs, event{"error", map[string]any{"type": "error",
			"error": map[string]any{"type": a.b.StreamError, "message": "stream failed: " + a.b.StreamError}}})
	}
	return append(evs,
		event{"message_delta", map[string]any{"type": "message_delta",
			"delta": map[string]any{"stop_reason": a.b.StopReason, "stop_sequence": nil},
			"usage": a.deltaUsage()}},
		event{"message_stop", map[string]any{"type": "message_stop"}})
}

// deltaUsage is message_delta's usage: the output, and the web searches.
func (a answer) deltaUsage() map[string]any {
	m := map[string]any{"output_tokens": a.b.Usage.Output}
	if a.b.Usage.WebSearches > 0 {
		m["server_tool_use"] = map[string]any{"web_search_requests": a.b.Usage.WebSearches}
	}
	return m
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request, status int, a answer) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	fl := w.(http.Flusher)
	for i, ev := range a.events() {
		if a.b.CutAfter > 0 && i == a.b.CutAfter {
			panic(http.ErrAbortHandler) // closes the connection: no terminating chunk
		}
		if r.Context().Err() != nil {
			return
		}
		data, _ := json.Marshal(ev.data)
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, data); err != nil {
			return
		}
		fl.Flush()
	}
}

// errorType is the Anthropic error type that goes with a status.
func errorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusPaymentRequired:
		return "billing_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusGatewayTimeout:
		return "timeout_error"
	case 529:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	data, _ := json.Marshal(map[string]any{
		"type":       "error",
		"error":      map[string]any{"type": typ, "message": msg},
		"request_id": "req_fake",
	})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	w.WriteHeader(status)
	w.Write(data) //nolint:errcheck
}

// CountTokens is the fake's answer to count_tokens for body.
func CountTokens(body []byte) int { return len(body) / 4 }

// Text returns the text of every text block in an Anthropic messages request
// body, for assertions.
func Text(body []byte) string {
	var req struct {
		Messages []struct {
			Content []struct {
				Type, Text string
			}
		}
	}
	if json.Unmarshal(body, &req) != nil {
		return ""
	}
	var sb strings.Builder
	for _, m := range req.Messages {
		for _, c := range m.Content {
			if c.Type == "text" {
				sb.WriteString(c.Text)
			}
		}
	}
	return sb.String()
}
