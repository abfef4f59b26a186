package cache

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/llmproc/llmproc/filter/redisconn"
)

// DefaultRedisTimeout bounds each Redis call when RedisOptions.Timeout is 0.
const DefaultRedisTimeout = 50 * time.Millisecond

// RedisOptions configures the shared tier.
type RedisOptions struct {
	Addr     string // host:port
	Password string
	// KeyPrefix starts every key; deployments sharing one Redis use
	// different prefixes to keep their entries apart.
	KeyPrefix string
	DB        int
	// Timeout bounds every call, dial included (DefaultRedisTimeout if 0).
	Timeout time.Duration
}

// Redis is the cache tier shared by all replicas. Every call returns within
// its Timeout: a slow or unreachable Redis yields an error, which the caller
// treats as a miss, never a request stalled on the cache.
type Redis struct {
	c       *redis.Client
	prefix  string
	timeout time.Duration
}

var _ Store = (*Redis)(nil)

// NewRedis returns a client for o.Addr. It does not connect until the first
// call, so a Redis that is down at start-up only shows as errors (misses).
func NewRedis(o RedisOptions) *Redis {
	t := o.Timeout
	if t <= 0 {
		t = DefaultRedisTimeout
	}
	c := redisconn.New(redisconn.Options{Addr: o.Addr, Password: o.Password, DB: o.DB, Timeout: t, PoolSize: 8})
	return &Redis{c: c, prefix: o.KeyPrefix, timeout: t}
}

// Get returns the entry stored under k. A missing key is a miss (ok=false,
// nil error); anything else that goes wrong, a timeout included, is an error.
func (r *Redis) Get(ctx context.Context, k Key) (Entry, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	v, err := r.c.Get(ctx, r.key(k)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, fmt.Errorf("redis get: %w", err)
	}
	e, err := Decode(v)
	if err != nil {
		return Entry{}, false, fmt.Errorf("redis get: %w", err)
	}
	return e, true, nil
}

// Set stores e under k; Redis expires it after ttl, which must be positive
// (an entry that never expires is a configuration mistake, not a default).
func (r *Redis) Set(ctx context.Context, k Key, e Entry, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("redis set: ttl %v is not positive", ttl)
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	// go-redis sends EX for whole seconds and PX otherwise.
	if err := r.c.Set(ctx, r.key(k), e.Encode(), ttl).Err(); err != nil {
		return fmt.Errorf("redis set: %w", err)
	}
	return nil
}

// Close closes the connection pool.
func (r *Redis) Close() error {
	return r.c.Close()
}

// key is KeyPrefix followed by k in lowercase hex.
func (r *Redis) key(k Key) string {
	b := make([]byte, len(r.prefix)+hex.EncodedLen(len(k)))
	n := copy(b, r.prefix)
	hex.Encode(b[n:], k[:])
	return string(b)
}

// Delete removes k, reporting whether it was there.
func (r *Redis) Delete(ctx context.Context, k Key) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	n, err := r.c.Del(ctx, r.key(k)).Result()
	if err != nil {
		return false, fmt.Errorf("redis del: %w", err)
	}
	return n > 0, nil
}
