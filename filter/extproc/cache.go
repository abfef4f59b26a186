package extproc

import (
	"context"
	"encoding/hex"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/cache"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/metrics"
	"github.com/llmproc/llmproc/filter/semantic"
	"github.com/llmproc/llmproc/filter/translate"
	"github.com/llmproc/llmproc/filter/usage"
)

// HeaderCache tells clients hit, miss or bypass. The router hands the result
// and, when the answer may be stored, the key to every upstream attempt in
// the metadata (KeyCache, KeyCacheKey), so no attempt recomputes the key.
//
// x-llmproc-cache is hit (the exact key), hit-normalized (the normalized
// tier), hit-semantic, miss or bypass; a hit also carries
// HeaderCacheRequestID, the id of the request whose answer was stored.
const HeaderCache = "x-llmproc-cache"

// CacheTiers are the response cache's stores; Shared (Redis) may be nil.
type CacheTiers struct {
	Local, Shared cache.Store
	TTL           time.Duration
	MaxEntryBytes int
	// Semantic is the semantic tier's Redis part (its buckets and the
	// embeddings cache), nil when there is no shared tier.
	Semantic *semantic.Shared
}

// responseCache reads through the local tier to the shared one and writes
// both. A shared tier that fails is a miss, counted and logged at most every
// ten seconds; it never fails a request.
type responseCache struct {
	CacheTiers
	metrics *metrics.Metrics
	log     *slog.Logger
	now     func() time.Time
	lastLog atomic.Int64 // unix nanoseconds of the last shared-tier error log
}

func (c *responseCache) get(ctx context.Context, k cache.Key) (cache.Entry, bool) {
	if e, ok, err := c.Local.Get(ctx, k); err == nil && ok {
		return e, true
	}
	if c.Shared == nil {
		return cache.Entry{}, false
	}
	e, ok, err := c.Shared.Get(ctx, k)
	if err != nil {
		c.sharedFailed("get", err)
		return cache.Entry{}, false
	}
	if ok {
		if ttl := c.TTL - c.now().Sub(e.Stored); ttl > 0 {
			_ = c.Local.Set(ctx, k, e, ttl)
		}
	}
	return e, ok
}

// set stores an entry in the background: the client's last chunk does not
// wait for Redis. then, when not nil, runs in the background once the entry
// is in every tier (not at all if the shared tier failed): the semantic
// tier adds its record then, so that no replica finds a record whose entry
// it cannot read.
func (c *responseCache) set(k cache.Key, e cache.Entry, then func()) {
	if err := c.Local.Set(context.Background(), k, e, c.TTL); err == nil && c.metrics != nil {
		c.metrics.CacheStore("local")
	}
	if c.Shared == nil {
		if then != nil {
			go then()
		}
		return
	}
	go func() {
		if err := c.Shared.Set(context.Background(), k, e, c.TTL); err != nil {
			c.sharedFailed("set", err)
			return
		}
		if c.metrics != nil {
			c.metrics.CacheStore("redis")
		}
		if then != nil {
			then()
		}
	}()
}

func (c *responseCache) sharedFailed(op string, err error) {
	if c.metrics != nil {
		c.metrics.CacheError("redis")
	}
	now := c.now().UnixNano()
	if last := c.lastLog.Load(); now-last > int64(10*time.Second) && c.lastLog.CompareAndSwap(last, now) {
		c.log.Warn("shared cache tier failed; requests go on uncached", "op", op, "err", err)
	}
}

// fresh reports whether an entry may be served: within the TTL and the
// client's max-age.
func (c *responseCache) fresh(e cache.Entry, maxAge time.Duration) bool {
	age := c.now().Sub(e.Stored)
	return age < c.TTL && (maxAge <= 0 || age <= maxAge)
}

// lookup runs the router's part: the policy, the keys, the lookup. It
// returns an ImmediateResponse and its result (hit, hit-normalized) on a hit,
// else the cache result for the client (miss, bypass) and the keys to store
// the answer under ("" when it may not be). A hit never reserves budget: the
// router reserves only after a miss.
func (r *router) lookup(d config.Decision, model string, req chatRequest, body []byte) (hit *extprocv3.ProcessingResponse, result, storeKey string) {
	c := r.s.cache
	if c == nil {
		return nil, "", ""
	}
	mode := d.Cache
	if isGeminiEmbed(r.geminiMethod) {
		// Passed natively; the assembler and replay rebuild only OpenAI's
		// answers.
		return nil, "bypass", ""
	}
	switch r.endpoint { // see endpoints.go
	case translate.EndpointCompletions:
		return nil, "bypass", ""
	case translate.EndpointEmbeddings:
		if mode == cache.ModeDeterministic { // embeddings always are
			mode = cache.ModeAll
		}
	}
	var pol cache.Policy
	if r.client == clientGemini { // its sampling parameters are in generationConfig
		pol = cache.Decide(mode, geminiSampling(body), r.cacheControl)
	} else { // checkBody read the members
		pol = cache.DecideMembers(mode, req.temperature, req.seed, r.cacheControl)
	}
	result = "bypass"
	if pol.Lookup || pol.Store {
		in := cache.KeyInput{Tenant: r.tenant, Group: r.rt.CacheGroup(r.tenant), ClientSchema: r.clientSchema(), Endpoint: r.path,
			Pool: d.Pool.Name, Model: model + "\x00" + d.Target, Body: body}
		doc, _ := cache.Parse(body) // one parse for every tier's key and the semantic turn
		if doc != nil && r.endpoint == translate.EndpointResponses && doc.MutableProviderState() {
			// A conversation, an unversioned stored prompt or a background
			// run: the same body may want another answer tomorrow.
			doc.Release()
			doc = nil
		}
		if doc != nil {
			defer doc.Release()
			keys := r.cacheKeys(d.CacheMatch, in, doc)
			if pol.Lookup {
				for _, k := range keys { // the exact key first
					if e, ok := c.get(r.ctx, k.key); ok && c.fresh(e, pol.MaxAge) {
						r.recordHit(d, model)
						var extra []*corev3.HeaderValueOption
						if e.RequestID != "" {
							extra = append(extra, header(HeaderCacheRequestID, e.RequestID))
						}
						tier := k.tier
						if tier == config.MatchExact {
							tier = ""
						}
						return r.hit(d, model, req, e, tier, extra...), hitResult(k.tier), ""
					}
				}
				result = "miss"
			}
			hit, bucket := r.semanticLookup(d, model, req, in, doc, pol)
			if hit != nil {
				return hit, hitResult(config.MatchSemantic), ""
			}
			r.semBucket = bucket
			if pol.Store {
				storeKey = keys.encode()
			}
		}
	}
	if r.s.metrics != nil {
		r.s.metrics.CacheResult(result)
	}
	return nil, result, storeKey
}

// hitResult is x-llmproc-cache for a hit by tier: hit, hit-normalized, ….
func hitResult(tier string) string {
	if tier == config.MatchExact {
		return "hit"
	}
	return "hit-" + tier
}

// tierKey is one key a request is looked up and stored under.
type tierKey struct {
	tier string // config.MatchExact, MatchNormalized, …
	key  cache.Key
}

type tierKeys []tierKey

// encode writes the keys for the upstream role (KeyCacheKey): hex, joined
// by ",", the exact key first.
func (ks tierKeys) encode() string {
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = hex.EncodeToString(k.key[:])
	}
	return strings.Join(parts, ",")
}

// decodeKeys reads KeyCacheKey: one key (older routers) or several.
func decodeKeys(s string) []cache.Key {
	var out []cache.Key
	for _, p := range strings.Split(s, ",") {
		var k cache.Key
		if n, err := hex.Decode(k[:], []byte(p)); err == nil && n == len(k) {
			out = append(out, k)
		}
	}
	return out
}

// cacheKeys returns the keys a request is looked up under, in order, and
// stored under: the exact key, then the key of each fuzzier tier the route's
// cache.match turns on; d is in.Body parsed (a body that does not parse has
// no key: the validator has already refused such a body).
func (r *router) cacheKeys(match string, in cache.KeyInput, d *cache.Doc) tierKeys {
	keys := tierKeys{{config.MatchExact, d.Key(in)}}
	switch match {
	case config.MatchNormalized:
		if k, ok := d.NormalizedKey(in, r.cacheAPI()); ok {
			keys = append(keys, tierKey{config.MatchNormalized, k})
		}
	}
	return keys
}

// cacheAPI names the client API for cache.NormalizedKeyOf ("" for none:
// embeddings are looked up exactly, their input is the answer).
func (r *router) cacheAPI() string {
	switch {
	case r.endpoint == translate.EndpointEmbeddings:
		return ""
	case r.endpoint == translate.EndpointResponses:
		return cache.APIResponses
	case r.client == clientAnthropic:
		return cache.APIMessages
	case r.client == clientGemini:
		return cache.APIGemini
	}
	return cache.APIChat
}

// hit answers from the cache: JSON or a well-formed SSE stream from the same
// entry, in the client's API, with the original usage and zero cost. tier
// is "" for the exact tier, else its name: x-llmproc-cache and the metric
// say hit-<tier>, and extra headers go with the answer.
func (r *router) hit(d config.Decision, model string, req chatRequest, e cache.Entry, tier string, extra ...*corev3.HeaderValueOption) *extprocv3.ProcessingResponse {
	result := "hit"
	if tier != "" {
		result += "-" + tier
	}
	stream := req.stream.Type == gjson.True
	var out []byte
	ctype := "application/json"
	readUsage := usage.FromOpenAI
	switch {
	case r.endpoint == translate.EndpointResponses: // the stored response object
		out, readUsage = cache.ReplayJSON(e), usage.FromResponses
		if stream {
			out, ctype = cache.ReplayResponsesSSE(e), "text/event-stream"
		}
	case stream:
		out, ctype = cache.ReplaySSE(e, req.usageRequested() || r.client != clientOpenAI), "text/event-stream"
	default:
		out = cache.ReplayJSON(e)
	}
	served := gjson.GetBytes(e.Completion, "model").String()
	var conv translate.Body
	switch r.client {
	case clientAnthropic:
		conv = translate.AnthropicResponse(stream, 200, served)
	case clientGemini:
		framing := translate.GeminiSSE
		switch {
		case !stream:
			framing = translate.GeminiJSON
		case r.geminiArray:
			framing, ctype = translate.GeminiArray, "application/json"
		}
		conv = translate.GeminiResponse(framing, 200, served)
	}
	if conv != nil {
		if o, pass := conv.Chunk(out, true); !pass {
			out = o
		}
	}
	if m := r.s.metrics; m != nil {
		m.CacheResult(result)
		if u, ok := readUsage(gjson.GetBytes(e.Completion, "usage")); ok {
			if p, ok := r.rt.PriceFor(served, model); ok {
				m.CacheSaved(d.Pool.Name, model, usage.Cost(u, p))
			}
		}
	}
	age := int64(r.s.cache.now().Sub(e.Stored) / time.Second)
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
		ImmediateResponse: &extprocv3.ImmediateResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_OK},
			Headers: &extprocv3.HeaderMutation{SetHeaders: append([]*corev3.HeaderValueOption{
				header("content-type", ctype),
				header("content-length", strconv.Itoa(len(out))),
				header(HeaderCache, result),
				header("age", strconv.FormatInt(max(age, 0), 10)),
				header(HeaderRoute, d.Route),
			}, extra...)},
			Body:    out,
			Details: "llmproc_cache_hit",
		},
	}}
}
