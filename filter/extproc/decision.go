package extproc

import (
	"google.golang.org/protobuf/types/known/structpb"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// Keys of the router role's decisions in the llmproc dynamic metadata.
//
// The router hands its decisions to the upstream role as dynamic metadata,
// not as request headers. Envoy gives every attempt the one request-header
// map (UpstreamRequest decodes *parent_.downstreamHeaders() each time), so a
// header the first attempt removes, and it must remove every x-llmproc-*
// header before a provider sees it, is gone for the second. Dynamic metadata
// stays: the router role's reply stores it on the downstream stream info
// (metadata_options.receiving_namespaces), the upstream filter manager's
// streamInfo() is that same one (UpstreamFilterManager in
// source/common/router/upstream_request.cc), and the upstream filter sends
// it on each message as metadata_context (forwarding_namespaces; ext_proc.cc
// addDynamicMetadata). Only x-llmproc-pool is a header, for Envoy to route on.
const (
	KeyPool   = "pool"
	KeyRoute  = "route"
	KeyClient = "client" // the client's API (openai, anthropic)
	KeyTenant = "tenant" // the bounded tenant label for cost metrics
	// KeyCallerTenant is the caller's tenant and KeyKeyID its client key's
	// public id, for the access log (never the key).
	KeyCallerTenant   = "caller_tenant"
	KeyKeyID          = "key_id"
	KeyRequestedModel = "requested_model"
	// KeyTarget names the model a routing rule chose to send instead of the
	// client's; a pool member's own model override still wins.
	KeyTarget = "target_model"
	KeyClass  = "class" // the task class, when a rule needed it
	// KeyClassConfidence is the classifier's probability for the class
	// (three decimals; 1 for kind keywords).
	KeyClassConfidence = "class_confidence"
	KeyCache           = "cache" // the router's cache result: miss or bypass
	// KeyCacheKey: store a complete answer under these keys (hex, joined by
	// ","; the exact key first, then one per fuzzier tier of cache.match).
	KeyCacheKey = "cache_key"
	// KeyReservation is the budget reservation to settle (base64url JSON).
	KeyReservation = "reservation"
	// KeyAnthropicVersion and KeyAnthropicBeta are an Anthropic client's
	// anthropic-version and anthropic-beta headers, for a native Anthropic
	// attempt: the first attempt removes them from the shared header map.
	KeyAnthropicVersion = "anthropic_version"
	// KeyEndpoint is "count_tokens" for POST /v1/messages/count_tokens, absent
	// for a completion.
	KeyEndpoint      = "endpoint"
	KeyAnthropicBeta = "anthropic_beta"
	// KeyRequestID is the request's id: Envoy's x-request-id, or one llmproc
	// made (HeaderRequestID). KeyTraceID is the W3C trace id of the
	// request's traceparent, for the access log.
	KeyRequestID = "request_id"
	KeyTraceID   = "trace_id"
	// KeySpanID is the parent span id of the request's traceparent (the
	// span that sent the request to Envoy), kept in the feedback record.
	KeySpanID = "span_id"
	// KeyAttemptBackends lists the backend of every attempt so far, comma
	// separated: each attempt's upstream role reads the list the last one
	// wrote and adds its own (the access log shows the final list).
	KeyAttemptBackends = "attempt_backends"
)

// decisions are the router's decisions as an upstream stream received them.
type decisions map[string]*structpb.Value

func decisionsOf(req *extprocv3.ProcessingRequest) decisions {
	return req.GetMetadataContext().GetFilterMetadata()[MetadataNamespace].GetFields()
}

func (d decisions) get(key string) string { return d[key].GetStringValue() }
