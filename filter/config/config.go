// Package config is llmproc's model registry: the YAML schema, its loading with
// unknown keys rejected, validation whose messages name the field path, and
// compilation into the immutable Runtime that the filter reads on every request.
//
// The file form (Config) and the runtime form (Runtime) are kept apart so that
// the YAML can stay friendly while the hot path gets pre-resolved maps, parsed
// URLs, loaded credentials and exact integer prices.
package config

import "time"

// Config is the YAML file as written by the user.
type Config struct {
	Listen   Listen    `yaml:"listen"`
	Log      Log       `yaml:"log"`
	Limits   Limits    `yaml:"limits"`
	Envoy    Envoy     `yaml:"envoy"`
	Backends []Backend `yaml:"backends"`
	Models   []Model   `yaml:"models"`
	Pools    []Pool    `yaml:"pools"`
	Routes   []Route   `yaml:"routes"`  // in routing.go
	Routing  Routing   `yaml:"routing"` // what rules can see
	Cache    Cache     `yaml:"cache"`
	Metrics  Metrics   `yaml:"metrics"`
	// Budgets, RateLimits and BudgetStore are in budget.go.
	Budgets     []Budget    `yaml:"budgets"`
	RateLimits  []RateLimit `yaml:"rate_limits"`
	BudgetStore BudgetStore `yaml:"budget_store"`
	Identity    Identity    `yaml:"identity"` // in identity.go
	// Tracing, when set, exports OpenTelemetry spans (tracing.go).
	Tracing  *Tracing `yaml:"tracing"`
	Feedback Feedback `yaml:"feedback"`

	// loaded is the hash of the file Load read, so a reload watcher starts
	// from what was actually loaded, not from what the file holds later.
	loaded *digest
}

// Listen holds llmproc's own listening addresses.
type Listen struct {
	// GRPC is the ext_proc (and gRPC health) address. Default 127.0.0.1:50051.
	GRPC string `yaml:"grpc"`
	// HTTP serves /metrics, /healthz and the status page (/, /status.json).
	// Default 127.0.0.1:9090. "off" disables it.
	HTTP string `yaml:"http"`
	// Pprof enables /debug/pprof on the HTTP listener. Default false.
	Pprof bool `yaml:"pprof"`
}

// Log configures the process logger.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error; default info
	Format string `yaml:"format"` // json | text; default json
}

// Limits bounds what llmproc accepts and how long it waits.
type Limits struct {
	// MaxRequestBytes is the largest request body accepted (default 8 MiB).
	// The rendered Envoy config sizes its buffers above it.
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
	// MaxJSONDepth bounds how deeply a request body may nest arrays and
	// objects (default 64); deeper bodies are refused before routing.
	MaxJSONDepth int `yaml:"max_json_depth"`
	// MaxAnswerBufferBytes bounds what llmproc holds of one provider answer
	// to read it (a JSON answer it translates or reads usage from, an SSE
	// event not yet complete, once per reader that keeps a copy; decoded
	// bytes of a compressed chunk); default
	// 32 MiB. An answer that needs more ends with an error in the client's
	// API shape, or, when it already streams to the client, goes on unread.
	MaxAnswerBufferBytes int64 `yaml:"max_answer_buffer_bytes"`
	// MaxBufferedBytes bounds the same over all answers at once (default
	// 512 MiB); at least max_answer_buffer_bytes.
	MaxBufferedBytes int64 `yaml:"max_buffered_bytes"`
	// MaxStreams bounds the ext_proc streams llmproc serves at once, both
	// roles together (default 10000, about 250 MB of llmproc's memory when
	// they all stream); one more is answered at once with a 503 in the
	// client's API shape and retry-after, not served.
	MaxStreams int `yaml:"max_streams"`
	// ShutdownGrace bounds how long in-flight streams may run after SIGTERM
	// (default 30s).
	ShutdownGrace Duration `yaml:"shutdown_grace"`
	// ReloadInterval is how often the config file and credential files are
	// checked for changes (default 2s; "0s" disables reloading).
	ReloadInterval *Duration `yaml:"reload_interval"`
}

// Envoy holds what only the rendered Envoy configuration needs.
type Envoy struct {
	// Listen is the address Envoy accepts client traffic on. Default 0.0.0.0:10000.
	Listen string `yaml:"listen"`
	// Admin is Envoy's admin address. Default 127.0.0.1:9901.
	Admin string `yaml:"admin"`
	// LLMProc is where Envoy reaches llmproc's gRPC listener; default listen.grpc.
	LLMProc string `yaml:"llmproc"`
	// MessageTimeout is ext_proc's per-message timeout (default 10s).
	MessageTimeout Duration `yaml:"message_timeout"`
	// NumRetries is the retry budget per request across a pool (default 2).
	NumRetries *uint32 `yaml:"num_retries"`
	// PerTryTimeout bounds the time to response headers per attempt (default 120s).
	PerTryTimeout Duration `yaml:"per_try_timeout"`
	// IdleTimeout ends a stream that sends nothing for this long (default 300s).
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxConcurrentRequests is how many requests one Envoy is expected to
	// have in flight at once (default 1024). It sizes the rendered circuit
	// breakers: each pool cluster's max_requests, max_pending_requests and
	// max_retries (every request in flight may be waiting on a retry when a
	// backend fails), and the llmproc cluster's max_requests (two gRPC
	// streams per request in flight: the router role's and the current
	// attempt's upstream role's). Envoy's defaults (1024 requests, 3 retries)
	// silently stop failover under load.
	MaxConcurrentRequests uint32 `yaml:"max_concurrent_requests"`
	// XDS makes llmproc serve the pool clusters, the listener and its routes
	// over ADS on listen.grpc, pushing a new snapshot after every successful
	// reload; render the matching bootstrap with `envoy-config -ads`.
	// Read at start. Default false.
	XDS bool `yaml:"xds"`
}

// Backend is one provider endpoint with its credentials.
type Backend struct {
	Name string `yaml:"name"`
	// Schema is the wire API the backend speaks: openai, azure-openai,
	// anthropic, gemini, vertex, bedrock or openai-compatible.
	Schema     string     `yaml:"schema"`
	URL        string     `yaml:"url"`
	Credential Credential `yaml:"credential"`
	// CredentialNext is a second key, active during a rotation: llmproc
	// sends Credential, and when the provider refuses it (401 or 403) it
	// marks that key failing for a minute and sends this one
	// (README "Rotating provider keys"). Only with Credential.
	CredentialNext Credential `yaml:"credential_next"`
	Headers        Headers    `yaml:"headers"`
	// DropParams lists OpenAI request parameters this backend cannot honour
	// that are silently dropped; any other unsupported parameter is a 400
	// naming it.
	DropParams []string `yaml:"drop_params"`
	// ReasoningContent gives OpenAI chat clients the model's thinking, as
	// message.reasoning_content / delta.reasoning_content (and the signed
	// thinking_blocks next turns send back), when a translated backend
	// returns it (Anthropic, Bedrock, Gemini thought summaries). Default
	// false: thinking is dropped. Anthropic clients always get thinking
	// blocks. OpenAI-schema backends' answers pass as they are.
	ReasoningContent bool `yaml:"reasoning_content"`

	// Schema-specific settings; only the block matching the schema may be set.
	Anthropic *AnthropicOptions `yaml:"anthropic"`
	Azure     *AzureOptions     `yaml:"azure"`
	Vertex    *VertexOptions    `yaml:"vertex"`
	Bedrock   *BedrockOptions   `yaml:"bedrock"`
	Compat    *CompatOptions    `yaml:"compat"`
}

// AnthropicOptions configures an anthropic backend.
type AnthropicOptions struct {
	// Version is the anthropic-version header (default 2023-06-01).
	Version string `yaml:"version"`
	// MaxTokens is sent when the client gives no max_tokens, which Anthropic
	// requires (default 4096).
	MaxTokens int `yaml:"max_tokens"`
}

// AzureOptions configures an azure-openai backend. The pool member's model
// name is the deployment name.
type AzureOptions struct {
	// APIVersion is the api-version query parameter (default 2024-10-21).
	APIVersion string `yaml:"api_version"`
	// Auth is "api-key" (the api-key header, default) or "bearer" (an Entra
	// ID token in Authorization).
	Auth string `yaml:"auth"`
}

// VertexOptions configures a vertex backend (Gemini on Vertex AI). The
// credential is a service-account key (JSON) or a file holding an access
// token; the backend URL is the regional endpoint, e.g.
// https://us-central1-aiplatform.googleapis.com.
type VertexOptions struct {
	Project string `yaml:"project"`
	Region  string `yaml:"region"`
}

// BedrockOptions configures a bedrock backend (Converse API). Credentials
// come from the credential (a file or env var holding
// "ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]"), or else from the AWS
// default chain (environment, shared config, web identity).
type BedrockOptions struct {
	Region string `yaml:"region"`
	// AnthropicAPI chooses the API an Anthropic Messages client's requests
	// use: "native" (InvokeModel, the body as the client sent it), "converse"
	// (translated to Converse, as OpenAI clients' are) or "auto" (default:
	// native when the model id names a Claude model, i.e. contains
	// "anthropic." or "claude").
	AnthropicAPI string `yaml:"anthropic_api"`
}

// Bedrock's AnthropicAPI values.
const (
	AnthropicAPIAuto     = "auto"
	AnthropicAPINative   = "native"
	AnthropicAPIConverse = "converse"
)

// CompatOptions covers the known quirks of OpenAI-compatible servers.
type CompatOptions struct {
	// StreamOptions false means the server rejects stream_options, so usage
	// is not requested (default true).
	StreamOptions *bool `yaml:"stream_options"`
	// MaxTokensField renames max_tokens / max_completion_tokens to the field
	// the server understands: "max_tokens" or "max_completion_tokens"
	// (default: sent as the client wrote it).
	MaxTokensField string `yaml:"max_tokens_field"`
}

// Credential says where a backend's API key comes from. Exactly one of Env or
// File is set; neither means the backend needs no key (a local server).
type Credential struct {
	Env  string `yaml:"env"`
	File string `yaml:"file"`
}

// Headers are added to or removed from every request sent to a backend.
type Headers struct {
	Set    map[string]string `yaml:"set"`
	Remove []string          `yaml:"remove"`
}

// Model is a name clients may ask for.
type Model struct {
	Name    string   `yaml:"name"`
	Aliases []string `yaml:"aliases"`
	// Pool serves the model when no route matches it first.
	Pool  string `yaml:"pool"`
	Price Price  `yaml:"price"`
	// OwnedBy is reported by GET /v1/models (default "llmproc").
	OwnedBy string `yaml:"owned_by"`
	// Kind is what the model does: "chat" (the default; chat completions,
	// Responses, Messages, completions) or "embedding" (only
	// POST /v1/embeddings). GET /v1/models lists it.
	Kind string `yaml:"kind"`
}

// Price is USD per million tokens, written as decimals and kept exact.
type Price struct {
	Input       Decimal `yaml:"input"`
	Output      Decimal `yaml:"output"`
	CachedInput Decimal `yaml:"cached_input"`
	CacheWrite  Decimal `yaml:"cache_write"`
	// CacheWrite1h prices Anthropic's one-hour cache writes (ttl "1h");
	// CacheWrite then prices the five-minute ones.
	CacheWrite1h Decimal `yaml:"cache_write_1h"`
}

// Pool is an ordered fallback chain of backends; the order becomes Envoy
// priorities (first = priority 0).
type Pool struct {
	Name     string       `yaml:"name"`
	Backends []PoolMember `yaml:"backends"`
}

// PoolMember is one backend in a pool, with an optional model-name override.
type PoolMember struct {
	Backend string `yaml:"backend"`
	// Model replaces the client's model name when this backend is used.
	Model string `yaml:"model"`
}

// Cache configures the response cache.
type Cache struct {
	// Mode: "deterministic" (default) caches only requests whose answer is
	// repeatable (temperature 0, or a seed); "all" caches every request;
	// "off" disables the cache. Routes may override it.
	Mode string `yaml:"mode"`
	// Match is how a lookup finds an entry: "exact" (default: the whole
	// request, canonicalized), "normalized" (also the request whose latest
	// user turn normalizes to the same text, package meaning; everything else
	// exact) or "semantic" (also a similar latest user turn that passes the
	// meaning guard). Routes may override it.
	Match string `yaml:"match"`
	// TTL bounds an entry's age (default 1h).
	TTL Duration `yaml:"ttl"`
	// MaxEntryBytes: answers larger than this are not stored (default 1 MiB).
	MaxEntryBytes int `yaml:"max_entry_bytes"`
	// MemoryMB bounds the in-process tier (default 256).
	MemoryMB int `yaml:"memory_mb"`
	// TenantHeader names the request header (set by the mesh's authn) whose
	// value scopes entries: one tenant never receives another's entry.
	TenantHeader string `yaml:"tenant_header"`
	// Redis, when set, is the tier shared by all replicas.
	Redis *Redis `yaml:"redis"`
	// Semantic configures the semantic tier (match: semantic).
	Semantic *Semantic `yaml:"semantic"`
	// Conversations is the Responses API's conversation state, kept in the
	// same tiers whatever the mode.
	Conversations Conversations `yaml:"conversations"`
}

// Conversations configures the Responses API's conversation state: every
// response served to a request without store: false is kept (its input and
// output items, per tenant) in process and in cache.redis when set, so any
// replica resolves previous_response_id and serves GET and DELETE
// /v1/responses/{id} (package conversation).
type Conversations struct {
	// Mode: "on" (default) or "off" (nothing kept; previous_response_id and
	// /v1/responses/{id} pass to OpenAI backends untouched).
	Mode string `yaml:"mode"`
	// TTL bounds how long a response is kept (default 24h).
	TTL Duration `yaml:"ttl"`
	// MaxBytes: a response whose input and output together are larger is not
	// kept (default 4 MiB).
	MaxBytes int `yaml:"max_bytes"`
	// MemoryMB bounds the in-process tier (default 64).
	MemoryMB int `yaml:"memory_mb"`
}

// Feedback configures quality feedback (POST /v1/feedback): every answer's
// request record (model, backend, pool, route, class, tenant) is kept for
// Window in process and in cache.redis when set, so any replica accepts
// feedback for any request within the window (package feedback).
type Feedback struct {
	// Mode: "on" (default) or "off" (no records kept; /v1/feedback is an
	// unknown URL).
	Mode string `yaml:"mode"`
	// Window is how long after a request its feedback is accepted (default
	// 24h, at most MaxFeedbackWindow).
	Window Duration `yaml:"window"`
	// MaxRecords bounds the in-process tier (default 100000 records, about
	// 300 bytes each); past it the oldest records make room.
	MaxRecords int `yaml:"max_records"`
}

// MaxFeedbackWindow bounds feedback.window: records are kept in memory.
const MaxFeedbackWindow = 30 * 24 * time.Hour

// Redis is the shared cache tier.
type Redis struct {
	Addr     string     `yaml:"addr"`
	Password Credential `yaml:"password"`
	DB       int        `yaml:"db"`
	// Timeout bounds each Redis call; past it the request goes on uncached
	// (default 50ms).
	Timeout   Duration `yaml:"timeout"`
	KeyPrefix string   `yaml:"key_prefix"` // default "llmproc:"
}

// Metrics configures what llmproc's metrics may label.
type Metrics struct {
	// Tenants lists the tenant values (from the tenant header) that get their
	// own tenant label on llmproc_cost_usd_total; any other tenant is
	// "other", so the label stays bounded. Empty: no tenant label value.
	Tenants []string `yaml:"tenants"`
}
