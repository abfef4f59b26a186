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

// Encode is the record's stored form.
func (r Record) Encode() []byte {
	b, _ := json.Marshal(r) // a struct of strings, ints and a time: never fails
	return b
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
func recordKey(tenant, id string) string { return "feedback:r:" + digest(tenant, id) }
func claimKey(tenant, id string) string  { return "feedback:c:" + digest(tenant, id) }

func digest(tenant, id string) string {
	h := sha256.New()
	h.Write([]byte(tenant))
	h.Write([]byte{0})
	h.Write([]byte(id))
	return hex.EncodeToString(h.Sum(nil))
}
