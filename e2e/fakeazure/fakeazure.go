// Package fakeazure is a scriptable stand-in for Azure OpenAI, for
// end-to-end tests: fakeopenai's answers behind Azure's deployment API.
//
// It serves POST /openai/deployments/{deployment}/chat/completions?api-version=…,
// …/{deployment}/embeddings?api-version=… and the v1 Responses API,
// POST /openai/v1/responses (no api-version; the body's model names the
// deployment),
// and checks what Azure checks: the api-version query parameter (404
// without it, like Azure) and, when Options.Key is set, the api-key header
// or an "Authorization: Bearer" token (401 with Azure's error body
// otherwise). Answers come from a fakeopenai.Server (Enqueue, Script, Usage,
// errors, cuts), with Azure's additions: streams start with the
// prompt_filter_results event that has empty choices, and the answer names
// Options.Model as Azure names the deployed model. Every request is recorded
// with the path and query Azure received.
package fakeazure

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/llmproc/llmproc/e2e/fake"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

// Options configure a Server.
type Options struct {
	// Key, when set, is the credential every request must carry, in api-key
	// or as a bearer token.
	Key string
	// Model is the model named in successful answers (Azure reports the
	// deployed model, not the deployment); default "gpt-4o-2024-08-06".
	Model string
	// BasePath is a path prefix before /openai/deployments (a gateway in
	// front of the resource, e.g. "/tenant-a").
	BasePath string
	// OpenAI configures the fakeopenai server that makes the answers.
	OpenAI fakeopenai.Options
}

// Request is one request the server received, with the deployment and
// api-version Azure reads from it.
type Request struct {
	fake.Request
	Deployment string // empty when the path is not a deployment's chat completions or embeddings
	APIVersion string
	// Endpoint is the OpenAI path the request maps to: /v1/chat/completions,
	// /v1/embeddings or /v1/responses; empty for any other path.
	Endpoint string
}

// Server is a running fake Azure OpenAI resource.
type Server struct {
	*fake.Server[Request]
	inner *fakeopenai.Server
	next  http.Handler
	opts  Options
}

// New starts a server on a random loopback port. It panics if it cannot
// listen, like httptest.NewServer.
func New(opts Options) *Server {
	if opts.Model == "" {
		opts.Model = "gpt-4o-2024-08-06"
	}
	inner := fakeopenai.New(opts.OpenAI)
	s := &Server{inner: inner, next: inner.Handler(), opts: opts}
	s.Server = fake.New(s.record)
	if err := s.Start("127.0.0.1:0", s.Record(s.answer)); err != nil {
		inner.Close() //nolint:errcheck // the listen error is the one to report
		panic(err)
	}
	return s
}

// Close stops the server and the fakeopenai server behind it.
func (s *Server) Close() error { return errors.Join(s.Server.Close(), s.inner.Close()) }

// Enqueue appends behaviours used, one per chat request, before any script.
func (s *Server) Enqueue(b ...fakeopenai.Behaviour) { s.inner.Enqueue(b...) }

// Script sets a function that chooses the behaviour of each chat request not
// answered from the queue (see fakeopenai.Server.Script).
func (s *Server) Script(f func(fakeopenai.Request) fakeopenai.Behaviour) { s.inner.Script(f) }

// Turns scripts the answers turn by turn (see fakeopenai.Server.Turns).
func (s *Server) Turns(turns ...func([]fake.ToolResult) fakeopenai.Behaviour) {
	s.inner.Turns(turns...)
}

const (
	deploymentsPrefix = "/openai/deployments/"
	chatSuffix        = "/chat/completions"
	embeddingsSuffix  = "/embeddings"
)

// responsesPath is Azure's v1 Responses API: no api-version, the
// deployment named by the body's model.
const responsesPath = "/openai/v1/responses"

func (s *Server) record(r *http.Request, body []byte) Request {
	req := Request{Request: fake.NewRequest(r, body), APIVersion: r.URL.Query().Get("api-version")}
	path, ok := strings.CutPrefix(r.URL.Path, s.opts.BasePath)
	if ok && strings.HasPrefix(path, deploymentsPrefix) {
		for _, suffix := range []string{chatSuffix, embeddingsSuffix} {
			if strings.HasSuffix(path, suffix) {
				req.Deployment = strings.TrimSuffix(strings.TrimPrefix(path, deploymentsPrefix), suffix)
				req.Endpoint = "/v1" + suffix
			}
		}
	}
	if ok && path == responsesPath {
		req.Endpoint = "/v1/responses"
	}
	return req
}

func (s *Server) answer(w http.ResponseWriter, r *http.Request, req Request) {
	responses := req.Endpoint == "/v1/responses"
	switch {
	case r.Method != http.MethodPost || req.Endpoint == "" || strings.Contains(req.Deployment, "/") || (!responses && req.APIVersion == ""):
		azureError(w, http.StatusNotFound, "404", "Resource not found")
		return
	case s.opts.Key != "" && r.Header.Get("api-key") != s.opts.Key && r.Header.Get("authorization") != "Bearer "+s.opts.Key:
		azureError(w, http.StatusUnauthorized, "401", "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.")
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawPath, r2.URL.RawQuery = req.Endpoint, "", ""
	r2.RequestURI = r2.URL.RequestURI()
	r2.Body = io.NopCloser(bytes.NewReader(req.Body))
	r2.ContentLength = int64(len(req.Body))
	if req.Endpoint != "/v1/chat/completions" { // OpenAI's answer as it is
		s.next.ServeHTTP(w, r2)
		return
	}
	s.next.ServeHTTP(&azureWriter{ResponseWriter: w, model: s.opts.Model}, r2)
}

func azureError(w http.ResponseWriter, status int, code, msg string) {
	data := fmt.Appendf(nil, `{"error":{"code":%q,"message":%q}}`, code, msg)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	w.WriteHeader(status)
	w.Write(data) //nolint:errcheck
}

// promptFilterEvent is the first event of an Azure stream: no choices, the
// prompt's content-filter verdicts.
const promptFilterEvent = `data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}]}` + "\n\n"

// azureWriter adds Azure's first stream event and names the deployed model
// in successful answers.
type azureWriter struct {
	http.ResponseWriter
	model   string
	wrote   bool
	stream  bool
	success bool
}

func (a *azureWriter) WriteHeader(status int) {
	if a.wrote {
		return
	}
	a.wrote = true
	a.success = status >= 200 && status < 300
	a.stream = strings.HasPrefix(a.Header().Get("Content-Type"), "text/event-stream")
	if a.success && !a.stream {
		a.Header().Del("Content-Length") // the model name changes the length
	}
	a.ResponseWriter.WriteHeader(status)
	if a.success && a.stream {
		io.WriteString(a.ResponseWriter, promptFilterEvent) //nolint:errcheck
	}
}

func (a *azureWriter) Write(p []byte) (int, error) {
	if !a.wrote {
		a.WriteHeader(http.StatusOK)
	}
	if !a.success {
		return a.ResponseWriter.Write(p)
	}
	if _, err := a.ResponseWriter.Write(setModel(p, a.model)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush lets fakeopenai pace its stream.
func (a *azureWriter) Flush() {
	if f, ok := a.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// setModel replaces the value of every "model" member in p (whole events
// or a whole JSON body: fakeopenai writes them in one piece).
func setModel(p []byte, model string) []byte {
	const key = `"model":"`
	var out []byte
	for {
		i := bytes.Index(p, []byte(key))
		if i < 0 {
			return append(out, p...)
		}
		j := bytes.IndexByte(p[i+len(key):], '"')
		if j < 0 {
			return append(out, p...)
		}
		out = append(out, p[:i+len(key)]...)
		out = append(out, model...)
		p = p[i+len(key)+j:]
	}
}
