package envoy

import (
	"slices"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	previoushostsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	previousprioritiesv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/extproc"
)

// RetryOn is the router's retry condition: connection failures and resets
// before response headers, plus extproc.RetriableStatusCodes (shared with
// the upstream role, which treats one of them on the last try as the pool
// being exhausted), plus an answer carrying extproc.HeaderCredentialRetry:
// the provider refused a backend's key (401, 403) and the backend has
// another (backends[].credential_next). Only the upstream role sets that
// header, so a 401 or 403 from a backend with one key is not retried. The
// router decides on the response headers as the upstream HTTP filters left
// them (the upstream filter chain ends in
// UpstreamRequestFilterManagerCallbacks::encodeHeaders, which hands them to
// the router: source/common/router/upstream_request.h) and matches
// retriable_headers in RetryStateImpl::wouldRetryFromHeaders
// (source/common/router/retry_state_impl.cc).
const RetryOn = "connect-failure,refused-stream,reset,retriable-status-codes,retriable-headers"

// NoPoolBody is the catch-all route's answer when the router role selected no
// pool (llmproc unreachable in fail-open setups, or a request that bypassed it).
const NoPoolBody = `{"error":{"message":"no LLM pool was selected for this request","type":"invalid_request_error","param":null,"code":"no_pool"}}`

// NoPoolAnthropicBody is that answer in Anthropic's error shape, for the
// /v1/messages paths.
const NoPoolAnthropicBody = `{"type":"error","error":{"type":"invalid_request_error","message":"no LLM pool was selected for this request"}}`

// NoPoolGeminiBody is that answer in Google's error shape, for the Gemini
// API's /v1beta/ paths.
const NoPoolGeminiBody = `{"error":{"code":400,"message":"no LLM pool was selected for this request","status":"FAILED_PRECONDITION"}}`

// BufferLimit is the byte limit rendered for the listener's connection buffer
// and each pool route's request body buffer: twice limits.max_request_bytes, so
// that a too-large body reaches llmproc, which answers 413 with OpenAI JSON,
// instead of Envoy answering 413 with a plain-text body.
func BufferLimit(rt *config.Runtime) int64 { return 2 * rt.Source.Limits.MaxRequestBytes }

// RouteConfiguration is the route table named RouteConfigName: one virtual
// host for every domain with Routes. It is inline in the static bootstrap's
// HCM and the RDS resource when llmproc serves Envoy over ADS.
func RouteConfiguration(rt *config.Runtime) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{
		Name: RouteConfigName,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    VirtualHostName,
			Domains: []string{"*"},
			Routes:  Routes(rt),
			// x-envoy-attempt-count tells the upstream role which try it
			// serves, so the last failed try can release the budget
			// reservation.
			IncludeRequestAttemptCount: true,
		}},
	}
}

// Routes is the virtual host's route table: one route per pool, matching the
// x-llmproc-pool header the router role sets, then catch-alls answering 400:
// Anthropic's error shape under /v1/messages, Google's under /v1beta/,
// OpenAI's elsewhere.
func Routes(rt *config.Runtime) []*routev3.Route {
	var out []*routev3.Route
	for _, p := range pools(rt) {
		out = append(out, poolRoute(rt, p.Name))
	}
	return append(out, noPoolRoute("no-pool-anthropic", "/v1/messages", NoPoolAnthropicBody),
		noPoolRoute("no-pool-gemini", "/v1beta/", NoPoolGeminiBody), noPoolRoute("no-pool", "/", NoPoolBody))
}

// poolRoute sends a pool's requests to its cluster. timeout 0s because the
// route timeout would span every attempt and the whole streamed answer; the
// idle timeout bounds stalls instead, and per_try_timeout the wait for
// response headers. Retries move down the pool's priorities
// (previous_priorities) and away from hosts already tried (previous_hosts).
func poolRoute(rt *config.Runtime, pool string) *routev3.Route {
	e := rt.Source.Envoy
	return &routev3.Route{
		Name: PoolClusterName(pool),
		Match: &routev3.RouteMatch{
			PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"},
			Headers: []*routev3.HeaderMatcher{{
				Name: PoolHeader,
				HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
					MatchPattern: &matcherv3.StringMatcher_Exact{Exact: pool},
				}},
			}},
		},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier:     &routev3.RouteAction_Cluster{Cluster: PoolClusterName(pool)},
			Timeout:              durationpb.New(0),
			IdleTimeout:          durationpb.New(e.IdleTimeout.Duration),
			HostRewriteSpecifier: &routev3.RouteAction_AutoHostRewrite{AutoHostRewrite: wrapperspb.Bool(true)},
			RetryPolicy:          retryPolicy(rt),
		}},
		RequestBodyBufferLimit: wrapperspb.UInt64(uint64(BufferLimit(rt))),
		// In a mesh the gateway may count some clients as internal and keep
		// their x-envoy-* headers; the router applies this removal before
		// it reads the retry headers (finalizeRequestHeaders precedes
		// createRetryState in Filter::decodeHeaders,
		// source/common/router/router.cc), so tries stay the config's.
		RequestHeadersToRemove: slices.Clone(RetryControlHeaders),
		// The retry signal never reaches a client: the router applies
		// this after its retry decision (finalizeResponseHeaders in
		// Filter::onUpstreamHeaders, source/common/router/router.cc).
		ResponseHeadersToRemove: []string{extproc.HeaderCredentialRetry},
	}
}

// RetryControlHeaders are the client headers Envoy's router would read to
// change a route's retry policy (RetryStateImpl in
// source/common/router/retry_state_impl.cc); every pool route removes them.
var RetryControlHeaders = []string{
	"x-envoy-max-retries", "x-envoy-retry-on", "x-envoy-retry-grpc-on",
	"x-envoy-retriable-status-codes", "x-envoy-retriable-header-names",
}

func retryPolicy(rt *config.Runtime) *routev3.RetryPolicy {
	e := rt.Source.Envoy
	return &routev3.RetryPolicy{
		RetryOn:              RetryOn,
		RetriableStatusCodes: slices.Clone(extproc.RetriableStatusCodes),
		RetriableHeaders: []*routev3.HeaderMatcher{{
			Name:                 extproc.HeaderCredentialRetry,
			HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true},
		}},
		NumRetries:    wrapperspb.UInt32(*e.NumRetries),
		PerTryTimeout: durationpb.New(e.PerTryTimeout.Duration),
		RetryBackOff: &routev3.RetryPolicy_RetryBackOff{
			BaseInterval: durationpb.New(250 * time.Millisecond),
			MaxInterval:  durationpb.New(extproc.RetryMaxBackOff),
		},
		RateLimitedRetryBackOff: &routev3.RetryPolicy_RateLimitedRetryBackOff{
			ResetHeaders: []*routev3.RetryPolicy_ResetHeader{{Name: "retry-after", Format: routev3.RetryPolicy_SECONDS}},
			MaxInterval:  durationpb.New(extproc.RateLimitedMaxBackOff),
		},
		RetryPriority: &routev3.RetryPolicy_RetryPriority{
			Name: "envoy.retry_priorities.previous_priorities",
			ConfigType: &routev3.RetryPolicy_RetryPriority_TypedConfig{TypedConfig: typed(
				&previousprioritiesv3.PreviousPrioritiesConfig{UpdateFrequency: 1},
			)},
		},
		RetryHostPredicate: []*routev3.RetryPolicy_RetryHostPredicate{{
			Name: "envoy.retry_host_predicates.previous_hosts",
			ConfigType: &routev3.RetryPolicy_RetryHostPredicate_TypedConfig{TypedConfig: typed(
				&previoushostsv3.PreviousHostsPredicate{},
			)},
		}},
		HostSelectionRetryMaxAttempts: 3,
	}
}

// noPoolRoute answers requests under prefix that no pool route matched with
// a 400 and body, an error in the client API's shape. It is also the route a request holds while the router role runs,
// since x-llmproc-pool is only set by llmproc's reply.
func noPoolRoute(name, prefix, body string) *routev3.Route {
	return &routev3.Route{
		Name:  name,
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: prefix}},
		Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
			Status: 400,
			Body:   &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: body}},
		}},
		ResponseHeadersToAdd: []*corev3.HeaderValueOption{{
			Header:       &corev3.HeaderValue{Key: "content-type", Value: "application/json"},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		}},
	}
}
