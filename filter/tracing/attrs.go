package tracing

import "go.opentelemetry.io/otel/attribute"

// The GenAI attributes of SemConvVersion (model/gen-ai/registry.yaml of
// open-telemetry/semantic-conventions v1.41.0), and error.type.
const (
	OperationName       = attribute.Key("gen_ai.operation.name")
	ProviderName        = attribute.Key("gen_ai.provider.name")
	RequestModel        = attribute.Key("gen_ai.request.model")
	RequestStream       = attribute.Key("gen_ai.request.stream")
	ResponseModel       = attribute.Key("gen_ai.response.model")
	ResponseFinish      = attribute.Key("gen_ai.response.finish_reasons")
	TimeToFirstChunk    = attribute.Key("gen_ai.response.time_to_first_chunk")
	InputTokens         = attribute.Key("gen_ai.usage.input_tokens") // cached and cache-written included
	OutputTokens        = attribute.Key("gen_ai.usage.output_tokens")
	CacheReadTokens     = attribute.Key("gen_ai.usage.cache_read.input_tokens")
	CacheCreationTokens = attribute.Key("gen_ai.usage.cache_creation.input_tokens")
	ReasoningTokens     = attribute.Key("gen_ai.usage.reasoning.output_tokens")
	InputMessages       = attribute.Key("gen_ai.input.messages")  // opt-in (tracing.capture_content)
	OutputMessages      = attribute.Key("gen_ai.output.messages") // opt-in (tracing.capture_content)
	ErrorType           = attribute.Key("error.type")
	ServerAddress       = attribute.Key("server.address")
	HTTPResponseStatus  = attribute.Key("http.response.status_code")
	HTTPRequestMethod   = attribute.Key("http.request.method")
	URLPath             = attribute.Key("url.path")
)

// llmproc's own attributes.
const (
	Pool      = attribute.Key("llmproc.pool")
	Route     = attribute.Key("llmproc.route")
	Class     = attribute.Key("llmproc.class")
	Cache     = attribute.Key("llmproc.cache") // hit, miss or bypass
	CostUSD   = attribute.Key("llmproc.cost_usd")
	Attempt   = attribute.Key("llmproc.attempt") // Envoy's x-envoy-attempt-count, from 1
	Backend   = attribute.Key("llmproc.backend")
	RequestID = attribute.Key("llmproc.request_id")
	Client    = attribute.Key("llmproc.client") // the client's API
	Tenant    = attribute.Key("llmproc.tenant")
	Outcome   = attribute.Key("llmproc.outcome")
	// UsageEstimated marks usage llmproc estimated (the answer reported none).
	UsageEstimated = attribute.Key("llmproc.usage_estimated")
	// ContentTruncated marks captured content cut at capture_max_bytes.
	ContentTruncated = attribute.Key("llmproc.content_truncated")
)

// Providers maps a backend schema to its gen_ai.provider.name.
var Providers = map[string]string{
	"openai":            "openai",
	"openai-compatible": "openai",
	"azure-openai":      "azure.ai.openai",
	"anthropic":         "anthropic",
	"gemini":            "gcp.gemini",
	"vertex":            "gcp.vertex_ai",
	"bedrock":           "aws.bedrock",
}
