package semantic

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Shared is the semantic tier's Redis part, through which every replica
// answers from every replica's entries: a stream per bucket
// (<prefix>sem:<bucket hex>) of encoded records, trimmed to about
// maxBucket, expiring ttl after its last record; and the embeddings cache
// (<prefix>emb:<text hash hex>). A replica reads each bucket's stream from
// where it last stopped (Sync), so a lookup costs one XRANGE that usually
// returns nothing. Every call is bounded by the client's timeout.
type Shared struct {
	c         *redis.Client
	prefix    string
	ttl       time.Duration
	maxBucket int64
}

// NewShared uses c (see redisconn) with keys under prefix.
func NewShared(c *redis.Client, prefix string, ttl time.Duration, maxBucket int) *Shared {
	return &Shared{c: c, prefix: prefix, ttl: ttl, maxBucket: int64(max(maxBucket, 1))}
}

func (s *Shared) streamKey(b Bucket) string { return s.prefix + "sem:" + hex.EncodeToString(b[:]) }

// Publish appends r to bucket b's stream.
func (s *Shared) Publish(ctx context.Context, b Bucket, r Record) error {
	k := s.streamKey(b)
	p := s.c.TxPipeline()
	p.XAdd(ctx, &redis.XAddArgs{Stream: k, MaxLen: s.maxBucket, Approx: true, Values: []any{"r", r.encode()}})
	p.PExpire(ctx, k, s.ttl)
	if _, err := p.Exec(ctx); err != nil {
		return fmt.Errorf("semantic: redis publish: %w", err)
	}
	return nil
}

// syncBatch bounds the records one XRANGE returns.
const syncBatch = 512

// Sync reads the records bucket b's stream holds past ix's cursor into ix.
func (s *Shared) Sync(ctx context.Context, ix *Index, b Bucket, now time.Time) error {
	k := s.streamKey(b)
	cur := ix.cursor(b)
	for range 8 { // at most 8 batches a lookup; the rest next time
		start := "-"
		if cur != "" {
			start = "(" + cur
		}
		msgs, err := s.c.XRangeN(ctx, k, start, "+", syncBatch).Result()
		if errors.Is(err, redis.Nil) || (err == nil && len(msgs) == 0) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("semantic: redis sync: %w", err)
		}
		recs := make([]Record, 0, len(msgs))
		for _, m := range msgs {
			v, _ := m.Values["r"].(string)
			if r, err := decodeRecord([]byte(v)); err == nil {
				recs = append(recs, r)
			}
		}
		cur = msgs[len(msgs)-1].ID
		ix.addSynced(b, recs, cur, now)
		if len(msgs) < syncBatch {
			return nil
		}
	}
	return nil
}

func (s *Shared) vectorKey(h [32]byte) string { return s.prefix + "emb:" + hex.EncodeToString(h[:]) }

// vector returns the cached embedding for text hash h.
func (s *Shared) vector(ctx context.Context, h [32]byte) ([]float32, bool, error) {
	b, err := s.c.Get(ctx, s.vectorKey(h)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("semantic: redis get vector: %w", err)
	}
	v, ok := decodeVector(b)
	return v, ok, nil
}

// setVector caches the embedding for text hash h for the ttl.
func (s *Shared) setVector(ctx context.Context, h [32]byte, v []float32) error {
	if err := s.c.Set(ctx, s.vectorKey(h), encodeVector(v), s.ttl).Err(); err != nil {
		return fmt.Errorf("semantic: redis set vector: %w", err)
	}
	return nil
}
