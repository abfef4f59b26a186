package feedback

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the tier shared by all replicas. Every call returns within the
// client's timeout (redisconn): a slow or unreachable Redis yields an error,
// which the Store treats as "not there".
type Redis struct {
	c      *redis.Client
	prefix string
}

// NewRedis uses c (see redisconn.New) with every key starting with prefix.
func NewRedis(c *redis.Client, prefix string) *Redis {
	return &Redis{c: c, prefix: prefix}
}

// putNewer sets KEYS[1] to ARGV[1] for ARGV[3] milliseconds unless it holds
// a record of a later attempt than ARGV[2] (a record's JSON starts with
// {"attempts":N, see Record).
var putNewer = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local n = tonumber(string.match(cur, '^{"attempts":(%d+)'))
  if n and n > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
`)

// Get implements Tier.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool, error) {
	v, err := r.c.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("redis get: %w", err)
	}
	return v, true, nil
}

// Put implements Tier.
func (r *Redis) Put(ctx context.Context, key string, v []byte, attempt int, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("redis put: ttl %v is not positive", ttl)
	}
	err := putNewer.Run(ctx, r.c, []string{r.prefix + key}, v, strconv.Itoa(attempt), strconv.FormatInt(ttl.Milliseconds(), 10)).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redis put: %w", err)
	}
	return nil
}

// Claim implements Tier.
func (r *Redis) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ok, err := r.c.SetNX(ctx, r.prefix+key, "1", ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redis claim: %w", err)
	}
	return ok, nil
}

// Close closes the connection pool.
func (r *Redis) Close() error { return r.c.Close() }
