package budget

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/llmproc/llmproc/filter/redisconn"
)

// Defaults for RedisOptions.
const (
	DefaultRedisTimeout   = 50 * time.Millisecond
	DefaultReservationTTL = 15 * time.Minute
	DefaultKeyPrefix      = "llmproc:budget:"
)

// RedisOptions configures the shared store.
type RedisOptions struct {
	Addr     string // host:port
	Password string
	DB       int
	// KeyPrefix starts every key (DefaultKeyPrefix if empty).
	KeyPrefix string
	// Timeout bounds every call, dial included (DefaultRedisTimeout if 0).
	Timeout time.Duration
	// ReservationTTL is how long a reservation that is never settled or
	// released (its replica crashed) is kept (DefaultReservationTTL if 0).
	// Its amounts stay counted until their windows end: a lost request
	// counts at its worst case.
	ReservationTTL time.Duration
}

// Redis is a Store shared by all replicas. Every operation is one Lua
// script (EVALSHA), so checks and updates of all of a request's counters are
// atomic. Counters are hashes (fields p, t, r) that expire at their window
// end. All keys must live on one Redis node (no Redis Cluster).
type Redis struct {
	c       *redis.Client
	prefix  string
	timeout time.Duration
	ttl     time.Duration
}

var _ Store = (*Redis)(nil)

// NewRedis returns a store on o.Addr. It does not connect until the first
// call: a Redis that is down shows as errors returned within Timeout, which
// the caller turns into fail-open or fail-closed.
func NewRedis(o RedisOptions) *Redis {
	t := o.Timeout
	if t <= 0 {
		t = DefaultRedisTimeout
	}
	ttl := o.ReservationTTL
	if ttl <= 0 {
		ttl = DefaultReservationTTL
	}
	prefix := o.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	// One attempt per call (redisconn): a retry could apply a script twice.
	c := redisconn.New(redisconn.Options{Addr: o.Addr, Password: o.Password, DB: o.DB, Timeout: t, PoolSize: 16})
	return &Redis{c: c, prefix: prefix, timeout: t, ttl: ttl}
}

// Close closes the client's connections.
func (r *Redis) Close() error { return r.c.Close() }

// luaCommon holds helpers shared by the scripts. Amounts are handled as
// decimal strings and compared as strings, so they stay exact beyond Lua's
// 2^53 (Redis's HINCRBY is exact in 64 bits).
const luaCommon = `
local dims = {'p', 't', 'r'}
local function incr(k, f, s)
  if s ~= '0' and s ~= '-0' then redis.call('HINCRBY', k, f, s) end
end
local function neg(s)
  if string.sub(s, 1, 1) == '-' then return string.sub(s, 2) end
  return '-' .. s
end
local function le(a, b)
  if #a ~= #b then return #a < #b end
  return a <= b
end
local function clamp(k)
  for d = 1, 3 do
    local v = redis.call('HGET', k, dims[d])
    if v and string.sub(v, 1, 1) == '-' then redis.call('HSET', k, dims[d], '0') end
  end
end
`

// reserveScript: KEYS[1] reservation, KEYS[2..] counters; ARGV[1]
// reservation TTL in ms, then per counter: pico, tokens, requests, their
// three limits ("0" = none) and the window end in Unix ms. Returns 0, or the
// 1-based index of the first charge that does not fit.
var reserveScript = redis.NewScript(luaCommon + `
local n = #KEYS - 1
for i = 1, n do
  local k, b = KEYS[i + 1], 1 + (i - 1) * 7
  for d = 1, 3 do incr(k, dims[d], ARGV[b + d]) end
  redis.call('PEXPIREAT', k, ARGV[b + 7])
  for d = 1, 3 do
    local lim = ARGV[b + 3 + d]
    if lim ~= '0' and not le(redis.call('HGET', k, dims[d]) or '0', lim) then
      for j = 1, i do
        local bj = 1 + (j - 1) * 7
        for e = 1, 3 do incr(KEYS[j + 1], dims[e], neg(ARGV[bj + e])) end
      end
      return i
    end
  end
end
for i = 1, n do
  local k, b = KEYS[i + 1], 1 + (i - 1) * 7
  for d = 1, 3 do redis.call('HSET', KEYS[1], dims[d] .. k, ARGV[b + d]) end
end
if n > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 0
`)

// settleScript: KEYS[1] reservation, KEYS[2..] counters to charge; ARGV per
// counter: pico, tokens, requests. The reserved amounts are taken back from
// counters still alive, the actual ones added. Returns -1 for an unknown
// reservation, else 0.
var settleScript = redis.NewScript(luaCommon + `
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return -1 end
redis.call('DEL', KEYS[1])
local touched = {}
for i = 1, #h, 2 do
  local d, k = string.sub(h[i], 1, 1), string.sub(h[i], 2)
  if redis.call('EXISTS', k) == 1 then
    incr(k, d, neg(h[i + 1]))
    touched[k] = true
  end
end
for i = 2, #KEYS do
  local k, b = KEYS[i], (i - 2) * 3
  if redis.call('EXISTS', k) == 1 then
    for d = 1, 3 do incr(k, dims[d], ARGV[b + d]) end
    touched[k] = true
  end
end
for k in pairs(touched) do clamp(k) end
return 0
`)

// Reserve implements Store.
func (r *Redis) Reserve(ctx context.Context, charges []Charge, limits []Limit) (string, error) {
	id := newID()
	keys := make([]string, 0, 1+len(charges))
	keys = append(keys, r.prefix+"res:"+id)
	args := make([]any, 0, 1+7*len(charges))
	args = append(args, r.ttl.Milliseconds())
	for i, c := range charges {
		var l Limit
		if i < len(limits) {
			l = limits[i]
		}
		keys = append(keys, r.prefix+c.Key)
		args = append(args, amount(c.Pico), amount(c.Tokens), amount(c.Requests),
			amount(l.Pico), amount(l.Tokens), amount(l.Requests), c.ResetAt.UnixMilli())
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	n, err := reserveScript.Run(ctx, r.c, keys, args...).Int()
	if err != nil {
		return "", err
	}
	if n > 0 && n <= len(charges) {
		return "", exceeded(charges[n-1])
	}
	return id, nil
}

// Settle implements Store.
func (r *Redis) Settle(ctx context.Context, id string, actual []Charge) error {
	keys := make([]string, 0, 1+len(actual))
	keys = append(keys, r.prefix+"res:"+id)
	args := make([]any, 0, 3*len(actual))
	for _, c := range actual {
		keys = append(keys, r.prefix+c.Key)
		args = append(args, amount(c.Pico), amount(c.Tokens), amount(c.Requests))
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	n, err := settleScript.Run(ctx, r.c, keys, args...).Int()
	if err != nil {
		return err
	}
	if n < 0 {
		return ErrUnknownReservation
	}
	return nil
}

// Release implements Store.
func (r *Redis) Release(ctx context.Context, id string) error {
	err := r.Settle(ctx, id, nil)
	if errors.Is(err, ErrUnknownReservation) {
		return nil
	}
	return err
}

// amount is a non-negative amount as the scripts want it.
func amount(v int64) string {
	return strconv.FormatInt(max(v, 0), 10)
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Spent returns the cost counted under key in its current window.
func (r *Redis) Spent(ctx context.Context, key string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	v, err := r.c.HGet(ctx, r.prefix+key, "p").Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return math.MaxInt64, nil // beyond int64: report the most we can
	}
	return n, nil
}
