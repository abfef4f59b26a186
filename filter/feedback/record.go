// Package feedback keeps what llmproc needs to take a client's verdict on an
// answer: one Record per request (the model, backend, pool, route, class and
// tenant that served it, its attempts and trace), written when the request's
// answer leaves llmproc and kept for a window in process and, when
// configured, in Redis, so any replica accepts feedback for any request of
// the window. A Claim per request makes feedback once-only across replicas.
package feedback

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Record is one request as it was answered. Attempts comes first in its
// JSON: the Redis tier compares it without decoding the rest (redis.go).
type Record struct {
	// Attempts is Envoy's attempt count of the answering attempt (1 for the
	// first; 0 for a cache hit, which no attempt served).
	Attempts  int    `json:"attempts"`
	RequestID string `json:"request_id"`
	Tenant    string `json:"tenant"` // the caller's tenant
	// Model is the configured model that served the request (a pool
	// member's override, a rule's target, else the one asked for);
	// RequestedModel the one the client asked for.
	Model          string `json:"model"`
	RequestedModel string `json:"requested_model,omitempty"`
	Backend        string `json:"backend,omitempty"` // "" for a cache hit
	Pool           string `json:"pool"`
	Route          string `json:"route"`
	Class          string `json:"class,omitempty"`
	Client         string `json:"client"` // the client's API
	Cache          string `json:"cache,omitempty"`
	Status         int    `json:"status,omitempty"` // the answer's HTTP status
	// AttemptBackends are the backends of every attempt, in order, as far
	// as llmproc saw them (an attempt Envoy never sent on is not in it).
	AttemptBackends []string `json:"attempt_backends,omitempty"`
	// TraceID and SpanID are the W3C trace id and parent span id of the
	// request's traceparent, as the router saw it; when llmproc traced the
	// request, its answering span's (extproc withSpan), where a verdict's
	// llmproc.feedback span goes.
	TraceID string    `json:"trace_id,omitempty"`
	SpanID  string    `json:"span_id,omitempty"`
	Time    time.Time `json:"time"`
}

// Encode is the record's stored form: encoding/json's encoding of r, byte
// for byte. It is written for every answer, so it is built by appending
// rather than by reflection; a record with text encoding/json would escape
// (or a time it would refuse) takes encoding/json itself.
func (r Record) Encode() []byte {
	if b, ok := r.appendJSON(make([]byte, 0, 512)); ok {
		return b
	}
	b, _ := json.Marshal(r) // a struct of strings, ints and a time: fails only on a year past 9999
	return b
}

// appendJSON appends r as encoding/json would encode it, field by field in
// Record's order, omitting the omitempty fields that are empty. ok is false
// when a string holds a byte encoding/json escapes or the time is one it
// refuses.
func (r Record) appendJSON(b []byte) ([]byte, bool) {
	for _, v := range [...]string{r.RequestID, r.Tenant, r.Model, r.RequestedModel, r.Backend,
		r.Pool, r.Route, r.Class, r.Client, r.Cache, r.TraceID, r.SpanID} {
		if !plain(v) {
			return nil, false
		}
	}
	for _, v := range r.AttemptBackends {
		if !plain(v) {
			return nil, false
		}
	}
	str := func(b []byte, name, v string, omitEmpty bool) []byte {
		if omitEmpty && v == "" {
			return b
		}
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':', '"')
		b = append(b, v...)
		return append(b, '"')
	}
	b = append(b, `{"attempts":`...)
	b = strconv.AppendInt(b, int64(r.Attempts), 10)
	b = str(b, "request_id", r.RequestID, false)
	b = str(b, "tenant", r.Tenant, false)
	b = str(b, "model", r.Model, false)
	b = str(b, "requested_model", r.RequestedModel, true)
	b = str(b, "backend", r.Backend, true)
	b = str(b, "pool", r.Pool, false)
	b = str(b, "route", r.Route, false)
	b = str(b, "class", r.Class, true)
	b = str(b, "client", r.Client, false)
	b = str(b, "cache", r.Cache, true)
	if r.Status != 0 {
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(r.Status), 10)
	}
	if len(r.AttemptBackends) > 0 {
		b = append(b, `,"attempt_backends":[`...)
		for i, v := range r.AttemptBackends {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = append(b, v...)
			b = append(b, '"')
		}
		b = append(b, ']')
	}
	b = str(b, "trace_id", r.TraceID, true)
	b = str(b, "span_id", r.SpanID, true)
	b = append(b, `,"time":"`...)
	b, err := r.Time.AppendText(b) // what Time.MarshalJSON quotes
	if err != nil {
		return nil, false
	}
	return append(b, '"', '}'), true
}

// plain reports whether encoding/json writes s as it is between quotes:
// printable ASCII other than the quote, the backslash and its HTML escapes.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// Decode reads a stored record.
func Decode(b []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("feedback record: %w", err)
	}
	return r, nil
}

// recordKey and claimKey name a tenant's request in a tier: a hash, so no
// tenant or id (client-chosen text) ever becomes a key as it is, and a
// tenant's request id never names another tenant's record.
func recordKey(tenant, id string) string { return digest("feedback:r:", tenant, id) }
func claimKey(tenant, id string) string  { return digest("feedback:c:", tenant, id) }

// digest is prefix and the hex SHA-256 of tenant, a zero byte and id, built
// in one allocation when tenant and id are short (as they are).
func digest(prefix, tenant, id string) string {
	var in [256]byte
	sum := sha256.Sum256(append(append(append(in[:0], tenant...), 0), id...))
	var out [16 + sha256.Size*2]byte
	b := append(out[:0], prefix...)
	b = hex.AppendEncode(b, sum[:])
	return string(b)
}
