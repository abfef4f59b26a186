// Package fakeopenai is a scriptable stand-in for an OpenAI-compatible
// provider, for end-to-end tests and local runs without internet.
//
// It serves POST /v1/chat/completions (JSON, or SSE when the request has
// "stream": true) and GET /v1/models. Each chat request is answered by a
// Behaviour: taken from the queue filled by Enqueue if it is not empty, else
// from the function set by Script, else Options.Default. A Behaviour can
// return an OpenAI error with any status and headers (e.g. retry-after),
// wait before sending headers, pace SSE chunks, cut the stream midway by
// closing the connection, and report chosen usage figures. Every request
// received is recorded for assertions.
package fakeopenai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Request is one request the server received.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// Usage holds the token counts reported in a response.
type Usage struct {
	Prompt     int // usage.prompt_tokens
	Completion int // usage.completion_tokens
	Cached     int // usage.prompt_tokens_details.cached_tokens
	Reasoning  int // usage.completion_tokens_details.reasoning_tokens
}

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
	// Content is the assistant's reply text; default "Hello from fakeopenai.".
	Content string
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
	ln   net.Listener
	srv  *http.Server
	opts Options

	mu       sync.Mutex
	requests []Request
	queue    []Behaviour
	script   func(Request) Behaviour
	seq      int
}

// New starts a server on a random loopback port. It panics if it cannot
// listen, like httptest.NewServer.
func New(opts Options) *Server {
	s, err := Listen("127.0.0.1:0", opts)
	if err != nil {
		panic(fmt.Sprintf("fakeopenai: %v", err))
	}
	return s
}

// Listen starts a server on addr.
func Listen(addr string, opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, opts: opts}
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln) //nolint:errcheck // returns ErrServerClosed on Close
	return s, nil
}

// ListenAndServe runs a server on addr until ctx is done.
func ListenAndServe(ctx context.Context, addr string, opts Options) error {
	s, err := Listen(addr, opts)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close()
}

// URL returns the base URL, e.g. "http://127.0.0.1:34567".
func (s *Server) URL() string { return "http://" + s.Addr() }

// Addr returns the listener's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server and closes open connections.
func (s *Server) Close() error {
	err := s.srv.Close()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Requests returns a copy of every request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Script sets a function that chooses the behaviour of each chat request not
// answered from the queue. A nil function restores Options.Default.
func (s *Server) Script(f func(Request) Behaviour) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = f
}

// Enqueue appends behaviours used, one per chat request, before any script.
func (s *Server) Enqueue(b ...Behaviour) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, b...)
}

// Handler returns the HTTP handler, for use with a caller's own server.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.chat)
	mux.HandleFunc("GET /v1/models", s.models)
	return s.record(mux)
}

func (s *Server) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req := Request{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: body}
		s.mu.Lock()
		s.requests = append(s.requests, req)
		s.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), reqKey{}, req)))
	})
}

type reqKey struct{}

func (s *Server) behaviour(req Request) (Behaviour, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	if len(s.queue) > 0 {
		b := s.queue[0]
		s.queue = s.queue[1:]
		return b, s.seq
	}
	if s.script != nil {
		return s.script(req), s.seq
	}
	return s.opts.Default, s.seq
}

func (s *Server) models(w http.ResponseWriter, _ *http.Request) {
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

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	req := r.Context().Value(reqKey{}).(Request)
	b, seq := s.behaviour(req)
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
		writeJSON(w, status, errorBody(status, b))
		return
	}
	var cr chatRequest
	if err := json.Unmarshal(req.Body, &cr); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody(http.StatusBadRequest, Behaviour{ErrorMessage: "invalid JSON body: " + err.Error()}))
		return
	}
	model := b.Model
	if model == "" {
		model = cr.Model
	}
	content := b.Content
	if content == "" {
		content = "Hello from fakeopenai."
	}
	id := fmt.Sprintf("chatcmpl-fake-%d", seq)
	if cr.Stream {
		s.stream(w, r, b, status, id, model, content, cr.StreamOptions != nil && cr.StreamOptions.IncludeUsage)
		return
	}
	resp := map[string]any{
		"id":      id,
		"object":  "chat.completion",
		"created": 1700000000,
		"model":   model,
		"choices": []any{map[string]any{
			"index":         0,
			"message":       map[string]any{"role": "assistant", "content": content},
			"finish_reason": "stop",
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
	fl := w.(http.Flusher)
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": 1700000000, "model": model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}},
		}
	}
	events := []any{chunk(map[string]any{"role": "assistant", "content": ""}, nil)}
	for _, piece := range split(content, b.Chunks) {
		events = append(events, chunk(map[string]any{"content": piece}, nil))
	}
	events = append(events, chunk(map[string]any{}, "stop"))
	if includeUsage {
		events = append(events, map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": 1700000000, "model": model,
			"choices": []any{}, "usage": usageJSON(b.Usage),
		})
	}
	events = append(events, "[DONE]")
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
		if s, ok := ev.(string); ok {
			data = []byte(s)
		} else {
			data, _ = json.Marshal(ev)
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", data); err != nil {
			return
		}
		fl.Flush()
	}
}

// split cuts s into n pieces of about equal length (n <= 0: one per word,
// keeping the spaces).
func split(s string, n int) []string {
	if n <= 0 {
		var out []string
		start := 0
		for i := 1; i < len(s); i++ {
			if s[i] == ' ' {
				out = append(out, s[start:i])
				start = i
			}
		}
		return append(out, s[start:])
	}
	rs := []rune(s)
	if n > len(rs) {
		n = len(rs)
	}
	if n == 0 {
		return []string{s}
	}
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, string(rs[i*len(rs)/n:(i+1)*len(rs)/n]))
	}
	return out
}

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
