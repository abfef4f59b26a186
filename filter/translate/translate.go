// Package translate converts between the OpenAI chat-completions schema that
// clients speak and whatever the chosen backend speaks. Everything outside this
// package sees only OpenAI JSON and SSE: a translator turns the client's body
// into the provider's request for one attempt, and turns the provider's answer,
// chunk by chunk, back into OpenAI form (errors included).
//
// One file per provider schema; For returns the translator for a schema.
package translate

import (
	"errors"
	"fmt"

	"github.com/llmproc/llmproc/filter/config"
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

// Upstream is the request to send to the backend.
type Upstream struct {
	Path          string
	Body          []byte // nil keeps the client's body unchanged
	SetHeaders    [][2]string
	RemoveHeaders []string
}

// Response describes the backend's answer as its headers arrived.
type Response struct {
	Status      int
	ContentType string
	Stream      bool // the client asked for a stream
}

// Translator handles one backend schema. Implementations are stateless; per-
// attempt response state lives in the Body they return.
type Translator interface {
	Request(r *Request) (*Upstream, error)
	Response(r *Response) Body
}

// Body translates one response body, chunk by chunk, into OpenAI form.
type Body interface {
	// Chunk returns the bytes to send in place of chunk. pass=true means the
	// chunk goes through unchanged (out is ignored); otherwise out replaces it
	// and may be empty. eos marks the last chunk.
	Chunk(chunk []byte, eos bool) (out []byte, pass bool)
}

// For returns the translator for a backend schema.
func For(schema string) (Translator, error) {
	switch schema {
	case "openai", "openai-compatible":
		// Compatible servers differ only in quirks (no stream_options, other
		// error shapes) that the per-backend knobs of the translation issue
		// will cover; errors are already normalized for both.
		return openAI{}, nil
	}
	return nil, fmt.Errorf("backend schema %q is not supported yet", schema)
}

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
