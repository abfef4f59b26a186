package budget

import (
	"context"
	"errors"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/llmproc/llmproc/filter/redisconn"
)

// Defaults for RedisOptions.
const (
	DefaultRedisTimeout = 50 * time.Millisecond
	DefaultKeyPrefix    = "llmproc:budget:"
)

// Background retries of a call that failed client-side: Settle and Release
// are retried (they are idempotent), and a Reserve whose answer was lost is
// compensated by a Release, for up to retryFor.
const (
	retryFor = time.Minute
	// tombstoneTTL is how long a Release of an unknown id keeps a late
	// Reserve of it from taking effect.
	tombstoneTTL = 2 * time.Minute
	// maxRetries bounds the background retries running at once (Redis
	// down for long must not pile up goroutines).
	maxRetries = 1024
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
}

// Redis is a Store shared by all replicas. Every operation is one Lua
// script (EVALSHA) keyed by the reservation id, so checks and updates of
// all of a request's counters are atomic and a call that runs twice or late
// counts once. Counters are hashes (fields p, t, r) kept until their
// window's KeepUntil; reservations are hashes with a deadline in a sorted
// set that every Reserve sweeps (times are Redis's own clock). All keys
// must live on one Redis node (no Redis Cluster).
type Redis struct {
	c       *redis.Client
	prefix  string
	timeout time.Duration

	closed  chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	retries chan struct{} // one token per background retry running
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
	prefix := o.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	// One attempt per call (redisconn); retries are ours, of idempotent calls.
	c := redisconn.New(redisconn.Options{Addr: o.Addr, Password: o.Password, DB: o.DB, Timeout: t, PoolSize: 16})
	return &Redis{c: c, prefix: prefix, timeout: t, closed: make(chan struct{}), retries: make(chan struct{}, maxRetries)}
}

// Close stops background retries and closes the client's connections.
func (r *Redis) Close() error {
	r.once.Do(func() { close(r.closed) })
	r.wg.Wait()
	return r.c.Close()
}

// luaCommon holds helpers shared by the scripts. Amounts are handled as
// decimal strings and compared as strings, so they stay exact beyond Lua's
// 2^53; HINCRBY is exact in 64 bits and saturates here instead of failing.
// A reservation hash has one field per reserved amount (dimension letter +
// counter key) and the meta fields _a (the attempt holding it) and _s
// (h held, w awaiting a retry, x released before it was reserved).
const luaCommon = `
local dims = {'p', 't', 'r'}
local function incr(k, f, s)
  if s == '0' or s == '-0' then return false end
  local res = redis.pcall('HINCRBY', k, f, s)
  if type(res) == 'table' and res.err then
    redis.call('HSET', k, f, '9223372036854775807')
    return true
  end
  return false
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
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function undo(rk)
  local h = redis.call('HGETALL', rk)
  local touched = {}
  for i = 1, #h, 2 do
    local d, k = string.sub(h[i], 1, 1), string.sub(h[i], 2)
    if d ~= '_' and redis.call('EXISTS', k) == 1 then
      incr(k, d, neg(h[i + 1]))
      touched[k] = true
    end
  end
  for k in pairs(touched) do clamp(k) end
end
local function sweep(dl, prefix, now)
  local ids = redis.call('ZRANGEBYSCORE', dl, '-inf', now, 'LIMIT', 0, 16)
  for _, id in ipairs(ids) do
    local rk = prefix .. 'res:' .. id
    if redis.call('HGET', rk, '_s') == 'w' then undo(rk) end
    redis.call('DEL', rk)
    redis.call('ZREM', dl, id)
  end
end
`

// reserveScript: KEYS[1] reservation, KEYS[2] deadlines, KEYS[3..]
// counters; ARGV[1] TTL in ms, ARGV[2] id, ARGV[3] key prefix, ARGV[4] the
// reservation's own expiry (Unix ms), then per counter: pico, tokens,
// requests, their three limits ("0" = none) and KeepUntil in Unix ms.
// Returns 0, or the 1-based index of the first charge that does not fit.
var reserveScript = redis.NewScript(luaCommon + `
local now = now_ms()
sweep(KEYS[2], ARGV[3], now)
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local n, b0 = #KEYS - 2, 4
for i = 1, n do
  local k, b = KEYS[i + 2], b0 + (i - 1) * 7
  local sat = {}
  for d = 1, 3 do sat[d] = incr(k, dims[d], ARGV[b + d]) end
  redis.call('PEXPIREAT', k, ARGV[b + 7])
  for d = 1, 3 do
    local lim = ARGV[b + 3 + d]
    if lim ~= '0' and (sat[d] or not le(redis.call('HGET', k, dims[d]) or '0', lim)) then
      for j = 1, i do
        local bj = b0 + (j - 1) * 7
        for e = 1, 3 do incr(KEYS[j + 2], dims[e], neg(ARGV[bj + e])) end
        clamp(KEYS[j + 2])
      end
      return i
    end
  end
end
if n == 0 then return 0 end
for i = 1, n do
  local k, b = KEYS[i + 2], b0 + (i - 1) * 7
  for d = 1, 3 do redis.call('HSET', KEYS[1], dims[d] .. k, ARGV[b + d]) end
end
redis.call('HSET', KEYS[1], '_a', '1', '_s', 'h')
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), ARGV[2])
return 0
`)

// settleScript: KEYS[1] reservation, KEYS[2] deadlines, KEYS[3..] counters
// to charge; ARGV[1] id, then per counter: pico, tokens, requests. The
// reserved amounts are taken back from counters still kept, the actual ones
// added. Returns -1 for an unknown reservation, else 0.
var settleScript = redis.NewScript(luaCommon + `
local s = redis.call('HGET', KEYS[1], '_s')
if not s or s == 'x' then return -1 end
undo(KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
for i = 3, #KEYS do
  local k, b = KEYS[i], 1 + (i - 3) * 3
  if redis.call('EXISTS', k) == 1 then
    for d = 1, 3 do incr(k, dims[d], ARGV[b + d]) end
  end
end
return 0
`)

// releaseScript: KEYS[1] reservation, KEYS[2] deadlines; ARGV[1] id,
// ARGV[2] tombstone TTL in ms. An unknown id becomes a tombstone so that
// its Reserve, should it still run, adds nothing.
var releaseScript = redis.NewScript(luaCommon + `
local s = redis.call('HGET', KEYS[1], '_s')
if s == 'x' then return 0 end
if s then
  undo(KEYS[1])
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
redis.call('HSET', KEYS[1], '_s', 'x')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// markScript (Hold and Await): KEYS[1] reservation, KEYS[2] deadlines;
// ARGV[1] id, ARGV[2] attempt, ARGV[3] time to the deadline in ms, ARGV[4]
// the state (h or w). Returns -1 for an unknown reservation, 1 when a later
// attempt holds it, else 0.
var markScript = redis.NewScript(luaCommon + `
local s = redis.call('HGET', KEYS[1], '_s')
if not s or s == 'x' then return -1 end
if tonumber(ARGV[2]) < tonumber(redis.call('HGET', KEYS[1], '_a') or '1') then return 1 end
redis.call('HSET', KEYS[1], '_a', ARGV[2], '_s', ARGV[4])
redis.call('ZADD', KEYS[2], now_ms() + tonumber(ARGV[3]), ARGV[1])
return 0
`)

func (r *Redis) recKey(id string) string { return r.prefix + "res:" + id }
func (r *Redis) dlKey() string           { return r.prefix + "deadlines" }

// Reserve implements Store. When the answer is lost (a timeout: the script
// may still run in Redis), the reservation is released in the background
// so it can never be a phantom; the caller sees the error.
func (r *Redis) Reserve(ctx context.Context, id string, charges []Charge, limits []Limit, ttl time.Duration) error {
	keys := make([]string, 0, 2+len(charges))
	keys = append(keys, r.recKey(id), r.dlKey())
	args := make([]any, 0, 4+7*len(charges))
	var expire time.Time
	for _, c := range charges {
		if k := keepUntil(c); k.After(expire) {
			expire = k
		}
	}
	args = append(args, max(ttl.Milliseconds(), 1), id, r.prefix, expire.UnixMilli())
	for i, c := range charges {
		var l Limit
		if i < len(limits) {
			l = limits[i]
		}
		keys = append(keys, r.prefix+c.Key)
		args = append(args, amount(c.Pico), amount(c.Tokens), amount(c.Requests),
			amount(l.Pico), amount(l.Tokens), amount(l.Requests), keepUntil(c).UnixMilli())
	}
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	n, err := reserveScript.Run(cctx, r.c, keys, args...).Int()
	if err != nil {
		if lost(err) {
			r.retry(func(ctx context.Context) error { return r.release(ctx, id) })
		}
		return err
	}
	if n > 0 && n <= len(charges) {
		return exceeded(charges[n-1])
	}
	return nil
}

// Settle implements Store. A call that failed for want of Redis (its answer
// lost, or it never left: no connection could be made or taken from the
// pool) is retried in the background; it counts once whichever run takes
// effect. Not retrying one that never left would leave the reservation
// held, so the request would count at its worst case, not what it cost.
func (r *Redis) Settle(ctx context.Context, id string, actual []Charge) error {
	err := r.settle(ctx, id, actual)
	if retriable(err) {
		r.retry(func(ctx context.Context) error { return r.settle(ctx, id, actual) })
	}
	return err
}

func (r *Redis) settle(ctx context.Context, id string, actual []Charge) error {
	keys := make([]string, 0, 2+len(actual))
	keys = append(keys, r.recKey(id), r.dlKey())
	args := make([]any, 0, 1+3*len(actual))
	args = append(args, id)
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

// Release implements Store; retried in the background like Settle.
func (r *Redis) Release(ctx context.Context, id string) error {
	err := r.release(ctx, id)
	if retriable(err) {
		r.retry(func(ctx context.Context) error { return r.release(ctx, id) })
	}
	return err
}

func (r *Redis) release(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return releaseScript.Run(ctx, r.c, []string{r.recKey(id), r.dlKey()}, id, tombstoneTTL.Milliseconds()).Err()
}

// Hold implements Store.
func (r *Redis) Hold(ctx context.Context, id string, attempt int, ttl time.Duration) error {
	return r.mark(ctx, id, attempt, ttl, "h")
}

// Await implements Store.
func (r *Redis) Await(ctx context.Context, id string, attempt int, grace time.Duration) error {
	err := r.mark(ctx, id, attempt, grace, "w")
	if errors.Is(err, ErrUnknownReservation) {
		return nil
	}
	return err
}

func (r *Redis) mark(ctx context.Context, id string, attempt int, d time.Duration, state string) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	n, err := markScript.Run(ctx, r.c, []string{r.recKey(id), r.dlKey()}, id, attempt, max(d.Milliseconds(), 1), state).Int()
	if err != nil {
		return err
	}
	if n < 0 {
		return ErrUnknownReservation
	}
	return nil
}

// retry runs an idempotent call again in the background, with growing
// pauses, until it succeeds (or finds the reservation gone), retryFor has
// passed or the store is closed.
func (r *Redis) retry(call func(context.Context) error) {
	select {
	case r.retries <- struct{}{}:
	default:
		return // too many already: the reservation's deadline is the backstop
	}
	r.wg.Add(1)
	go func() {
		defer func() { <-r.retries; r.wg.Done() }()
		pause, deadline := r.timeout, time.Now().Add(retryFor)
		t := time.NewTimer(pause)
		defer t.Stop()
		for time.Now().Before(deadline) {
			select {
			case <-r.closed:
				return
			case <-t.C:
			}
			err := call(context.Background())
			if err == nil || errors.Is(err, ErrUnknownReservation) {
				return
			}
			pause = min(2*pause, time.Second)
			t.Reset(pause)
		}
	}()
}

// retriable reports an error of Settle or Release worth running again: any
// but Redis's own error reply or an unknown reservation. Both calls are
// idempotent, so a run that took effect after all is harmless.
func retriable(err error) bool {
	var re redis.Error
	return err != nil && !errors.As(err, &re) && !errors.Is(err, ErrUnknownReservation)
}

// lost reports an error after which the call may have run in Redis or may
// still run there (a timeout, a broken connection): anything but Redis's
// own error reply, an unknown reservation, or a call that never left (no
// connection could be made or taken from the pool).
func lost(err error) bool {
	var re redis.Error
	var op *net.OpError
	switch {
	case err == nil, errors.As(err, &re), errors.Is(err, ErrUnknownReservation),
		errors.As(err, &op) && op.Op == "dial", errors.Is(err, redis.ErrPoolTimeout):
		return false
	}
	return true
}

// amount is a non-negative amount as the scripts want it.
func amount(v int64) string {
	return strconv.FormatInt(max(v, 0), 10)
}

// spentScript: KEYS[1] counter, KEYS[2] deadlines; ARGV[1] key prefix.
// Ends the reservations whose deadline has passed, as Reserve does, then
// returns the counter's pico-dollars (false when it does not exist).
var spentScript = redis.NewScript(luaCommon + `
sweep(KEYS[2], ARGV[1], now_ms())
return redis.call('HGET', KEYS[1], 'p')
`)

// Spent returns the cost counted under key, after ending the reservations
// whose deadline has passed (a grace with no retry gives its amounts back
// then, not at the next Reserve).
func (r *Redis) Spent(ctx context.Context, key string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	v, err := spentScript.Run(ctx, r.c, []string{r.prefix + key, r.dlKey()}, r.prefix).Text()
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

// EvictingPolicy reports Redis's maxmemory-policy when it may evict keys
// (anything but noeviction), which would silently reset budget counters.
// It returns "" when the policy keeps keys, and an error when the policy
// cannot be read (CONFIG disabled, Redis down).
func (r *Redis) EvictingPolicy(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, max(r.timeout, time.Second))
	defer cancel()
	m, err := r.c.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil {
		return "", err
	}
	p, ok := m["maxmemory-policy"]
	if !ok {
		return "", errors.New("maxmemory-policy not reported")
	}
	if p == "noeviction" {
		return "", nil
	}
	return p, nil
}

// sweepScript: KEYS[1] deadlines; ARGV[1] key prefix. Ends the
// reservations whose deadline has passed, as Reserve does.
var sweepScript = redis.NewScript(luaCommon + `
sweep(KEYS[1], ARGV[1], now_ms())
return 0
`)

// Listing bounds: keys asked per SCAN call, and the most counters one
// listing reads (a listing past it stops and reports ErrListTruncated).
const (
	scanCount   = 1000
	maxCounters = 100_000
)

// ErrListTruncated is returned by Counters when more counters matched than
// one listing reads; those read were passed on.
var ErrListTruncated = errors.New("budget: too many counters to list")

// Counters calls each with every counter whose key starts with prefix and
// ends with suffix (both without the store's KeyPrefix), after ending the
// reservations whose deadline has passed. It walks the keyspace with SCAN
// (MATCH on the pattern; COUNT 1000 a call, each within the store's
// timeout) and reads each batch's amounts in one pipeline, so its cost
// grows with the whole Redis keyspace, not only the budget's counters: the
// caller bounds it with ctx. A counter that ends during the walk may be
// missed; none is passed twice (SCAN may return a key twice; it is
// deduplicated).
func (r *Redis) Counters(ctx context.Context, prefix, suffix string, each func(key string, pico int64)) error {
	call := func(f func(ctx context.Context) error) error {
		cctx, cancel := context.WithTimeout(ctx, r.timeout)
		defer cancel()
		return f(cctx)
	}
	if err := call(func(ctx context.Context) error {
		return sweepScript.Run(ctx, r.c, []string{r.dlKey()}, r.prefix).Err()
	}); err != nil {
		return err
	}
	match := globEscape(r.prefix+prefix) + "*" + globEscape(suffix)
	seen := map[string]bool{}
	var cursor uint64
	for {
		var keys []string
		if err := call(func(ctx context.Context) error {
			var err error
			keys, cursor, err = r.c.Scan(ctx, cursor, match, scanCount).Result()
			return err
		}); err != nil {
			return err
		}
		fresh := keys[:0]
		for _, k := range keys {
			if !seen[k] && len(k) >= len(r.prefix)+len(prefix)+len(suffix) {
				seen[k] = true
				fresh = append(fresh, k)
			}
		}
		if len(fresh) > 0 {
			var cmds []*redis.StringCmd
			if err := call(func(ctx context.Context) error {
				_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
					cmds = make([]*redis.StringCmd, len(fresh))
					for i, k := range fresh {
						cmds[i] = p.HGet(ctx, k, "p")
					}
					return nil
				})
				if errors.Is(err, redis.Nil) {
					err = nil // a counter without spend, or gone since the SCAN
				}
				return err
			}); err != nil {
				return err
			}
			for i, c := range cmds {
				v, err := c.Result()
				if err != nil {
					continue
				}
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					n = math.MaxInt64 // beyond int64: report the most we can
				}
				each(fresh[i][len(r.prefix):], max(n, 0))
			}
		}
		if cursor == 0 {
			return nil
		}
		if len(seen) >= maxCounters {
			return ErrListTruncated
		}
	}
}

// globEscape quotes the characters Redis's glob patterns give a meaning.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		switch c {
		case '*', '?', '[', ']', '\\', '^', '-':
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}
