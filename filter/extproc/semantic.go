package extproc

import (
	"context"
	"encoding/hex"
	"math"
	"strconv"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/llmproc/llmproc/filter/cache"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/meaning"
	"github.com/llmproc/llmproc/filter/semantic"
	"github.com/llmproc/llmproc/filter/translate"
)

// The semantic tier (package semantic) on the request path. After an exact
// miss, a request whose match is semantic — an OpenAI chat completion, an
// Anthropic message, a Responses API request or a Gemini generateContent
// (streamed or not) whose latest turn is the user's text — is looked up by
// its latest user turn's embedding among the stored answers to requests
// equal in everything else (the bucket). A hit is served like an exact one
// (same replay, zero cost, no budget reserved) with x-llmproc-cache:
// hit-semantic, the similarity and the original request's id. On a miss the
// router hands the bucket to the upstream role (KeySemanticBucket), which,
// once the answer is stored under its exact key in every tier, adds the
// turn to the bucket. A tier that fails (embeddings, Redis) is a miss.

// HeaderCacheSimilarity and HeaderCacheRequestID go with a semantic hit:
// the cosine similarity of the two latest user turns (two decimals, rounded
// down) and the id of the request whose answer is served.
const (
	HeaderCacheSimilarity = "x-llmproc-cache-similarity"
	HeaderCacheRequestID  = "x-llmproc-cache-request-id"
)

// KeySemanticBucket is the router's decision to add the answer's latest
// user turn to the semantic tier, under this bucket (hex).
const KeySemanticBucket = "semantic_bucket"

// semanticStoreTimeout bounds adding a turn after the answer was stored
// (its embedding is usually cached by then: the router asked for it).
const semanticStoreTimeout = 5 * time.Second

// newSemantic builds the semantic tier when cache.semantic is set, nil
// otherwise. Its bounds and threshold are read at start, like the cache's
// memory; the embeddings pool is the current config's at each call.
func (s *Server) newSemantic(rt *config.Runtime, o Options) *semantic.Tier {
	sc, ok := rt.Semantic()
	if !ok || o.Cache == nil {
		return nil
	}
	onEmbed := func(string) {}
	if s.metrics != nil {
		onEmbed = s.metrics.SemanticEmbed
	}
	vectors := o.SemanticVectors
	if vectors == nil {
		vectors = semantic.NewEmbedder(semantic.EmbedderOptions{
			PoolOf: func() *config.RPool {
				if c, ok := s.cfg.Load().Semantic(); ok {
					return c.Pool
				}
				return nil
			},
			Model: sc.Model, Dims: sc.Dimensions, Timeout: sc.Timeout, Translators: s.tr,
			Shared: o.Cache.Semantic, OnEmbed: onEmbed,
		})
	}
	t, err := semantic.NewTier(semantic.Options{
		Threshold: float32(sc.Threshold), MaxEntries: sc.MaxEntries, MaxBucketEntries: sc.MaxBucketEntries,
		TTL: o.Cache.TTL, Vectors: vectors, Guard: meaning.SameMeaningTokens, Shared: o.Cache.Semantic, Now: o.Now,
		OnSharedError: func(op string, err error) { s.cache.sharedFailed("semantic "+op, err) },
	})
	if err != nil {
		s.log.Error("semantic cache tier not built; semantic routes match exactly", "err", err)
		return nil
	}
	return t
}

// semanticLookup runs the semantic tier after an exact miss. It returns the
// hit, or the bucket (hex) the answer's turn should join when it may be
// stored ("" when the request has no turn to compare).
func (r *router) semanticLookup(d config.Decision, model string, req chatRequest, in cache.KeyInput, doc *cache.Doc, pol cache.Policy) (hit *extprocv3.ProcessingResponse, bucket string) {
	t := r.s.semantic
	api := semanticAPI(r.client, r.endpoint)
	if t == nil || d.CacheMatch != config.MatchSemantic || api == "" || r.countTokens {
		return nil, ""
	}
	text, at, ok := semantic.Turn(doc, api)
	if !ok {
		return nil, ""
	}
	b := semantic.BucketOf(doc, in, at)
	if pol.Lookup {
		m, ok, outcome := t.Lookup(r.ctx, b, text)
		if ok {
			e, found := r.s.cache.get(r.ctx, m.Entry)
			if found && r.s.cache.fresh(e, pol.MaxAge) {
				r.semanticCount(semantic.LookupHit)
				r.recordHit(d, model)
				id := m.RequestID
				sim := strconv.FormatFloat(math.Floor(float64(m.Similarity)*100)/100, 'f', 2, 64)
				return r.hit(d, model, req, e, "semantic", header(HeaderCacheSimilarity, sim), header(HeaderCacheRequestID, id)), ""
			}
			outcome = "entry_gone"
		}
		r.semanticCount(outcome)
	}
	if !pol.Store {
		return nil, ""
	}
	return nil, hex.EncodeToString(b[:])
}

// semanticAPI names the client API whose latest user turn the semantic tier
// compares (semantic.Turn): OpenAI chat, Anthropic Messages, the Responses
// API or Gemini; "" for the other endpoints (embeddings, completions), which
// are never looked up semantically. client is KeyClient's value ("" or
// "openai" for OpenAI's APIs), endpoint KeyEndpoint's.
func semanticAPI(client, endpoint string) string {
	switch {
	case endpoint == translate.EndpointResponses:
		return cache.APIResponses
	case endpoint != "":
		return ""
	case client == clientAnthropic:
		return cache.APIMessages
	case client == clientGemini:
		return cache.APIGemini
	}
	return cache.APIChat
}

func (r *router) semanticCount(outcome string) {
	if r.s.metrics != nil {
		r.s.metrics.SemanticLookup(outcome)
	}
}

// semanticStore adds the stored answer's turn to its bucket; the cache
// calls it once the entry is in every tier.
func (u *upstream) semanticStore(k cache.Key, stored time.Time) func() {
	t := u.s.semantic
	if t == nil || u.semBucket == "" || u.semText == "" {
		return nil
	}
	var b semantic.Bucket
	if n, err := hex.Decode(b[:], []byte(u.semBucket)); err != nil || n != len(b) {
		return nil
	}
	text, id := u.semText, u.id
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), semanticStoreTimeout)
		defer cancel()
		_ = t.Store(ctx, b, text, k, id, stored) // a failure is counted where it happened
	}
}
