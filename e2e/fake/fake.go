// Package fake is the scaffolding the fake providers under e2e/ share, so
// each of them holds only what its provider answers.
//
// A Server listens on a loopback address, records every request (method,
// path, headers, body) before handing it to the provider's answer function,
// and stops on Close. A Queue chooses the Behaviour that answers a request:
// the next one queued by Enqueue, else the one a Script returns, else the
// default. Both are generic: over the provider's record of a request
// (Request, or a provider struct that embeds it) and its Behaviour. They
// are separate because a wrapping fake (fakeazure) records its own
// requests while another fake's queue chooses the answers.
//
// Turns (turns.go) scripts a conversation: a request is answered by the
// turn its tool results say it is (none yet: a tool call; one: an answer
// that can quote it), read from the provider's schema by each fake's
// ToolResults, e.g.
//
//	p.Turns(func([]fake.ToolResult) fakeopenai.Behaviour { return fakeopenai.Behaviour{ToolCalls: calls} },
//		func(rs []fake.ToolResult) fakeopenai.Behaviour { return fakeopenai.Behaviour{Content: rs[0].Output} })
//
// Every Server also injects faults (fault.go): compressed answers despite
// accept-encoding: identity, huge JSON, a stream with no newline, answers
// without usage, a reset before headers, stalls and in-band stream errors,
// queued per request with InjectFaults or chosen by ScriptFaults, e.g.
//
//	p := fakeopenai.New(fakeopenai.Options{})
//	p.InjectFaults(fake.Fault{Encoding: "gzip"}, fake.NoNewline(200<<20))
package fake

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Request is one request a fake received.
type Request struct {
	Method string
	Path   string // the request URI: escaped path and query, as received
	Header http.Header
	Body   []byte
}

// NewRequest records r, whose body has been read into body.
func NewRequest(r *http.Request, body []byte) Request {
	return Request{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: body}
}

// Server records requests of type R and serves them over HTTP.
type Server[R any] struct {
	record func(*http.Request, []byte) R
	faults *Queue[R, Fault]

	ln  net.Listener
	srv *http.Server

	mu       sync.Mutex
	requests []R
}

// New returns a server that records each request as record describes it.
// It serves nothing until Start.
func New[R any](record func(r *http.Request, body []byte) R) *Server[R] {
	return &Server[R]{record: record, faults: NewQueue[R](Fault{})}
}

// Record returns a handler that reads the body of each request, records
// it, and passes the record to answer. The body is read once: answer gets
// it from the record, not from r.Body. The request's Fault (InjectFaults,
// ScriptFaults) applies to the answer.
func (s *Server[R]) Record(answer func(w http.ResponseWriter, r *http.Request, req R)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req := s.record(r, body)
		s.mu.Lock()
		s.requests = append(s.requests, req)
		s.mu.Unlock()
		f, _ := s.faults.Next(req)
		withFault(f, w, r, func(w http.ResponseWriter) { answer(w, r, req) })
	})
}

// Start listens on addr ("127.0.0.1:0" for a random port) and serves h in
// the background until Close.
func (s *Server[R]) Start(addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("fake: %w", err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln) //nolint:errcheck // returns ErrServerClosed on Close
	return nil
}

// URL returns the base URL, e.g. "http://127.0.0.1:34567".
func (s *Server[R]) URL() string { return "http://" + s.Addr() }

// Addr returns the listener's host:port.
func (s *Server[R]) Addr() string { return s.ln.Addr().String() }

// Close stops the server and closes open connections.
func (s *Server[R]) Close() error {
	if s.srv == nil {
		return nil
	}
	if err := s.srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Requests returns a copy of every request received so far, in order.
func (s *Server[R]) Requests() []R {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]R(nil), s.requests...)
}

// Queue chooses the behaviour B that answers a request R.
type Queue[R, B any] struct {
	def B

	mu     sync.Mutex
	queue  []B
	script func(R) B
	seq    int
}

// NewQueue returns a queue that answers with def when nothing is queued
// and no script is set.
func NewQueue[R, B any](def B) *Queue[R, B] {
	return &Queue[R, B]{def: def}
}

// Enqueue appends behaviours used, one per request, before any script.
func (q *Queue[R, B]) Enqueue(b ...B) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queue = append(q.queue, b...)
}

// Script sets a function that chooses the behaviour of each request not
// answered from the queue. A nil function restores the default.
func (q *Queue[R, B]) Script(f func(R) B) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.script = f
}

// Next takes the behaviour for req and numbers it: 1 for the first request
// answered, 2 for the next, and so on (for ids in answers).
func (q *Queue[R, B]) Next(req R) (B, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seq++
	if len(q.queue) > 0 {
		b := q.queue[0]
		q.queue = q.queue[1:]
		return b, q.seq
	}
	if q.script != nil {
		return q.script(req), q.seq
	}
	return q.def, q.seq
}

// Must returns v, and panics if err is not nil: New functions that start a
// fake on a random port panic as httptest.NewServer does.
func Must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Split cuts s into n pieces of about equal length in runes, or when n <= 0
// into words, each after the first keeping the space before it.
func Split(s string, n int) []string {
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
	n = min(n, len(rs))
	if n == 0 {
		return []string{s}
	}
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, string(rs[i*len(rs)/n:(i+1)*len(rs)/n]))
	}
	return out
}
