// Package cache is llmproc's response cache. It is correct by construction:
// the key covers everything that can change an answer (KeyOf), only complete,
// successful answers are stored (the upstream role feeds the normalized
// answer to an Assembler, which refuses cut streams, error events, missing
// usage and anything replay could not reproduce), and a hit is served from
// one stored completion as JSON (ReplayJSON) or as a well-formed SSE stream
// (ReplaySSE). Decide applies the cache mode and the request's Cache-Control. Two tiers: Local (bigcache, per process, bounded by
// memory, with TTL) and an optional shared tier (Redis) that all replicas
// use; a shared tier that is down or slow never fails a request.
package cache

import (
	"context"
	"time"
)

// Key identifies one cacheable request: a SHA-256 over its canonical form.
type Key [32]byte

// Entry is one stored answer: an OpenAI chat.completion JSON object
// (non-streamed form, usage included), whatever form the client asked for.
type Entry struct {
	Completion []byte
	Stored     time.Time
	// RequestID is the id of the request whose answer this is; a hit served
	// from the entry names it (x-llmproc-cache-request-id).
	RequestID string
}

// Store is one cache tier.
type Store interface {
	// Get returns the entry for k; ok=false on a miss. An error means the
	// tier could not answer (the request goes on uncached).
	Get(ctx context.Context, k Key) (e Entry, ok bool, err error)
	// Set stores e under k for ttl.
	Set(ctx context.Context, k Key, e Entry, ttl time.Duration) error
}
