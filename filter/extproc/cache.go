package extproc

import (
	"context"
	"encoding/hex"
	"log/slog"
	"strconv"
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

// lookup runs the router's part: the policy, the key, the lookup. It returns
// an ImmediateResponse on a hit, else the cache result for the client (miss,
// bypass) and the key to store the answer under ("" when it may not be).
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
	policyBody := body
	if r.client == clientGemini { // its sampling parameters are in generationConfig
		policyBody = geminiSampling(body)
	}
	pol := cache.Decide(mode, policyBody, r.cacheControl)
	result = "bypass"
	if pol.Lookup || pol.Store {
		in := cache.KeyInput{Tenant: r.tenant, Group: r.rt.CacheGroup(r.tenant), ClientSchema: r.clientSchema(), Endpoint: r.path,
			Pool: d.Pool.Name, Model: model + "\x00" + d.Target, Body: body}
		key, err := cache.KeyOf(in)
		if err == nil {
			if pol.Lookup {
				if e, ok := c.get(r.ctx, key); ok && c.fresh(e, pol.MaxAge) {
					r.recordHit(d, model)
					return r.hit(d, model, req, e, ""), "", ""
				}
				result = "miss"
			}
			hit, bucket := r.semanticLookup(d, model, req, in, body, pol)
			if hit != nil {
				return hit, "", ""
			}
			r.semBucket = bucket
			if pol.Store {
				storeKey = hex.EncodeToString(key[:])
			}
		}
	}
	if r.s.metrics != nil {
		r.s.metrics.CacheResult(result)
	}
	return nil, result, storeKey
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
		served := gjson.GetBytes(e.Completion, "model").String()
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
