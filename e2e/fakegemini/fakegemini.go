// Package fakegemini is a scriptable stand-in for Google's Gemini API, on
// AI Studio and on Vertex AI, for end-to-end tests.
//
// It serves POST /v1beta/models/{model}:generateContent and
// :streamGenerateContent?alt=sse (AI Studio), and the same methods under
// /v1/projects/{project}/locations/{location}/publishers/google/models/{model}
// (Vertex); embeddings too: :batchEmbedContents on AI Studio, :predict on
// Vertex (embed.go). It checks what Google checks: with Options.Key, the
// x-goog-api-key header (400 API_KEY_INVALID otherwise, as AI Studio
// answers); with Options.Bearer, an "Authorization: Bearer" token (401
// UNAUTHENTICATED otherwise). Each request is answered by a Behaviour taken
// from the queue filled by Enqueue, else from the function set by Script,
// else Options.Default: text, function calls, thought text, a finish reason,
// usage figures, a Google error with any status, an error inside a 200
// stream, or a stream cut short. Every request is recorded.
package fakegemini

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/llmproc/llmproc/e2e/fake"
)

// Options configure a Server.
type Options struct {
	// Key, when set, is the API key every request must carry in x-goog-api-key.
	Key string
	// Bearer, when set, is the access token every request must carry.
	Bearer string
	// Default answers requests when neither the queue nor a script applies.
	Default Behaviour
}

// Usage holds the token counts reported in usageMetadata.
type Usage struct {
	Prompt     int // promptTokenCount (includes Cached)
	Candidates int // candidatesTokenCount
	Cached     int // cachedContentTokenCount
	Thoughts   int // thoughtsTokenCount
}

// FunctionCall is a functionCall part of an answer.
type FunctionCall struct {
	Name string
	Args map[string]any
	// Signature, when set, is the part's thoughtSignature.
	Signature string
}

// Behaviour scripts the answer to one request.
type Behaviour struct {
	// Status is the HTTP status; 0 means 200. At 400 or above the body is a
	// Google error object with ErrorStatus (e.g. "RESOURCE_EXHAUSTED") and
	// ErrorMessage, unless Body is set.
	Status       int
	ErrorStatus  string
	ErrorMessage string
	// Body, when non-nil, is sent as is (content-type application/json).
	Body []byte
	// Text is the answer's text; default "Hello from fakegemini.".
	Text string
	// Chunks is how many events a stream splits Text into; 0 means one per word.
	Chunks int
	// Thought, when set, is sent first as a thought part.
	Thought string
	// Calls are function calls, sent after the text (in the last event of a stream).
	Calls []FunctionCall
	// FinishReason defaults to "STOP".
	FinishReason string
	// Usage is reported in the answer (a stream's last event carries the
	// full figures, earlier ones the prompt count only).
	Usage Usage
	// StreamError, when set, is a Google status sent as an error event
	// after the first event of a stream, which then ends.
	StreamError string
	// CutAfter, when positive, closes the connection after that many stream
	// events, without the finishing one.
	CutAfter int
}

// Request is one request the server received, with the parts of its path.
type Request struct {
	fake.Request
	Model    string
	Action   string // generateContent, streamGenerateContent, batchEmbedContents or predict; empty for other paths
	Project  string // Vertex only
	Location string // Vertex only
}

// Server is a running fake Gemini API.
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
	s := &Server{Server: fake.New(record), Queue: fake.NewQueue[Request](opts.Default), opts: opts}
	if err := s.Start(addr, s.Handler()); err != nil {
		return nil, err
	}
	return s, nil
}

// Handler returns the HTTP handler, for use with a caller's own server.
func (s *Server) Handler() http.Handler { return s.Record(s.serve) }

func record(r *http.Request, body []byte) Request {
	req, _ := parsePath(r.URL.Path)
	req.Request = fake.NewRequest(r, body)
	return req
}

// parsePath splits an AI Studio or Vertex method path.
func parsePath(p string) (req Request, ok bool) {
	var rest string
	switch {
	case strings.HasPrefix(p, "/v1beta/models/"):
		rest = strings.TrimPrefix(p, "/v1beta/models/")
	case strings.HasPrefix(p, "/v1/projects/"):
		parts := strings.SplitN(strings.TrimPrefix(p, "/v1/projects/"), "/", 6)
		if len(parts) != 6 || parts[1] != "locations" || parts[3] != "publishers" || parts[4] != "google" || !strings.HasPrefix(parts[5], "models/") {
			return req, false
		}
		req.Project, req.Location, rest = parts[0], parts[2], strings.TrimPrefix(parts[5], "models/")
	default:
		return req, false
	}
	model, action, ok := strings.Cut(rest, ":")
	if !ok || model == "" || strings.Contains(model, "/") || (action != "generateContent" && action != "streamGenerateContent" && !embedAction(req, action)) {
		return req, false
	}
	req.Model, req.Action = model, action
	return req, true
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, req Request) {
	if countAction(r.URL.Path) && r.Method == http.MethodPost {
		s.countTokens(w, r, req)
		return
	}
	if req.Action == "" || r.Method != http.MethodPost {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Method not found: "+r.URL.Path, "")
		return
	}
	if s.opts.Key != "" && r.Header.Get("x-goog-api-key") != s.opts.Key {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", "API_KEY_INVALID")
		return
	}
	if s.opts.Bearer != "" && r.Header.Get("authorization") != "Bearer "+s.opts.Bearer {
		writeError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "Request had invalid authentication credentials.", "")
		return
	}
	if embedAction(req, req.Action) {
		s.embed(w, req)
		return
	}
	stream := req.Action == "streamGenerateContent"
	if stream && r.URL.Query().Get("alt") != "sse" {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "fakegemini serves streams as SSE only (alt=sse)", "")
		return
	}
	var parsed struct {
		Contents []json.RawMessage `json:"contents"`
	}
	if err := json.Unmarshal(req.Body, &parsed); err != nil || len(parsed.Contents) == 0 {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received, or no contents.", "")
		return
	}
	b, seq := s.Next(req)
	status := b.Status
	if status == 0 {
		status = http.StatusOK
	}
	if b.Body != nil {
		w.Header().Set("content-type", "application/json; charset=UTF-8")
		w.WriteHeader(status)
		w.Write(b.Body) //nolint:errcheck
		return
	}
	if status >= 400 {
		msg := b.ErrorMessage
		if msg == "" {
			msg = http.StatusText(status)
		}
		writeError(w, status, b.ErrorStatus, msg, "")
		return
	}
	id := fmt.Sprintf("fake-%d", seq)
	if stream {
		s.stream(w, b, req.Model, id)
		return
	}
	w.Header().Set("content-type", "application/json; charset=UTF-8")
	json.NewEncoder(w).Encode(answer(b, req.Model, id, parts(b, text(b)), true)) //nolint:errcheck
}

func text(b Behaviour) string {
	if b.Text == "" && len(b.Calls) == 0 {
		return "Hello from fakegemini."
	}
	return b.Text
}

// parts are an answer's parts: the thought, the text, the calls.
func parts(b Behaviour, text string) []any {
	var ps []any
	if b.Thought != "" {
		ps = append(ps, map[string]any{"text": b.Thought, "thought": true})
	}
	if text != "" {
		ps = append(ps, map[string]any{"text": text})
	}
	for _, c := range b.Calls {
		args := c.Args
		if args == nil {
			args = map[string]any{}
		}
		p := map[string]any{"functionCall": map[string]any{"name": c.Name, "args": args}}
		if c.Signature != "" {
			p["thoughtSignature"] = c.Signature
		}
		ps = append(ps, p)
	}
	return ps
}

// answer is one GenerateContentResponse; last adds the finish reason and
// the full usage.
func answer(b Behaviour, model, id string, ps []any, last bool) map[string]any {
	cand := map[string]any{"content": map[string]any{"role": "model", "parts": ps}, "index": 0}
	meta := map[string]any{"promptTokenCount": b.Usage.Prompt, "totalTokenCount": b.Usage.Prompt}
	if last {
		fr := b.FinishReason
		if fr == "" {
			fr = "STOP"
		}
		cand["finishReason"] = fr
		meta["candidatesTokenCount"] = b.Usage.Candidates
		meta["totalTokenCount"] = b.Usage.Prompt + b.Usage.Candidates + b.Usage.Thoughts
		if b.Usage.Cached > 0 {
			meta["cachedContentTokenCount"] = b.Usage.Cached
		}
		if b.Usage.Thoughts > 0 {
			meta["thoughtsTokenCount"] = b.Usage.Thoughts
		}
	}
	return map[string]any{"candidates": []any{cand}, "usageMetadata": meta, "modelVersion": model, "responseId": id}
}

// pieces splits text into n pieces, or one per word when n is 0.
func pieces(text string, n int) []string {
	if text == "" {
		return nil
	}
	if n <= 0 {
		var out []string
		for i, w := range strings.SplitAfter(text, " ") {
			if i == 0 || w != "" {
				out = append(out, w)
			}
		}
		return out
	}
	var out []string
	size := (len(text) + n - 1) / n
	for len(text) > 0 {
		k := min(size, len(text))
		out = append(out, text[:k])
		text = text[k:]
	}
	return out
}

func (s *Server) stream(w http.ResponseWriter, b Behaviour, model, id string) {
	w.Header().Set("content-type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fl := w.(http.Flusher)
	var events []map[string]any
	if b.Thought != "" {
		events = append(events, answer(b, model, id, []any{map[string]any{"text": b.Thought, "thought": true}}, false))
	}
	for _, p := range pieces(text(b), b.Chunks) {
		events = append(events, answer(b, model, id, []any{map[string]any{"text": p}}, false))
	}
	last := parts(Behaviour{Calls: b.Calls}, "")
	if last == nil {
		last = []any{map[string]any{"text": ""}}
	}
	events = append(events, answer(b, model, id, last, true))
	for i, ev := range events {
		if b.CutAfter > 0 && i == b.CutAfter {
			cut(w)
			return
		}
		if i == 1 && b.StreamError != "" {
			e := map[string]any{"error": map[string]any{"code": statusFor(b.StreamError), "message": "stream failed: " + b.StreamError, "status": b.StreamError}}
			writeEvent(w, e)
			fl.Flush()
			return
		}
		writeEvent(w, ev)
		fl.Flush()
	}
}

func writeEvent(w io.Writer, v any) {
	data, _ := json.Marshal(v)
	fmt.Fprintf(w, "data: %s\r\n\r\n", data)
}

// cut closes the connection abruptly, so the client sees a truncated body.
func cut(w http.ResponseWriter) {
	w.(http.Flusher).Flush()
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		conn.Close()
	}
}

// statusFor is the HTTP status Google sends with a status code name.
func statusFor(s string) int {
	switch s {
	case "RESOURCE_EXHAUSTED":
		return http.StatusTooManyRequests
	case "UNAVAILABLE":
		return http.StatusServiceUnavailable
	case "UNAUTHENTICATED":
		return http.StatusUnauthorized
	case "PERMISSION_DENIED":
		return http.StatusForbidden
	case "NOT_FOUND":
		return http.StatusNotFound
	case "INTERNAL":
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// writeError sends a Google API error object.
func writeError(w http.ResponseWriter, status int, gs, msg, reason string) {
	if gs == "" {
		gs = map[int]string{429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 500: "INTERNAL"}[status]
		if gs == "" {
			gs = "INVALID_ARGUMENT"
		}
	}
	e := map[string]any{"code": status, "message": msg, "status": gs}
	if reason != "" {
		e["details"] = []any{map[string]any{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "googleapis.com"}}
	}
	w.Header().Set("content-type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": e}) //nolint:errcheck
}
