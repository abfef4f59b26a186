// Package fakeopenai is a scriptable stand-in for an OpenAI-compatible
// provider, for end-to-end tests and local runs without internet.
//
// It serves POST /v1/chat/completions (JSON, or SSE when the request has
// "stream": true), POST /v1/responses (JSON, or the Responses API's semantic
// events), POST /v1/responses/input_tokens, POST /v1/embeddings, POST /v1/completions (legacy; JSON or SSE)
// and GET /v1/models. Each POST request is answered by a
// Behaviour: taken from the queue filled by Enqueue if it is not empty, else
// from the function set by Script, else Options.Default. A Behaviour can
// return an OpenAI error with any status and headers (e.g. retry-after),
// wait before sending headers, pace SSE chunks, cut the stream midway by
// closing the connection, and report chosen usage figures. Every request
// received is recorded for assertions.
package fakeopenai

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/llmproc/llmproc/e2e/fake"
)

// Request is one request the server received.
type Request = fake.Request

// Usage holds the token counts reported in a response.
type Usage struct {
	Prompt     int // usage.prompt_tokens
	Completion int // usage.completion_tokens
	Cached     int // usage.prompt_tokens_details.cached_tokens
	Reasoning  int // usage.completion_tokens_details.reasoning_tokens
}

// ToolCall is a function call in an answer.
type ToolCall struct {
	ID, Name  string
	Arguments string // a JSON object; default {}
}

func (c ToolCall) arguments() string { return cmp.Or(c.Arguments, "{}") }

// Behaviour scripts the answer to one chat completion request.
type Behaviour struct {
	// Status is the HTTP status; 0 means 200. At 400 or above the body is an
	// OpenAI error object built from the Error* fields, unless Body is set.
	Status       int
	ErrorType    string // error.type; default "server_error" (5xx) or "invalid_request_error"
	ErrorMessage string // error.message; default the status text
	ErrorCode    string // error.code; null when empty
	// Body, when non-nil, is sent as is (content-type application/json).
	Body []byte
	// Header holds extra response headers, e.g. "Retry-After".
	Header http.Header
	// Latency is waited before the response headers are sent.
	Latency time.Duration
	// Content is the assistant's reply text; default "Hello from fakeopenai."
	// unless ToolCalls are set.
	Content string
	// ToolCalls are function calls made after Content: chat's
	// message.tool_calls (finish_reason tool_calls; streamed as deltas),
	// Responses' function_call output items after the message.
	ToolCalls []ToolCall
	// Chunks is how many content deltas an SSE answer splits Content into;
	// 0 means one per word.
	Chunks int
	// ChunkDelay is waited before each SSE event after the first.
	ChunkDelay time.Duration
	// CutAfter, when positive, closes the connection abruptly after that many
	// SSE events (or, for JSON answers, after half the body), so the client
	// sees a truncated response.
	CutAfter int
	// Usage is reported in the JSON body and, when the request asks for
	// stream_options.include_usage, in a final SSE chunk.
	Usage Usage
	// Model is the model named in the answer; default the requested model.
	Model string
}

// Options configure a Server.
type Options struct {
	// Default answers requests when neither the queue nor a script applies.
	Default Behaviour
	// Models are listed by GET /v1/models; default ["gpt-4o-mini"].
	Models []string
}

// Server is a running fake provider.
type Server struct {
	*fake.Server[Request]
	*fake.Queue[Request, Behaviour]
	opts Options
	tag  string // "fake" and a random number, in the Responses API's ids
}

// New starts a server on a random loopback port. It panics if it cannot
// listen, like httptest.NewServer.
func New(opts Options) *Server { return fake.Must(Listen("127.0.0.1:0", opts)) }

// Listen starts a server on addr.
func Listen(addr string, opts Options) (*Server, error) {
	s := &Server{Server: fake.New(fake.NewRequest), Queue: fake.NewQueue[Request](opts.Default), opts: opts,
		tag: fmt.Sprintf("fake%08x", rand.Uint32())}
	if err := s.Start(addr, s.Handler()); err != nil {
		return nil, err
	}
	return s, nil
}

// Handler returns the HTTP handler, for use with a caller's own server.
// Every POST request takes a behaviour from the queue or script.
func (s *Server) Handler() http.Handler {
	return s.Record(func(w http.ResponseWriter, r *http.Request, req Request) {
		switch r.Method + " " + r.URL.Path {
		case "POST /v1/chat/completions":
			s.chat(w, r, req)
		case "POST /v1/responses":
			s.responses(w, r, req)
		case "POST /v1/embeddings":
			s.embeddings(w, r, req)
		case "POST /v1/completions":
			s.completions(w, r, req)
		case "POST /v1/responses/input_tokens":
			// A quarter of the body's bytes: a figure that tells the
			// fake's count from llmproc's estimate.
			writeJSON(w, http.StatusOK, map[string]any{"object": "response.input_tokens", "input_tokens": CountTokens(req.Body)})
		case "GET /v1/models":
			s.models(w)
		default:
			http.NotFound(w, r)
		}
	})
}

func (s *Server) models(w http.ResponseWriter) {
	names := s.opts.Models
	if len(names) == 0 {
		names = []string{"gpt-4o-mini"}
	}
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	list := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list"}
	for _, n := range names {
		list.Data = append(list.Data, model{ID: n, Object: "model", Created: 1700000000, OwnedBy: "fakeopenai"})
	}
	writeJSON(w, http.StatusOK, list)
}

type chatRequest struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

// begin takes the request's behaviour and answers what every endpoint
// answers alike: the latency, the extra headers, a scripted body or error,
// and a body that is no JSON object of the endpoint's (decoded into into).
// ok is false when the answer is already written.
func (s *Server) begin(w http.ResponseWriter, r *http.Request, req Request, into any) (b Behaviour, seq, status int, ok bool) {
	b, seq = s.Next(req)
	if b.Latency > 0 {
		select {
		case <-time.After(b.Latency):
		case <-r.Context().Done():
			return b, seq, 0, false
		}
	}
	for k, vs := range b.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	status = b.Status
	if status == 0 {
		status = http.StatusOK
	}
	if b.Body != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(b.Body) //nolint:errcheck
		return b, seq, status, false
	}
	if status >= 400 {
		writeJSON(w, status, errorBody(status, b))
		return b, seq, status, false
	}
	if err := json.Unmarshal(req.Body, into); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody(http.StatusBadRequest, Behaviour{ErrorMessage: "invalid JSON body: " + err.Error()}))
		return b, seq, status, false
	}
	return b, seq, status, true
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request, req Request) {
	var cr chatRequest
	b, seq, status, ok := s.begin(w, r, req, &cr)
	if !ok {
		return
	}
	model := b.Model
	if model == "" {
		model = cr.Model
	}
	content := b.text()
	id := fmt.Sprintf("chatcmpl-fake-%d", seq)
	if cr.Stream {
		s.stream(w, r, b, status, id, model, content, cr.StreamOptions != nil && cr.StreamOptions.IncludeUsage)
		return
	}
	msg := map[string]any{"role": "assistant", "content": content}
	if content == "" {
		msg["content"] = nil
	}
	if len(b.ToolCalls) > 0 {
		var calls []any
		for _, c := range b.ToolCalls {
			calls = append(calls, map[string]any{"id": c.ID, "type": "function",
				"function": map[string]any{"name": c.Name, "arguments": c.arguments()}})
		}
		msg["tool_calls"] = calls
	}
	resp := map[string]any{
		"id":      id,
		"object":  "chat.completion",
		"created": 1700000000,
		"model":   model,
		"choices": []any{map[string]any{
			"index":         0,
			"message":       msg,
			"finish_reason": b.finishReason(),
		}},
		"usage": usageJSON(b.Usage),
	}
	data, _ := json.Marshal(resp)
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

func (s *Server) stream(w http.ResponseWriter, r *http.Request, b Behaviour, status int, id, model, content string, includeUsage bool) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": 1700000000, "model": model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}},
		}
	}
	events := []any{chunk(map[string]any{"role": "assistant", "content": ""}, nil)}
	if content != "" {
		for _, piece := range fake.Split(content, b.Chunks) {
			events = append(events, chunk(map[string]any{"content": piece}, nil))
		}
	}
	for i, c := range b.ToolCalls {
		args := c.arguments()
		events = append(events,
			chunk(map[string]any{"tool_calls": []any{map[string]any{"index": i, "id": c.ID, "type": "function",
				"function": map[string]any{"name": c.Name, "arguments": ""}}}}, nil),
			chunk(map[string]any{"tool_calls": []any{map[string]any{"index": i, "function": map[string]any{"arguments": args[:len(args)/2]}}}}, nil),
			chunk(map[string]any{"tool_calls": []any{map[string]any{"index": i, "function": map[string]any{"arguments": args[len(args)/2:]}}}}, nil))
	}
	events = append(events, chunk(map[string]any{}, b.finishReason()))
	if includeUsage {
		events = append(events, map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": 1700000000, "model": model,
			"choices": []any{}, "usage": usageJSON(b.Usage),
		})
	}
	events = append(events, "[DONE]")
	sendEvents(w, r, b, events)
}

// text is the answer's text: Content, else the default unless the answer
// calls tools.
func (b Behaviour) text() string {
	if b.Content == "" && len(b.ToolCalls) == 0 {
		return "Hello from fakeopenai."
	}
	return b.Content
}

func (b Behaviour) finishReason() string {
	if len(b.ToolCalls) > 0 {
		return "tool_calls"
	}
	return "stop"
}

// sendEvents writes SSE events (a string as it is, an Event under its name,
// anything else as JSON data), paced and cut as b says. The response
// headers are already written.
func sendEvents(w http.ResponseWriter, r *http.Request, b Behaviour, events []any) {
	fl := w.(http.Flusher)
	for i, ev := range events {
		if b.CutAfter > 0 && i == b.CutAfter {
			panic(http.ErrAbortHandler) // closes the connection: no terminating chunk
		}
		if i > 0 && b.ChunkDelay > 0 {
			select {
			case <-time.After(b.ChunkDelay):
			case <-r.Context().Done():
				return
			}
		}
		var data []byte
		name := ""
		switch ev := ev.(type) {
		case string:
			data = []byte(ev)
		case Event:
			name = "event: " + ev.Name + "\n"
			data, _ = json.Marshal(ev.Data)
		default:
			data, _ = json.Marshal(ev)
		}
		if _, err := fmt.Fprintf(w, "%sdata: %s\n\n", name, data); err != nil {
			return
		}
		fl.Flush()
	}
}

// CountTokens is the fake's answer to POST /v1/responses/input_tokens.
func CountTokens(body []byte) int { return len(body) / 4 }

func usageJSON(u Usage) map[string]any {
	return map[string]any{
		"prompt_tokens":             u.Prompt,
		"completion_tokens":         u.Completion,
		"total_tokens":              u.Prompt + u.Completion,
		"prompt_tokens_details":     map[string]any{"cached_tokens": u.Cached},
		"completion_tokens_details": map[string]any{"reasoning_tokens": u.Reasoning},
	}
}

func errorBody(status int, b Behaviour) map[string]any {
	typ := b.ErrorType
	if typ == "" {
		typ = "invalid_request_error"
		if status >= 500 {
			typ = "server_error"
		}
		if status == http.StatusTooManyRequests {
			typ = "rate_limit_error"
		}
	}
	msg := b.ErrorMessage
	if msg == "" {
		msg = http.StatusText(status)
	}
	var code any
	if b.ErrorCode != "" {
		code = b.ErrorCode
	}
	return map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": code}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	w.WriteHeader(status)
	w.Write(data) //nolint:errcheck
}
