// Package translate converts between the OpenAI chat-completions schema that
// clients speak and whatever the chosen backend speaks. Everything outside this
// package sees only OpenAI JSON and SSE: a translator turns the client's body
// into the provider's request for one attempt, and turns the provider's answer,
// chunk by chunk, back into OpenAI form (errors included).
//
// One file per provider schema and client API, with its answer side in a
// <name>_answer.go beside it where the two would make one long file; For
// returns the translator for a schema.
package translate

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/creds"
)

// Request is what the upstream role knows when it prepares one attempt.
type Request struct {
	Body        []byte // the client's OpenAI chat-completions body
	Backend     *config.RBackend
	ClientModel string // the model the body names
	Model       string // the model name to send: the pool member's override or the client's
	Stream      bool
	// UsageRequested is the client's stream_options.include_usage.
	UsageRequested bool
}

// Upstream is the request to send to the backend. Its SetHeaders are set
// after the upstream role removed every header any translator declares
// (Translator.Headers), so an attempt never carries what an earlier attempt
// set for another backend.
type Upstream struct {
	Path       string
	Body       []byte // nil keeps the client's body unchanged
	SetHeaders [][2]string
}

// Response describes the backend's answer as its headers arrived.
type Response struct {
	Status      int
	ContentType string
	Stream      bool   // the client asked for a stream
	Model       string // the model name that was sent (reported back to the client)
	// Header returns a response header by lowercase name ("" if absent).
	Header func(name string) string
	// Reasoning asks for the model's thinking in the answer, as the hub's
	// reasoning_content and thinking_blocks (see reasoning.go): set for
	// clients that read them (the Anthropic client API, which turns them into
	// thinking blocks) and for backends with reasoning_content: true. When
	// false, translators leave thinking out, so OpenAI clients never get it.
	Reasoning bool
}

// Answer says how a backend's response reaches the client.
type Answer struct {
	Body Body
	// Status, when non-zero, replaces the backend's status, so the client and
	// Envoy's retry policy see OpenAI's meaning (Anthropic's 529 → 503).
	Status int
	// ContentType, when non-empty, replaces the backend's content-type.
	ContentType string
}

// Translator handles one backend schema. Implementations keep no per-request
// state; per-attempt response state lives in the Body of the Answer.
type Translator interface {
	Request(r *Request) (*Upstream, error)
	Response(r *Response) Answer
	// Headers names every request header Request may set (lowercase), and
	// those of the client's that must not reach this backend's kind of
	// provider. The upstream role removes the union over all schemas from
	// every attempt before it sets this one's: Envoy hands each attempt the
	// header map the previous attempt left.
	Headers() []string
}

// Body translates one response body, chunk by chunk, into OpenAI form.
type Body interface {
	// Chunk returns the bytes to send in place of chunk. pass=true means the
	// chunk goes through unchanged (out is ignored); otherwise out replaces it
	// and may be empty. eos marks the last chunk. out is valid until the next
	// call: a stream writes each chunk's output into the same buffer.
	Chunk(chunk []byte, eos bool) (out []byte, pass bool)
}

// maxReusedOut is the largest output buffer a stream keeps for its next
// chunk; past it (one huge event) the buffer goes, so an open stream does
// not hold it.
const maxReusedOut = 32 << 10

// reuse empties a stream's output buffer for the next chunk (the last
// chunk's output has been sent: Body), unless it grew past maxReusedOut.
func reuse(b []byte) []byte {
	if cap(b) > maxReusedOut {
		return nil
	}
	return b[:0]
}

// Set holds one translator per schema for as long as the server runs, so a
// translator may keep what must outlive an attempt: the AWS credential chain
// and signing-key cache (bedrock), Google token sources (vertex). The
// extproc server owns one Set; nothing is package-global.
type Set struct {
	bedrock bedrock
	vertex  vertex
}

// SetOptions configures a Set.
type SetOptions struct {
	// OnCredentialRefresh, when set, is called after every background fetch
	// of a backend's expiring credential (AWS default chain, Vertex
	// service-account token), with its error (nil when it succeeded).
	OnCredentialRefresh func(backend string, err error)
	// Credentials configures those fetches (defaults when zero; tests set
	// the clock). Its OnRefresh is replaced by OnCredentialRefresh.
	Credentials creds.Options
}

// NewSet returns translators with fresh caches. Close stops their
// background credential refreshes.
func NewSet(o SetOptions) *Set {
	co := o.Credentials
	co.OnRefresh = nil
	if f := o.OnCredentialRefresh; f != nil {
		co.OnRefresh = func(key string, err error) {
			backend, _, _ := strings.Cut(key, "\x00")
			f(backend, err)
		}
	}
	return &Set{bedrock: newBedrock(co), vertex: vertex{tokens: &tokenCache{cache: creds.New[string](co)}, now: time.Now}}
}

// Prepare starts fetching, in the background, the expiring credentials the
// backends sign with, so that requests find them ready; it stops refreshing
// those of backends no longer configured (or whose key changed).
func (s *Set) Prepare(backends map[string]*config.RBackend) {
	aws, google := map[string]bool{}, map[string]bool{}
	for _, b := range backends {
		switch {
		case b.Schema == "bedrock" && defaultChain(b):
			aws[b.Name+"\x00"+b.Bedrock.Region] = true
			s.bedrock.chain.keep(b.Name, b.Bedrock.Region)
		case b.Schema == "vertex":
			// Both keys of a rotation (backends[].credential_next).
			keys := vertexKeys(b)
			for i, cred := range []string{b.Credential, b.CredentialNext} {
				if keys[i] != "" {
					google[keys[i]] = true
					_ = s.vertex.tokens.keep(b.Name, keys[i], keys[1-i], strings.TrimSpace(cred)) // an unusable key is refused on each request
				}
			}
		}
	}
	s.bedrock.chain.creds.Retain(func(k string) bool { return aws[k] })
	s.vertex.tokens.cache.Retain(func(k string) bool { return google[k] })
}

// CredentialReady reports whether a request to b can be signed without
// waiting for a credential fetch.
func (s *Set) CredentialReady(b *config.RBackend) bool {
	switch cred := strings.TrimSpace(b.Credential); {
	case b.Schema == "bedrock" && defaultChain(b):
		_, ok := s.bedrock.chain.creds.Get(b.Name + "\x00" + b.Bedrock.Region)
		return ok
	case b.Schema == "vertex" && serviceAccount(cred):
		_, ok := s.vertex.tokens.cache.Get(vertexKey(b.Name, cred))
		return ok
	}
	return true
}

// Close stops the background credential refreshes.
func (s *Set) Close() {
	s.bedrock.chain.creds.Close()
	s.vertex.tokens.cache.Close()
}

// For returns the translator for a backend schema.
func (s *Set) For(schema string) (Translator, error) {
	switch schema {
	case "openai", "openai-compatible":
		// Compatible servers differ in quirks that the backend's compat
		// options cover; errors are normalized for both.
		return openAI{}, nil
	case "azure-openai":
		return azure{}, nil
	case "anthropic":
		return anthropic{}, nil
	case "bedrock":
		return s.bedrock, nil
	case "gemini":
		return gemini{}, nil
	case "vertex":
		return s.vertex, nil
	}
	return nil, fmt.Errorf("backend schema %q is not supported", schema)
}

// Headers is the union of every schema's Translator.Headers, sorted.
func (s *Set) Headers() []string {
	var out []string
	for _, schema := range config.Schemas {
		if t, err := s.For(schema); err == nil {
			out = append(out, t.Headers()...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// For returns a translator for a schema with caches of its own (tests,
// config checks); servers use a Set.
func For(schema string) (Translator, error) { return NewSet(SetOptions{}).For(schema) }

// CheckBackends reports every backend whose schema has no translator yet,
// each with its field path, so a config is refused up front rather than
// failing on the first request that reaches such a backend.
func CheckBackends(c *config.Config) error {
	var errs []error
	for i, b := range c.Backends {
		if _, err := For(b.Schema); err != nil {
			errs = append(errs, fmt.Errorf("backends[%d].schema: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// Unsupported is what a translator does with an OpenAI parameter its backend
// cannot honour: nil when the backend's drop_params lists it (the caller then
// drops it), else a 400 naming the parameter and the backend.
func Unsupported(b *config.RBackend, param string) error {
	if slices.Contains(b.DropParams, param) {
		return nil
	}
	return &apierr.Error{Status: http.StatusBadRequest, Type: apierr.TypeInvalidRequest, Code: "unsupported_parameter", Param: param,
		Message: fmt.Sprintf("Parameter '%s' is not supported by backend %q (schema %s). List it in the backend's drop_params to have it dropped instead.", param, b.Name, b.Schema)}
}

// Passes reports whether b lets every chunk through unchanged (a 2xx answer
// of an OpenAI-schema backend).
func Passes(b Body) bool {
	_, ok := b.(passBody)
	return ok
}
