package cache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/allegro/bigcache/v3"
)

// Local is the in-process tier: bigcache, bounded by memory, with a TTL.
// Each stored value carries its own deadline, checked on Get against the
// Local's clock, so an entry is never served past the ttl it was Set with;
// bigcache's own life window (the configured TTL, one-second resolution)
// only reclaims the memory. Safe for concurrent use.
type Local struct {
	bc        *bigcache.BigCache
	evictions atomic.Int64
	now       func() time.Time
}

var _ Store = (*Local)(nil)

// initialEntryBytes is the entry size bigcache sizes an empty shard for.
const initialEntryBytes = 256

// localHeader is the deadline (Unix nanoseconds) in front of each value.
const localHeader = 8

// NewLocal returns a Local holding at most about memoryMB megabytes of
// entries (bigcache's HardMaxCacheSize; its key index comes on top), whose
// entries live at most ttl. Past the bound the oldest entries make room.
func NewLocal(memoryMB int, ttl time.Duration) (*Local, error) {
	return NewLocalFor(memoryMB, ttl, 0)
}

// NewLocalFor is NewLocal for entries of up to maxEntryBytes: it uses fewer
// shards so that every shard (a bigcache shard holds no entry larger than
// itself) has room for two such entries; 0 is NewLocal's sizing.
func NewLocalFor(memoryMB int, ttl time.Duration, maxEntryBytes int) (*Local, error) {
	if memoryMB <= 0 {
		return nil, fmt.Errorf("cache: memory_mb must be positive, got %d", memoryMB)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("cache: ttl must be positive, got %s", ttl)
	}
	l := &Local{now: time.Now}
	cfg := bigcache.Config{
		Shards:      shardsFor(memoryMB, maxEntryBytes),
		LifeWindow:  ttl,
		CleanWindow: max(ttl/4, time.Second),
		// bigcache preallocates max(MaxEntriesInWindow/Shards, 10) ×
		// MaxEntrySize bytes per shard and grows a shard by doubling up to
		// HardMaxCacheSize; neither bounds what an entry may be. Small
		// values make an empty cache cost about 1 KB a shard (256 shards
		// at 4 KB preallocated 10 MB and inflated every GC's goal by
		// that), and the memory is taken as entries arrive.
		MaxEntriesInWindow: 0,
		MaxEntrySize:       initialEntryBytes,
		HardMaxCacheSize:   memoryMB,
		Hasher:             keyHasher{},
		OnRemoveWithReason: func(_ string, _ []byte, r bigcache.RemoveReason) {
			if r == bigcache.NoSpace {
				l.evictions.Add(1)
			}
		},
	}
	cfg = cfg.OnRemoveFilterSet(bigcache.NoSpace)
	bc, err := bigcache.New(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("cache: local tier: %w", err)
	}
	l.bc = bc
	return l, nil
}

// shardsFor picks a power-of-two shard count that leaves every shard at
// least 1 MB (bigcache splits the memory bound evenly and cannot hold an
// entry larger than a shard), at most 256.
func shardsFor(memoryMB, maxEntryBytes int) int {
	n := min(memoryMB, 256)
	if perShard := 2 * ((maxEntryBytes + localHeader + entryHeader + 1 + maxIDLen + 1<<20 - 1) >> 20); maxEntryBytes > 0 {
		n = max(min(n, memoryMB/perShard), 1)
	}
	return 1 << (bits.Len(uint(n)) - 1)
}

// keyHasher maps a Key (already a SHA-256) to bigcache's 64-bit hash by
// taking its first 8 bytes; bigcache still compares whole keys on Get.
type keyHasher struct{}

func (keyHasher) Sum64(s string) uint64 {
	if len(s) < 8 {
		var h uint64
		for i := 0; i < len(s); i++ {
			h = h<<8 | uint64(s[i])
		}
		return h
	}
	return uint64(s[0])<<56 | uint64(s[1])<<48 | uint64(s[2])<<40 | uint64(s[3])<<32 |
		uint64(s[4])<<24 | uint64(s[5])<<16 | uint64(s[6])<<8 | uint64(s[7])
}

// Get returns the entry stored under k if it has not expired.
func (l *Local) Get(_ context.Context, k Key) (Entry, bool, error) {
	v, err := l.bc.Get(string(k[:]))
	if errors.Is(err, bigcache.ErrEntryNotFound) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, fmt.Errorf("cache: local get: %w", err)
	}
	if len(v) < localHeader || l.now().UnixNano() >= int64(binary.BigEndian.Uint64(v)) {
		return Entry{}, false, nil
	}
	e, err := Decode(v[localHeader:])
	if err != nil {
		return Entry{}, false, fmt.Errorf("cache: local get: %w", err)
	}
	return e, true, nil
}

// Set stores e under k until ttl from now (bounded by the Local's TTL).
func (l *Local) Set(_ context.Context, k Key, e Entry, ttl time.Duration) error {
	if ttl <= 0 {
		return nil
	}
	v := make([]byte, 0, localHeader+entryHeader+1+len(e.RequestID)+len(e.Completion))
	v = binary.BigEndian.AppendUint64(v, uint64(l.now().Add(ttl).UnixNano()))
	v = e.appendTo(v)
	if err := l.bc.Set(string(k[:]), v); err != nil {
		return fmt.Errorf("cache: local set: %w", err)
	}
	return nil
}

// Stats returns bigcache's hit, miss and collision counters.
func (l *Local) Stats() bigcache.Stats { return l.bc.Stats() }

// Len is the number of entries held (expired ones included until reclaimed).
func (l *Local) Len() int { return l.bc.Len() }

// Bytes is the memory bigcache has allocated for entries.
func (l *Local) Bytes() int64 { return int64(l.bc.Capacity()) }

// Evictions counts entries removed to make room for new ones.
func (l *Local) Evictions() int64 { return l.evictions.Load() }

// Close stops bigcache's cleanup goroutine.
func (l *Local) Close() error { return l.bc.Close() }

// Figures returns entries, allocated bytes and evictions so far, in the form
// metrics.Metrics.CacheStats takes.
func (l *Local) Figures() (entries, bytes, evictions int64) {
	return int64(l.Len()), l.Bytes(), l.Evictions()
}

// Delete removes k, reporting whether an unexpired entry was there.
func (l *Local) Delete(ctx context.Context, k Key) (bool, error) {
	_, ok, err := l.Get(ctx, k)
	if err != nil {
		return false, err
	}
	if derr := l.bc.Delete(string(k[:])); derr != nil && !errors.Is(derr, bigcache.ErrEntryNotFound) {
		return false, fmt.Errorf("cache: local delete: %w", derr)
	}
	return ok, nil
}
