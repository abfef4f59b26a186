package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix starts the Redis keys of the key store.
const DefaultRedisPrefix = "llmproc:"

// RedisStore keeps client keys in Redis, as the keys file does: only each
// key's id and SHA-256, never the key. The hash <prefix>keys maps an id to
// the Key's JSON; <prefix>keys:version is incremented in the same
// transaction as every write, so a replica re-reads the hash only when it
// changed (Refresher).
type RedisStore struct {
	c      *redis.Client
	prefix string
}

// NewRedisStore uses c with the prefix ("" means DefaultRedisPrefix).
func NewRedisStore(c *redis.Client, prefix string) *RedisStore {
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	return &RedisStore{c: c, prefix: prefix}
}

func (s *RedisStore) hashKey() string    { return s.prefix + "keys" }
func (s *RedisStore) versionKey() string { return s.prefix + "keys:version" }

// Create adds a new key for the template's tenant, team, user, models and
// expiry, and returns the key: the only time it exists outside the client.
// rnd is crypto/rand.Reader when nil.
func (s *RedisStore) Create(ctx context.Context, tmpl Key, now time.Time, rnd io.Reader) (string, Key, error) {
	if tmpl.Tenant == "" {
		return "", Key{}, errors.New("tenant: is empty")
	}
	key, k, err := newKey(tmpl, now, rnd)
	if err != nil {
		return "", Key{}, err
	}
	data, err := json.Marshal(k)
	if err != nil {
		return "", Key{}, err
	}
	// HSETNX: an id already taken (a 48-bit collision) is an error, not an
	// overwrite of somebody else's key.
	var added *redis.BoolCmd
	_, err = s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		added = p.HSetNX(ctx, s.hashKey(), k.ID, data)
		p.Incr(ctx, s.versionKey())
		return nil
	})
	if err != nil {
		return "", Key{}, fmt.Errorf("redis: %w", err)
	}
	if !added.Val() {
		return "", Key{}, fmt.Errorf("redis: key id %q is taken; create again", k.ID)
	}
	return key, k, nil
}

// List returns the stored keys, ordered by creation time then id. An entry
// that does not parse is reported, not skipped silently.
func (s *RedisStore) List(ctx context.Context) ([]Key, error) {
	m, err := s.c.HGetAll(ctx, s.hashKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	keys, errs := decodeAll(m)
	return keys, errors.Join(errs...)
}

// Revoke marks the key with this id revoked as of now (an earlier
// revocation stands).
func (s *RedisStore) Revoke(ctx context.Context, id string, now time.Time) error {
	_, err := s.modify(ctx, id, func(k *Key) error { revoke(k, now); return nil })
	return err
}

// Update changes the access lists and limits of the key with this id (see
// the file's Update); every replica applies them within identity.refresh.
func (s *RedisStore) Update(ctx context.Context, id string, f func(*Key)) (Key, error) {
	return s.modify(ctx, id, func(k *Key) error { return update(k, f) })
}

// modify rewrites one entry. The write is optimistic: a concurrent change
// to the hash makes it try again, so no write is lost.
func (s *RedisStore) modify(ctx context.Context, id string, f func(*Key) error) (Key, error) {
	var out Key
	for range 10 {
		err := s.c.Watch(ctx, func(tx *redis.Tx) error {
			raw, err := tx.HGet(ctx, s.hashKey(), id).Result()
			if errors.Is(err, redis.Nil) {
				return fmt.Errorf("redis: no key with id %q", id)
			}
			if err != nil {
				return fmt.Errorf("redis: %w", err)
			}
			var k Key
			if err := json.Unmarshal([]byte(raw), &k); err != nil {
				return fmt.Errorf("redis: key %q: %w", id, err)
			}
			if err := f(&k); err != nil {
				return err
			}
			data, err := json.Marshal(k)
			if err != nil {
				return err
			}
			out = k
			if string(data) == raw {
				return nil // unchanged: no write, no version bump
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HSet(ctx, s.hashKey(), id, data)
				p.Incr(ctx, s.versionKey())
				return nil
			})
			return err
		}, s.hashKey())
		if !errors.Is(err, redis.TxFailedErr) {
			return out, err
		}
	}
	return Key{}, fmt.Errorf("redis: key %q kept changing; try again", id)
}

// version is the store's write counter (0 before the first write).
func (s *RedisStore) version(ctx context.Context) (int64, error) {
	v, err := s.c.Get(ctx, s.versionKey()).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return v, err
}

func decodeAll(m map[string]string) ([]Key, []error) {
	keys := make([]Key, 0, len(m))
	var errs []error
	for id, raw := range m {
		var k Key
		if err := json.Unmarshal([]byte(raw), &k); err != nil {
			errs = append(errs, fmt.Errorf("key %q: %w", id, err))
			continue
		}
		if k.ID != id {
			errs = append(errs, fmt.Errorf("key %q: holds id %q", id, k.ID))
			continue
		}
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if !keys[i].Created.Equal(keys[j].Created) {
			return keys[i].Created.Before(keys[j].Created)
		}
		return keys[i].ID < keys[j].ID
	})
	return keys, errs
}

// Refresher holds a replica's copy of a RedisStore's keys, re-read every
// refresh interval when the store's version changed: a key created or
// revoked anywhere takes effect here within one interval (plus one Redis
// round trip). Between refreshes requests never touch Redis.
type Refresher struct {
	store   *RedisStore
	log     *slog.Logger
	cur     atomic.Pointer[Keys]
	version int64
	failing bool
}

// NewRefresher returns a Refresher with no keys until the first Refresh.
func NewRefresher(store *RedisStore, log *slog.Logger) *Refresher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Refresher{store: store, log: log}
}

// Keys is the current copy; nil until a Refresh has succeeded.
func (r *Refresher) Keys() *Keys { return r.cur.Load() }

// Refresh reads the store's version and, when it differs from the copy's
// (or there is no copy yet), the keys. The version is read first, so the
// keys read are at least that new; a write racing with the read makes the
// next Refresh read again. On an error the previous copy stays. Refresh is
// not safe for concurrent use (Run calls it from one goroutine).
func (r *Refresher) Refresh(ctx context.Context) error {
	v, err := r.store.version(ctx)
	if err != nil {
		return r.failed(fmt.Errorf("redis key store: %w", err))
	}
	if r.cur.Load() != nil && v == r.version {
		return r.failed(nil)
	}
	m, err := r.store.c.HGetAll(ctx, r.store.hashKey()).Result()
	if err != nil {
		return r.failed(fmt.Errorf("redis key store: %w", err))
	}
	list, errs := decodeAll(m)
	k, berrs := build(list)
	if err := errors.Join(append(errs, berrs...)...); err != nil {
		// One bad entry must not lock every other key out: it is left out.
		r.log.Error("redis key store: entries left out", "err", err)
	}
	r.cur.Store(k)
	r.version = v
	return r.failed(nil)
}

// failed logs a change between working and failing once, not every tick.
func (r *Refresher) failed(err error) error {
	switch {
	case err != nil && !r.failing:
		r.log.Error("redis key store unreachable; keeping the keys last read", "err", err)
	case err == nil && r.failing:
		r.log.Info("redis key store reachable again")
	}
	r.failing = err != nil
	return err
}

// Run refreshes every interval until ctx ends. The first Refresh is
// immediate.
func (r *Refresher) Run(ctx context.Context, every time.Duration) {
	_ = r.Refresh(ctx)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = r.Refresh(ctx)
		}
	}
}
