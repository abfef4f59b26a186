// Package metrics holds every Prometheus collector llmproc exports, registered
// on an injected registry.
//
// Names follow the OpenTelemetry GenAI semantic conventions in Prometheus form
// (gen_ai_client_token_usage, gen_ai_server_request_duration_seconds,
// gen_ai_server_time_to_first_token_seconds); what GenAI does not cover is
// llmproc_*. Every label value is bounded: pools, backends and models are the
// names in the config registry (callers pass the configured backend model
// name, never the provider's free-text "model" field), providers are backend
// schemas, and the rest are fixed sets chosen here. No ids, no free text.
package metrics

import (
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmproc/llmproc/filter/usage"
)

// Outcomes of an upstream attempt, as passed in Completion.Outcome.
const (
	OutcomeOK       = "ok"       // a 2xx response that finished normally
	OutcomeError    = "error"    // a non-2xx response, or an error in a 2xx stream
	OutcomeCut      = "cut"      // the stream broke before it finished
	OutcomeCanceled = "canceled" // the client went away
	// OutcomeUndelivered: llmproc could not deliver the provider's answer
	// (too large to hold, a coding it cannot decode where it must read,
	// corrupt compressed data); the client got an error in its place.
	OutcomeUndelivered = "undelivered"
)

// Completion is one finished upstream attempt as seen by the upstream role.
type Completion struct {
	Pool, Backend string
	// Tenant labels llmproc_cost_usd_total: one of metrics.tenants from the
	// config, "other", or "" when tenant labels are off. Always bounded.
	Tenant string
	// Provider is the backend schema, e.g. "openai".
	Provider string
	// RequestModel is the model the client asked for (a configured name);
	// ResponseModel is the configured backend model that served it.
	RequestModel, ResponseModel string
	Status                      int
	Stream                      bool
	// Duration is the whole attempt; TTFT is the time to the first output,
	// 0 when not observed.
	Duration, TTFT time.Duration
	Usage          usage.Usage
	UsageKnown     bool
	CostPico       int64
	// Outcome is one of the Outcome* constants.
	Outcome string
	// Route is the route rule that chose the pool (a configured name).
	Route string
	// Operation is gen_ai_operation_name (OpenTelemetry's GenAI names:
	// "chat", "embeddings", "text_completion"); "" means "chat".
	Operation string
}

// Metrics owns every collector. Its methods are safe for concurrent use.
type Metrics struct {
	tokenUsage      *prometheus.HistogramVec
	requestDuration *prometheus.HistogramVec
	ttft            *prometheus.HistogramVec
	tokens          *prometheus.CounterVec
	tokensEstimated *prometheus.CounterVec
	cost            *costCollector
	requests        *prometheus.CounterVec
	usageUnknown    *prometheus.CounterVec
	phase           *prometheus.HistogramVec
	phaseObs        atomic.Pointer[map[[2]string]prometheus.Observer] // copy-on-write cache of phase series
	routeDecisions  *prometheus.CounterVec
	routerRejects   *prometheus.CounterVec
	auth            *prometheus.CounterVec
	poolExhausted   *prometheus.CounterVec
	answerHandling  *prometheus.CounterVec
	answerBuffered  prometheus.Gauge
	reloads         *prometheus.CounterVec
	credRefreshes   *prometheus.CounterVec
	lastReload      prometheus.Gauge
	streams         *prometheus.GaugeVec
	streamsRefused  *prometheus.CounterVec
	budgetRequests  *prometheus.CounterVec
	budgetFigures   *budgetCollector
	cacheRequests   *prometheus.CounterVec
	cacheStores     *prometheus.CounterVec
	cacheSkips      *prometheus.CounterVec
	semLookups      *prometheus.CounterVec
	semEmbeds       *prometheus.CounterVec
	conversations   *prometheus.CounterVec
	cacheErrors     *prometheus.CounterVec
	cacheSaved      *costCollector
	cacheStats      *cacheStatsCollector
	feedback        *prometheus.CounterVec
	feedbackScore   *prometheus.HistogramVec
	answers         *prometheus.CounterVec
	xds             *xdsMetrics    // in xds.go
	status          *statusMetrics // in status.go
	creds           *credMetrics   // in credentials.go
	now             func() time.Time

	// cached children of the vectors observed per request (series.go)
	requestsS        *series[prometheus.Counter]
	requestDurationS *series[prometheus.Observer]
	ttftS            *series[prometheus.Observer]
	usageUnknownS    *series[prometheus.Counter]
	tokenUsageS      *series[prometheus.Observer]
	tokensS          *series[prometheus.Counter]
	tokensEstimatedS *series[prometheus.Counter]
	answersS         *series[prometheus.Counter]
	routeDecisionsS  *series[prometheus.Counter]
	answerHandlingS  *series[prometheus.Counter]
	cacheRequestsS   *series[prometheus.Counter]
	cacheStoresS     *series[prometheus.Counter]
	cacheSkipsS      *series[prometheus.Counter]
	streamsS         *series[prometheus.Gauge]
	budgetRequestsS  *series[prometheus.Counter]
	authS            *series[prometheus.Counter]
}

func withLabels(base []string, more ...string) []string {
	return append(append([]string(nil), base...), more...)
}

// New creates the collectors and registers them on reg. It panics if a
// collector is already registered there, like prometheus.MustRegister.
func New(reg prometheus.Registerer) *Metrics {
	// Token and duration buckets are the ones the GenAI conventions advise
	// (token usage cut at 4Mi, the largest context in sight); phase buckets
	// span 25µs to about 0.8s of ext_proc work per message.
	var (
		tokenBuckets    = []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304}
		durationBuckets = []float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92}
		ttftBuckets     = []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
		phaseBuckets    = prometheus.ExponentialBuckets(0.000025, 2, 16)
		genAILabels     = []string{"gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_response_model"}
	)
	m := &Metrics{
		tokenUsage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gen_ai_client_token_usage",
			Help:    "Number of input and output tokens used per upstream attempt.",
			Buckets: tokenBuckets,
		}, withLabels(genAILabels, "gen_ai_token_type", "llmproc_pool", "llmproc_backend")),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gen_ai_server_request_duration_seconds",
			Help:    "Duration of upstream attempts, to the last byte.",
			Buckets: durationBuckets,
		}, withLabels(genAILabels, "error_type")),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gen_ai_server_time_to_first_token_seconds",
			Help:    "Time to the first output token of successful upstream attempts.",
			Buckets: ttftBuckets,
		}, genAILabels),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_tokens_total",
			Help: "Tokens reported by providers, by type (input includes cached_input and cache_write; output includes reasoning).",
		}, []string{"pool", "backend", "model", "type"}),
		tokensEstimated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_tokens_estimated_total",
			Help: "Tokens estimated by llmproc for attempts whose usage the provider did not report (input from the request body, output from the streamed text, 4 bytes a token), by type (input, output). Never part of llmproc_tokens_total or cost.",
		}, []string{"pool", "backend", "model", "type"}),
		cost: newCostCollector(prometheus.NewDesc("llmproc_cost_usd_total",
			"Cost of upstream attempts in USD, summed exactly in pico-dollars.",
			[]string{"pool", "backend", "model", "tenant"}, nil), false),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_requests_total",
			Help: "Upstream attempts by status class (2xx, 4xx, 5xx, cut, canceled).",
		}, []string{"pool", "backend", "status_class"}),
		usageUnknown: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_usage_unknown_total",
			Help: "Successful or cut attempts whose usage the provider did not report.",
		}, []string{"pool", "backend"}),
		phase: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "llmproc_extproc_phase_duration_seconds",
			Help:    "Time llmproc spends on one ext_proc message, by role and phase.",
			Buckets: phaseBuckets,
		}, []string{"role", "phase"}),
		routeDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_route_decisions_total",
			Help: "Requests routed, by route rule, pool and task class (\"\" when no rule needed the classifier).",
		}, []string{"route", "pool", "class"}),
		routerRejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_router_rejections_total",
			Help: "Requests the router answered itself with an error, by OpenAI error code.",
		}, []string{"code"}),
		auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_auth_total",
			Help: "Requests by identity source (header or client_keys) and result: ok, missing, malformed, unknown, expired, revoked (refused with 401) or forbidden (a model outside the allow-list, 403).",
		}, []string{"source", "result"}),
		answerHandling: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_answer_handling_total",
			Help: "Provider answers llmproc did not read as usual, by what happened: decoded (a content-encoding undone), passthrough (a coding it cannot decode, passed untouched, usage unknown), unread (past limits.max_answer_buffer_bytes while streaming to the client: delivered, usage unknown) or undelivered with its reason (too_large, buffers_full, encoding, corrupt, reply_too_large).",
		}, []string{"pool", "backend", "handling"}),
		answerBuffered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llmproc_answer_buffered_bytes",
			Help: "Bytes of provider answers llmproc holds right now to read them, bounded by limits.max_buffered_bytes.",
		}),
		poolExhausted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_pool_exhausted_total",
			Help: "Requests whose last attempt Envoy allows got a retriable provider error (429, 500, 502, 503, 504), answered with error code pool_exhausted, by pool.",
		}, []string{"pool"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_config_reloads_total",
			Help: "Config reloads by result (ok, error).",
		}, []string{"result"}),
		credRefreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_credential_refreshes_total",
			Help: "Background fetches of expiring backend credentials (AWS default chain, Vertex service-account tokens) by backend and result (ok, error).",
		}, []string{"backend", "result"}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llmproc_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful config load.",
		}),
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "llmproc_extproc_active_streams",
			Help: "Open ext_proc streams by role.",
		}, []string{"role"}),
		streamsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_extproc_streams_refused_total",
			Help: "ext_proc streams answered with a 503 at once because limits.max_streams were open, by role.",
		}, []string{"role"}),
		budgetRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_budget_requests_total",
			Help: "Budget and rate-limit checks and reservation ends by result (reserved, budget_exceeded, rate_limit_exceeded, store_error; settled, estimated, released, awaiting_retry, unknown_reservation, settle_error).",
		}, []string{"result"}),
		budgetFigures: &budgetCollector{
			spent: prometheus.NewDesc("llmproc_budget_spent_usd",
				"Spend counted in a global budget's current window (reserved and settled), in USD.", []string{"budget"}, nil),
			limit: prometheus.NewDesc("llmproc_budget_limit_usd",
				"A global budget's limit, in USD.", []string{"budget"}, nil),
		},
		cacheRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_cache_requests_total",
			Help: "Requests by cache result: hit (exact), hit-normalized, hit-semantic (by tier), miss, bypass.",
		}, []string{"result"}),
		cacheStores: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_cache_stores_total",
			Help: "Answers stored in the cache, by tier (local, redis).",
		}, []string{"tier"}),
		semLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_cache_semantic_lookups_total",
			Help: "Semantic-tier lookups after an exact miss, by outcome: hit, miss (no stored turn reached the threshold), guarded (one did, the meaning guard refused it), embed_failed, entry_gone (the record's answer had expired or was evicted).",
		}, []string{"outcome"}),
		semEmbeds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_cache_semantic_embeddings_total",
			Help: "Embeddings of latest user turns for the semantic tier, by source: local and redis (cached by text), called (the embeddings pool answered), error (it did not in time: a miss).",
		}, []string{"source"}),
		cacheSkips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_cache_store_skipped_total",
			Help: "Cacheable requests whose answer was not stored, by reason.",
		}, []string{"reason"}),
		conversations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_conversations_total",
			Help: "Responses API conversation state, by event: kept, too_large and not_kept (an answer, kept or not), expanded and unknown (a previous_response_id), deleted.",
		}, []string{"event"}),
		cacheErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_cache_errors_total",
			Help: "Cache tier calls that failed (the request went on uncached), by tier.",
		}, []string{"tier"}),
		cacheSaved: newCostCollector(prometheus.NewDesc("llmproc_cache_saved_usd_total",
			"Cost of the answers served from the cache, in USD at the price of the model asked for, summed exactly in pico-dollars.",
			[]string{"pool", "model"}, nil), true),
		cacheStats: &cacheStatsCollector{
			entries: prometheus.NewDesc("llmproc_cache_entries",
				"Entries held by the in-process cache tier.", nil, nil),
			bytes: prometheus.NewDesc("llmproc_cache_bytes",
				"Memory the in-process cache tier has allocated for entries.", nil, nil),
			evictions: prometheus.NewDesc("llmproc_cache_evictions_total",
				"Entries the in-process cache tier removed to make room.", nil, nil),
		},
		feedback: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_feedback_total",
			Help: "Quality feedback accepted (POST /v1/feedback), by the model, backend (\"cache\" for a cache hit), route and class that served the request and the score (score_bucket 1 worst to 5 best).",
		}, []string{"model", "backend", "route", "class", "score_bucket"}),
		feedbackScore: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "llmproc_feedback_score",
			Help:    "Scores of accepted feedback (1 worst to 5 best), by the model and route that served the request; _sum / _count is the mean score.",
			Buckets: []float64{1, 2, 3, 4, 5},
		}, []string{"model", "route"}),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmproc_answers_total",
			Help: "Requests answered with a 2xx by a backend, by route, pool, backend and the backend's priority in the pool's fallback chain (0 for the first; above 0 is a fallback).",
		}, []string{"route", "pool", "backend", "priority"}),
		xds:   newXDSMetrics(),
		creds: newCredMetrics(),
		now:   time.Now,
	}
	m.status = newStatusMetrics(func() time.Time { return m.now() })
	reg.MustRegister(m.tokenUsage, m.requestDuration, m.ttft, m.tokens, m.tokensEstimated, m.cost,
		m.requests, m.usageUnknown, m.phase, m.routeDecisions, m.routerRejects, m.auth, m.poolExhausted, m.answerHandling, m.answerBuffered,
		m.reloads, m.lastReload, m.streams, m.streamsRefused, m.credRefreshes,
		m.cacheRequests, m.cacheStores, m.cacheSkips, m.semLookups, m.semEmbeds, m.conversations, m.cacheErrors, m.cacheSaved, m.cacheStats,
		m.budgetRequests, m.budgetFigures, m.feedback, m.feedbackScore, m.answers)
	reg.MustRegister(m.xds.collectors()...)
	reg.MustRegister(m.status.collectors()...)
	reg.MustRegister(m.creds.collectors()...)
	m.phaseObs.Store(&map[[2]string]prometheus.Observer{})
	m.requestsS = newSeries(m.requests.WithLabelValues)
	m.requestDurationS = newSeries(m.requestDuration.WithLabelValues)
	m.ttftS = newSeries(m.ttft.WithLabelValues)
	m.usageUnknownS = newSeries(m.usageUnknown.WithLabelValues)
	m.tokenUsageS = newSeries(m.tokenUsage.WithLabelValues)
	m.tokensS = newSeries(m.tokens.WithLabelValues)
	m.tokensEstimatedS = newSeries(m.tokensEstimated.WithLabelValues)
	m.answersS = newSeries(m.answers.WithLabelValues)
	m.routeDecisionsS = newSeries(m.routeDecisions.WithLabelValues)
	m.answerHandlingS = newSeries(m.answerHandling.WithLabelValues)
	m.cacheRequestsS = newSeries(m.cacheRequests.WithLabelValues)
	m.cacheStoresS = newSeries(m.cacheStores.WithLabelValues)
	m.cacheSkipsS = newSeries(m.cacheSkips.WithLabelValues)
	m.streamsS = newSeries(m.streams.WithLabelValues)
	m.budgetRequestsS = newSeries(m.budgetRequests.WithLabelValues)
	m.authS = newSeries(m.auth.WithLabelValues)
	for _, r := range []string{CacheHit, CacheMiss, CacheBypass} {
		m.cacheRequestsS.get(r)
	}
	return m
}

// operationChat is gen_ai_operation_name for chat completions.
const operationChat = "chat"

// Record accounts one finished upstream attempt.
func (m *Metrics) Record(c Completion) {
	class := StatusClass(c.Status, c.Outcome)
	provider := ProviderName(c.Provider)
	op := c.Operation
	if op == "" {
		op = operationChat
	}
	model := c.ResponseModel
	if model == "" {
		model = c.RequestModel
	}
	m.requestsS.get(c.Pool, c.Backend, class).Inc()

	errorType := ""
	if class != "2xx" {
		errorType = class
	}
	m.requestDurationS.get(op, provider, c.RequestModel, c.ResponseModel, errorType).
		Observe(c.Duration.Seconds())
	if c.TTFT > 0 && class == "2xx" {
		m.ttftS.get(op, provider, c.RequestModel, c.ResponseModel).Observe(c.TTFT.Seconds())
	}

	if !c.UsageKnown {
		if c.Outcome == OutcomeOK || c.Outcome == OutcomeCut {
			m.usageUnknownS.get(c.Pool, c.Backend).Inc()
		}
	} else {
		u := c.Usage
		m.tokenUsageS.get(op, provider, c.RequestModel, c.ResponseModel, "input", c.Pool, c.Backend).
			Observe(float64(u.Input))
		m.tokenUsageS.get(op, provider, c.RequestModel, c.ResponseModel, "output", c.Pool, c.Backend).
			Observe(float64(u.Output))
		for _, t := range [...]struct {
			typ string
			n   int64
		}{{"input", u.Input}, {"output", u.Output}, {"cached_input", u.CachedInput}, {"cache_write", u.CacheWrite}, {"reasoning", u.Reasoning}} {
			if t.n > 0 {
				m.tokensS.get(c.Pool, c.Backend, model, t.typ).Add(float64(t.n))
			}
		}
	}
	if c.CostPico > 0 {
		m.cost.add(costKey{c.Pool, c.Backend, model, c.Tenant}, c.CostPico)
	}
	m.status.record(c, class, model, m.now())
}

// EstimatedTokens accounts an estimate of the input and output tokens of an
// attempt whose usage is unknown. model is the configured backend model.
// Estimates are kept apart from reported usage; zero counts add nothing.
func (m *Metrics) EstimatedTokens(pool, backend, model string, input, output int64) {
	if input > 0 {
		m.tokensEstimatedS.get(pool, backend, model, "input").Add(float64(input))
	}
	if output > 0 {
		m.tokensEstimatedS.get(pool, backend, model, "output").Add(float64(output))
	}
}

// StatusClass maps an attempt to its status_class label: "cut" and
// "canceled" from the outcome, otherwise "2xx", "4xx" or "5xx" from the HTTP
// status. An "error" or "undelivered" outcome with a success status (an error inside a 200
// stream) and any status that is not 2xx or 4xx count as "5xx".
func StatusClass(status int, outcome string) string {
	switch {
	case outcome == OutcomeCut:
		return "cut"
	case outcome == OutcomeCanceled:
		return "canceled"
	case status >= 400 && status < 500:
		return "4xx"
	case status >= 200 && status < 300 && outcome != OutcomeError && outcome != OutcomeUndelivered:
		return "2xx"
	default:
		return "5xx"
	}
}

// ProviderName maps a backend schema to the GenAI well-known
// gen_ai.provider.name value; other schemas pass through unchanged.
func ProviderName(schema string) string {
	switch schema {
	case "azure-openai":
		return "azure.ai.openai"
	case "gemini":
		return "gcp.gemini"
	case "vertex":
		return "gcp.vertex_ai"
	case "bedrock":
		return "aws.bedrock"
	}
	return schema
}

// ObservePhase records the time spent on one ext_proc message of a role
// ("router", "upstream") and phase ("request_headers", "request_body",
// "response_headers", "response_body").
func (m *Metrics) ObservePhase(role, phase string, d time.Duration) {
	key := [2]string{role, phase}
	cache := m.phaseObs.Load()
	o, ok := (*cache)[key]
	if !ok {
		o = m.phase.WithLabelValues(role, phase)
		next := make(map[[2]string]prometheus.Observer, len(*cache)+1)
		for k, v := range *cache {
			next[k] = v
		}
		next[key] = o
		m.phaseObs.Store(&next) // a lost race only costs a later miss
	}
	o.Observe(d.Seconds())
}

// RouterDecision counts a request sent to pool by the route rule named route;
// class is the request's task class, "" when it was not classified.
func (m *Metrics) RouterDecision(route, pool, class string) {
	m.routeDecisionsS.get(route, pool, class).Inc()
}

// RouterReject counts a request the router refused; code is the OpenAI error
// code (a bounded set from apierr).
func (m *Metrics) RouterReject(code string) {
	m.routerRejects.WithLabelValues(code).Inc()
}

// Auth counts one identity check: source is the identity source, result one
// of the identity.Result* values (a bounded set).
func (m *Metrics) Auth(source, result string) {
	m.authS.get(source, result).Inc()
}

// AnswerHandling counts an answer not read as usual (see
// llmproc_answer_handling_total for the values of handling).
func (m *Metrics) AnswerHandling(pool, backend, handling string) {
	m.answerHandlingS.get(pool, backend, handling).Inc()
}

// AnswerBuffered sets the bytes of answers held right now.
func (m *Metrics) AnswerBuffered(n int64) { m.answerBuffered.Set(float64(n)) }

// PoolExhausted counts a request whose last attempt got a retriable
// provider error, so the client was answered pool_exhausted.
func (m *Metrics) PoolExhausted(pool string) {
	m.poolExhausted.WithLabelValues(pool).Inc()
}

// ConfigReload counts a config reload and, when it succeeded, sets the
// last-success timestamp.
func (m *Metrics) ConfigReload(ok bool) {
	if !ok {
		m.reloads.WithLabelValues("error").Inc()
		return
	}
	m.reloads.WithLabelValues("ok").Inc()
	m.lastReload.Set(float64(m.now().UnixNano()) / 1e9)
}

// CredentialRefresh counts a background fetch of a backend's expiring
// credential.
func (m *Metrics) CredentialRefresh(backend string, ok bool) {
	result := "ok"
	if !ok {
		result = "error"
	}
	m.credRefreshes.WithLabelValues(backend, result).Inc()
}

// Streams counts an open ext_proc stream of role and returns the function
// that counts it closed; call that exactly once.
func (m *Metrics) Streams(role string) func() {
	g := m.streamsS.get(role)
	g.Inc()
	return g.Dec
}

// StreamRefused counts a stream of role refused by limits.max_streams.
func (m *Metrics) StreamRefused(role string) { m.streamsRefused.WithLabelValues(role).Inc() }

// Cache results, as passed to CacheResult.
const (
	CacheHit    = "hit"
	CacheMiss   = "miss"
	CacheBypass = "bypass"
)

// CacheResult counts a request's cache result: CacheHit, CacheMiss or
// CacheBypass (the policy did not allow a lookup).
func (m *Metrics) CacheResult(result string) {
	m.cacheRequestsS.get(result).Inc()
}

// SemanticLookup counts a semantic-tier lookup by outcome (the semantic
// package's Lookup* outcomes, or "entry_gone").
func (m *Metrics) SemanticLookup(outcome string) {
	m.semLookups.WithLabelValues(outcome).Inc()
}

// SemanticEmbed counts an embedding for the semantic tier by source (the
// semantic package's Embed* results).
func (m *Metrics) SemanticEmbed(source string) {
	m.semEmbeds.WithLabelValues(source).Inc()
}

// CacheStore counts an answer stored in tier ("local", "redis").
func (m *Metrics) CacheStore(tier string) {
	m.cacheStoresS.get(tier).Inc()
}

// CacheSkip counts an answer not stored; reason is one of the cache
// package's bounded Skip* reasons (or a status class for non-2xx answers).
func (m *Metrics) CacheSkip(reason string) {
	m.cacheSkipsS.get(reason).Inc()
}

// ConversationStore counts a conversation-state event (see the metric's help).
func (m *Metrics) ConversationStore(event string) {
	m.conversations.WithLabelValues(event).Inc()
}

// CacheError counts a failed call to tier ("local", "redis").
func (m *Metrics) CacheError(tier string) {
	m.cacheErrors.WithLabelValues(tier).Inc()
}

// CacheSaved adds what a cache hit saved: pico pico-dollars, the cost of the
// stored answer's usage at the price of model (a configured name) in pool.
func (m *Metrics) CacheSaved(pool, model string, pico int64) {
	if pico > 0 {
		m.cacheSaved.add(costKey{pool: pool, model: model}, pico)
	}
}

// CacheStats makes the in-process tier's size visible: f is called at every
// scrape and returns its entries, allocated bytes and evictions so far
// (a running total). Call it once, when the tier is created; until then the
// three series are absent. A later call replaces f (a reloaded tier).
func (m *Metrics) CacheStats(f func() (entries, bytes, evictions int64)) {
	m.cacheStats.f.Store(&f)
}

// cacheStatsCollector exports the local tier's figures at scrape time.
type cacheStatsCollector struct {
	entries, bytes, evictions *prometheus.Desc
	f                         atomic.Pointer[func() (int64, int64, int64)]
}

// Describe implements prometheus.Collector.
func (c *cacheStatsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.entries
	ch <- c.bytes
	ch <- c.evictions
}

// Collect implements prometheus.Collector.
func (c *cacheStatsCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.f.Load()
	if f == nil {
		return
	}
	entries, bytes, evictions := (*f)()
	ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(entries))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(bytes))
	ch <- prometheus.MustNewConstMetric(c.evictions, prometheus.CounterValue, float64(evictions))
}

// costKey is the label set of llmproc_cost_usd_total.
type costKey struct{ pool, backend, model, tenant string }

// costTotal is an exact running sum: usd whole dollars plus pico
// pico-dollars (0 <= pico < 1e12), so it cannot overflow in practice.
type costTotal struct {
	usd, pico int64
}

// costCollector exports per-label-set pico-dollar totals as a USD counter.
// Sums stay integers; the conversion to float64 happens only at scrape.
type costCollector struct {
	desc      *prometheus.Desc
	noBackend bool // labels are (pool, model)
	mu        sync.Mutex
	totals    map[costKey]*costTotal
}

// newCostCollector exports totals by (pool, backend, model), or by (pool,
// model) when noBackend is set (costKey.backend is then unused).
func newCostCollector(desc *prometheus.Desc, noBackend bool) *costCollector {
	return &costCollector{desc: desc, noBackend: noBackend, totals: make(map[costKey]*costTotal)}
}

const picoPerUSD = 1_000_000_000_000

func (c *costCollector) add(k costKey, pico int64) {
	c.mu.Lock()
	t := c.totals[k]
	if t == nil {
		t = &costTotal{}
		c.totals[k] = t
	}
	t.add(pico)
	c.mu.Unlock()
}

// add adds pico (>= 0) pico-dollars.
func (t *costTotal) add(pico int64) {
	t.pico += pico % picoPerUSD
	t.usd += pico / picoPerUSD
	if t.pico >= picoPerUSD {
		t.pico -= picoPerUSD
		t.usd++
	}
}

// value is the total in USD: exactly float64(total)/1e12 while the total
// fits in int64 pico-dollars (about 9.2 million USD), and the nearest sum of
// the parts beyond that.
func (t costTotal) value() float64 {
	if t.usd <= (math.MaxInt64-t.pico)/picoPerUSD {
		return float64(t.usd*picoPerUSD+t.pico) / picoPerUSD
	}
	return float64(t.usd) + float64(t.pico)/picoPerUSD
}

// Describe implements prometheus.Collector.
func (c *costCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *costCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	type row struct {
		k costKey
		t costTotal
	}
	rows := make([]row, 0, len(c.totals))
	for k, t := range c.totals {
		rows = append(rows, row{k, *t})
	}
	c.mu.Unlock()
	for _, r := range rows {
		labels := []string{r.k.pool, r.k.backend, r.k.model, r.k.tenant}
		if c.noBackend {
			labels = []string{r.k.pool, r.k.model}
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, r.t.value(), labels...)
	}
}

// BudgetResult counts one budget and rate-limit check or reservation end
// by result: reserved, budget_exceeded, rate_limit_exceeded, store_error;
// settled, estimated (a 2xx answer without usage, settled at the
// estimate), released, awaiting_retry, unknown_reservation, settle_error.
func (m *Metrics) BudgetResult(result string) {
	m.budgetRequestsS.get(result).Inc()
}

// BudgetFigure is one global budget's standing, for the spent and limit gauges.
type BudgetFigure struct {
	Budget               string
	SpentPico, LimitPico int64
}

// BudgetFigures sets the function read at every scrape for
// llmproc_budget_spent_usd and llmproc_budget_limit_usd.
func (m *Metrics) BudgetFigures(f func() []BudgetFigure) {
	m.budgetFigures.f.Store(&f)
}

// budgetCollector exports budget figures at scrape time.
type budgetCollector struct {
	spent, limit *prometheus.Desc
	f            atomic.Pointer[func() []BudgetFigure]
}

// Describe implements prometheus.Collector.
func (c *budgetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.spent
	ch <- c.limit
}

// Collect implements prometheus.Collector.
func (c *budgetCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.f.Load()
	if f == nil {
		return
	}
	for _, b := range (*f)() {
		ch <- prometheus.MustNewConstMetric(c.spent, prometheus.GaugeValue, float64(b.SpentPico)/1e12, b.Budget)
		ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(b.LimitPico)/1e12, b.Budget)
	}
}

// ScoreBucket is the score_bucket of a score (1 to 5): the score itself,
// clamped to the scale so the label stays bounded.
func ScoreBucket(score int) string {
	return strconv.Itoa(min(max(score, 1), 5))
}

// BackendCache is the backend label of feedback on a cache hit.
const BackendCache = "cache"

// Feedback accounts one accepted feedback for a request served by model
// (a configured name) on backend ("" for a cache hit), route and class.
func (m *Metrics) Feedback(model, backend, route, class string, score int) {
	if backend == "" {
		backend = BackendCache
	}
	m.feedback.WithLabelValues(model, backend, route, class, ScoreBucket(score)).Inc()
	m.feedbackScore.WithLabelValues(model, route).Observe(float64(score))
}

// Answered accounts a request answered with a 2xx by backend, the member
// of pool at priority (its place in the fallback chain, 0 first).
func (m *Metrics) Answered(route, pool, backend string, priority int) {
	m.answersS.get(route, pool, backend, strconv.Itoa(priority)).Inc()
}
