package semantic

import (
	"context"
	"errors"
	"time"
)

// Outcomes of a Lookup, bounded, usable as metric labels.
const (
	LookupHit         = "hit"
	LookupMiss        = "miss"         // no stored turn reached the threshold
	LookupGuarded     = "guarded"      // one did, but the guard refused every such candidate
	LookupEmbedFailed = "embed_failed" // no embedding in time: a miss
)

// candidates is how many of the most similar records a lookup offers the
// guard, best first.
const candidates = 4

// VectorSource turns a text into a unit vector (Embedder, or a stand-in in
// tests).
type VectorSource interface {
	Embed(ctx context.Context, text string) ([]float32, error)
}

// Guard reports whether two latest user turns carry the same
// meaning-bearing tokens (numbers, negations, entities, quoted strings…).
type Guard func(a, b string) bool

// Options configures a Tier.
type Options struct {
	// Threshold is the least cosine similarity served (0 < t ≤ 1).
	Threshold float32
	// MaxEntries bounds the in-process index; MaxBucketEntries each
	// bucket (in process and in Redis).
	MaxEntries, MaxBucketEntries int
	TTL                          time.Duration
	Vectors                      VectorSource
	Guard                        Guard
	Shared                       *Shared       // nil: this process only
	SharedTimeout                time.Duration // bounds each Redis call (default 50ms)
	Now                          func() time.Time
	// OnSharedError is told of a Redis call that failed (the lookup went on
	// with what this process holds).
	OnSharedError func(op string, err error)
}

// Tier is the semantic tier: Lookup on the request path, Store once an
// answer was stored in the exact tiers under its entry key.
type Tier struct {
	o  Options
	ix *Index
}

// NewTier returns a tier for o; Vectors and Guard are required.
func NewTier(o Options) (*Tier, error) {
	if o.Vectors == nil || o.Guard == nil {
		return nil, errors.New("semantic: a tier needs a vector source and a guard")
	}
	if o.Threshold <= 0 || o.Threshold > 1 {
		return nil, errors.New("semantic: the threshold must be in (0, 1]")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SharedTimeout <= 0 {
		o.SharedTimeout = 50 * time.Millisecond
	}
	return &Tier{o: o, ix: NewIndex(o.MaxEntries, o.MaxBucketEntries, o.TTL)}, nil
}

// Index is the tier's in-process index.
func (t *Tier) Index() *Index { return t.ix }

// Lookup returns the stored record whose turn means the same as text in
// bucket b: the most similar one at or above the threshold that the guard
// passes. outcome says why not when ok is false.
func (t *Tier) Lookup(ctx context.Context, b Bucket, text string) (m Match, ok bool, outcome string) {
	v, err := t.o.Vectors.Embed(ctx, text)
	if err != nil {
		return Match{}, false, LookupEmbedFailed
	}
	now := t.o.Now()
	if t.o.Shared != nil {
		sctx, cancel := context.WithTimeout(ctx, t.o.SharedTimeout)
		err := t.o.Shared.Sync(sctx, t.ix, b, now)
		cancel()
		if err != nil && t.o.OnSharedError != nil {
			t.o.OnSharedError("sync", err)
		}
	}
	found := t.ix.Search(b, v, t.o.Threshold, candidates, now)
	if len(found) == 0 {
		return Match{}, false, LookupMiss
	}
	for _, c := range found {
		if t.o.Guard(text, c.Text) {
			return c, true, LookupHit
		}
	}
	return Match{}, false, LookupGuarded
}

// Store adds the answer stored under entry, for the request requestID
// whose latest user turn is text, to bucket b: in process, and in Redis
// when shared (call it after the entry itself reached Redis, so no replica
// finds a record whose entry it cannot read).
func (t *Tier) Store(ctx context.Context, b Bucket, text string, entry [32]byte, requestID string, stored time.Time) error {
	v, err := t.o.Vectors.Embed(ctx, text)
	if err != nil {
		return err
	}
	r := Record{Entry: entry, RequestID: requestID, Text: text, Vector: v, Stored: stored}
	t.ix.Add(b, r, t.o.Now())
	if t.o.Shared == nil {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, t.o.SharedTimeout)
	defer cancel()
	if err := t.o.Shared.Publish(sctx, b, r); err != nil {
		if t.o.OnSharedError != nil {
			t.o.OnSharedError("publish", err)
		}
		return err
	}
	return nil
}

// StandInVectors is a VectorSource of StandIn vectors of dims numbers,
// normalized: the embedding the precision test and the fakes use.
type StandInVectors struct{ Dims int }

// Embed returns the normalized StandIn vector of text.
func (s StandInVectors) Embed(_ context.Context, text string) ([]float32, error) {
	return Normalize(StandIn(text, s.Dims)), nil
}

// DefaultThreshold is the similarity threshold when the config sets none.
const DefaultThreshold = 0.9
