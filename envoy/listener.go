package envoy

import (
	"fmt"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	mutationv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	celv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/filters/cel/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	earlyhmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/extproc"
)

// Filter and extension names used on the listener.
const (
	HCMFilterName    = "envoy.filters.network.http_connection_manager"
	RouterFilterName = "envoy.filters.http.router"
	StdoutLoggerName = "envoy.access_loggers.stdout"
)

// LocalReplyFlags are the response flags of the Envoy-generated failures that
// local_reply_config rewrites into OpenAI error JSON. Each marks a reply Envoy
// itself produced because no usable upstream answer exists:
//
//	UH no healthy upstream      UF upstream connection failure
//	UO upstream overflow        NR no route configured
//	NC no cluster found         URX retry or connect attempts exhausted
//	UT upstream request timeout UC upstream connection termination
//	UR upstream remote reset    LR connection local reset
//	UPE upstream protocol error UMSDR upstream max stream duration reached
//	SI stream idle timeout      DPE downstream protocol error (Envoy's 400)
//	OM overload manager         DF DNS resolution failed
//
// Left out on purpose: DC and DR (the client is gone, nobody reads the body),
// LH (no local health checking is configured), RL, RLSE and UAEX (rate-limit and
// ext_authz filters write their own bodies), DI and FI (fault injection), IH,
// RFCF, NFCF, DT, DO and UDO (features this bootstrap does not use).
//
// llmproc's own ext_proc immediate responses carry none of these flags, so
// they (already OpenAI JSON) pass through unchanged; so does the catch-all 400.
var LocalReplyFlags = []string{"UH", "UF", "UO", "NR", "NC", "URX", "UT", "UC", "UR", "LR", "UPE", "UMSDR", "SI", "DPE", "OM", "DF"}

// ExhaustedFlags are the LocalReplyFlags that mean Envoy gave up on a pool
// without a provider answer to pass on: no healthy backend (UH), or the last
// try it was allowed ended in a connect failure, a reset, a per-try timeout
// or a protocol error (UF, UC, UR, UT, UPE; URX when retries ran out). A
// request with one of them and an x-llmproc-pool header gets the
// pool_exhausted error, like a last provider error rewritten by the upstream
// role. Overflow (UO, circuit breaking) is not among them: Envoy refused to
// try, no backend failed.
var ExhaustedFlags = []string{"UH", "UF", "URX", "UT", "UC", "UR", "UPE"}

// Listener is the client-facing listener on envoy.listen. Its connection buffer
// limit is BufferLimit, above limits.max_request_bytes, so the router role's
// BUFFERED body can exceed the limit and llmproc answers the 413.
func Listener(rt *config.Runtime) (*listenerv3.Listener, error) {
	return listener(rt, HTTPConnectionManager(rt))
}

// listener is the client-facing listener around an HTTP connection manager;
// the static and the ADS renderings differ only in the HCM's route source.
func listener(rt *config.Runtime, hcm *hcmv3.HttpConnectionManager) (*listenerv3.Listener, error) {
	addr, err := socketAddress(rt.Source.Envoy.Listen)
	if err != nil {
		return nil, fmt.Errorf("envoy.listen: %w", err)
	}
	return &listenerv3.Listener{
		Name:                          ListenerName,
		Address:                       addr,
		PerConnectionBufferLimitBytes: wrapperspb.UInt32(uint32(BufferLimit(rt))),
		FilterChains: []*listenerv3.FilterChain{{
			Filters: []*listenerv3.Filter{{
				Name:       HCMFilterName,
				ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: typed(hcm)},
			}},
		}},
	}, nil
}

// HTTPConnectionManager runs the router-role ext_proc filter and the router
// over the pool routes (inline RouteConfiguration), logs every request, and
// maps Envoy's own failures to OpenAI error JSON.
// Over ADS the same HCM takes its routes from RDS instead (ADSListener).
func HTTPConnectionManager(rt *config.Runtime) *hcmv3.HttpConnectionManager {
	var filters []*hcmv3.HttpFilter
	if jf := JWTFilter(rt); jf != nil {
		filters = append(filters, jf) // before llmproc: it reads the verified payload
	}
	filters = append(filters, RouterFilter(rt), &hcmv3.HttpFilter{
		Name:       RouterFilterName,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: typed(&routerv3.Router{UpstreamLog: []*accesslogv3.AccessLog{stdoutLog(upstreamLogFormat())}})},
	})
	return &hcmv3.HttpConnectionManager{
		StatPrefix:        "llmproc",
		CodecType:         hcmv3.HttpConnectionManager_AUTO,
		StreamIdleTimeout: durationpb.New(rt.Source.Envoy.IdleTimeout.Duration),
		RouteSpecifier:    &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: RouteConfiguration(rt)},
		HttpFilters:       filters,
		AccessLog:         []*accesslogv3.AccessLog{stdoutLog(accessLogFormat())},
		LocalReplyConfig:  localReplyConfig(rt),
		// Every client is external: the HCM strips the x-envoy-* control
		// headers (x-envoy-max-retries, -retry-on, -upstream-rq-timeout-ms,
		// …) from each request (cleanInternalHeaders in
		// source/common/http/conn_manager_utility.cc), so no client can
		// change the tries llmproc counts on. use_remote_address takes the
		// peer as the client, and no internal_address_config trusts no
		// address (Envoy's default since 1.36). An empty one would not: it
		// falls back to RFC 1918 and loopback (InternalAddressConfig in
		// http_connection_manager/config.h), pod addresses included.
		UseRemoteAddress: wrapperspb.Bool(true),
		// identity.source header with a trusted setter among Envoy's
		// filters: a client's copy of the tenant header is removed before
		// route matching and every HTTP filter, so only the setter can
		// set it (see StripTenantHeader).
		EarlyHeaderMutationExtensions: stripTenant(rt),
		Tracing:                       Tracing(rt),
	}
}

// EarlyHeaderMutationName is the early header mutation extension that
// removes a client-sent tenant header.
const EarlyHeaderMutationName = "envoy.http.early_header_mutation.header_mutation"

func stripTenant(rt *config.Runtime) []*corev3.TypedExtensionConfig {
	h := rt.Source.StripTenantHeader()
	if h == "" {
		return nil
	}
	return []*corev3.TypedExtensionConfig{{
		Name: EarlyHeaderMutationName,
		TypedConfig: typed(&earlyhmv3.HeaderMutation{Mutations: []*mutationv3.HeaderMutation{{
			Action: &mutationv3.HeaderMutation_Remove{Remove: h},
		}}}),
	}}
}

// localReplyConfig rewrites the bodies of Envoy-generated failures (selected by
// LocalReplyFlags) as OpenAI error JSON; other local replies are untouched.
// Failures that end a pool's request (on a request the router role gave a
// pool) say so first, code pool_exhausted, in Anthropic's error shape for
// /v1/messages clients: those where Envoy's circuit breaker refused a retry
// or the request (UO), then those that exhausted the pool (ExhaustedFlags),
// naming the pool, the attempts made and the last failure. The rest keep
// Envoy's response code details as the code.
//
// Pool and client come from the router role's dynamic metadata (llmproc:pool,
// llmproc:client), not from request headers: every attempt shares the one
// request-header map, and the upstream role removes the x-llmproc-* headers
// from it before a provider sees them, so by the time of a local reply they
// are gone (see extproc.KeyPool).
//
// The body has no "param": null. Envoy's json_format accepts only strings,
// numbers, lists and nested structs (a null or bool is rejected when the
// config loads), and a text_format JSON template would break on a reply body
// containing a quote. OpenAI clients treat a missing param like a null one.
// A json_format value that mixes text and command operators is rendered as
// one string, an operator without a value as "-".
func localReplyConfig(rt *config.Runtime) *hcmv3.LocalReplyConfig {
	const tail = " (attempts: %UPSTREAM_REQUEST_ATTEMPT_COUNT%; last failure: %LOCAL_REPLY_BODY%; details: %RESPONSE_CODE_DETAILS%)"
	pool := "Pool \"" + metadataOp(extproc.KeyPool) + "\" "
	overflow := pool + "is exhausted: Envoy's circuit breaker for the pool's cluster refused a retry or the request " +
		"(response flag UO: more in flight than max_retries or max_requests; raise envoy.max_concurrent_requests)" + tail
	exhausted := pool + "is exhausted: no backend answered" + tail
	generic := openAIError("%LOCAL_REPLY_BODY%", "upstream_error", "%RESPONSE_CODE_DETAILS%")
	mappers := jwtMappers(rt)
	mappers = append(mappers, poolMappers(flagFilter([]string{"UO"}), overflow)...)
	mappers = append(mappers, poolMappers(flagFilter(ExhaustedFlags), exhausted)...)
	mappers = append(mappers, detailMappers(rt)...)
	mappers = append(mappers, jsonMapper(flagFilter(LocalReplyFlags), generic))
	return &hcmv3.LocalReplyConfig{Mappers: append(mappers, envoyErrorMappers()...)}
}

// envoyErrorMappers are the last resort for Envoy's own 5xx replies that
// carry no response flag and no details a mapper above knows: mostly
// ext_proc replies Envoy refused (Filter::handleErrorResponse in
// source/extensions/filters/http/ext_proc/ext_proc.cc, details the error
// message, such as mismatch_between_content_length_and_the_length_of_the_mutated_body,
// and an empty body). llmproc's own immediate responses (details llmproc_*)
// are left alone.
func envoyErrorMappers() []*hcmv3.ResponseMapper {
	const cond = "response.code >= 500 && !response.code_details.startsWith('llmproc_')"
	const msg = "The gateway failed the request itself (status %RESPONSE_CODE%, details: %RESPONSE_CODE_DETAILS%)"
	return []*hcmv3.ResponseMapper{
		jsonMapper(celFilter(cond+" && request.path.startsWith('/v1/messages')"), anthropicError("api_error", msg)),
		jsonMapper(celFilter(cond+" && "+geminiPathCond), googleError(msg, "INTERNAL", 0)),
		jsonMapper(celFilter(cond), openAIError(msg, "server_error", "%RESPONSE_CODE_DETAILS%")),
	}
}

// CELFilterName is the access-log extension filter that evaluates a CEL
// expression over Envoy's attributes; a local reply mapper can match
// response.code_details with it, which no built-in filter can.
const CELFilterName = "envoy.access_loggers.extension_filters.cel"

// Response code details of Envoy's own ext_proc failures
// (source/extensions/filters/http/ext_proc/ext_proc.cc): onGrpcError answers
// status_on_error (default 500) with ext_proc_error_gRPC_error_<code>{msg},
// which is also what a stream to an unreachable, refusing or draining llmproc
// ends with (UNAVAILABLE, 14); onMessageTimeout answers 504 with
// ext_proc_error_per-message_timeout_exceeded. Neither sets a response flag,
// so the flag mappers never see them.
const (
	ExtProcGRPCErrorDetails = "ext_proc_error_gRPC_error"
	ExtProcTimeoutDetails   = "ext_proc_error_per-message_timeout_exceeded"
	// CodeLLMProcUnavailable and CodeLLMProcTimeout are the error codes
	// clients get for them.
	CodeLLMProcUnavailable = "llmproc_unavailable"
	CodeLLMProcTimeout     = "llmproc_timeout"
	// PayloadTooLargeDetails is Envoy's 413 for a request body above the
	// buffer limit (StreamInfo::ResponseCodeDetails::RequestPayloadTooLarge).
	PayloadTooLargeDetails = "request_payload_too_large"
)

// detailMappers turn Envoy's own failures that carry no response flag,
// and an empty or plain-text body, into error JSON, matched on their
// response code details: an ext_proc gRPC error becomes 503 saying llmproc
// was unreachable (retrying later may work), a message timeout stays 504
// saying it was slow, and a body above the rendered buffer limit (Envoy's
// 413, details request_payload_too_large) says so. The router role may never
// have run, so the client's API is told from the path: Anthropic's error
// shape for /v1/messages, OpenAI's for the rest.
func detailMappers(rt *config.Runtime) []*hcmv3.ResponseMapper {
	var out []*hcmv3.ResponseMapper
	for _, f := range []struct {
		cond, code, typ, anthropicType, googleStatus, msg string
		status                                            uint32
	}{
		{"response.code_details.startsWith('" + ExtProcGRPCErrorDetails + "')", CodeLLMProcUnavailable, "server_error", "api_error", "UNAVAILABLE",
			"The gateway could not reach llmproc, its ext_proc server (unreachable, draining or failing; details: %RESPONSE_CODE_DETAILS%); retry later", 503},
		{"response.code_details == '" + ExtProcTimeoutDetails + "'", CodeLLMProcTimeout, "server_error", "api_error", "DEADLINE_EXCEEDED",
			fmt.Sprintf("llmproc, the gateway's ext_proc server, did not answer within %s (envoy.message_timeout); retry later", rt.Source.Envoy.MessageTimeout.Duration), 504},
		{"response.code_details == '" + PayloadTooLargeDetails + "'", "request_too_large", "invalid_request_error", "request_too_large", "INVALID_ARGUMENT",
			fmt.Sprintf("The request body exceeds the gateway's buffer of %d bytes (limits.max_request_bytes is %d)", BufferLimit(rt), rt.Source.Limits.MaxRequestBytes), 413},
	} {
		am := jsonMapper(celFilter(f.cond+" && request.path.startsWith('/v1/messages')"), anthropicError(f.anthropicType, f.msg))
		gm := jsonMapper(celFilter(f.cond+" && "+geminiPathCond), googleError(f.msg, f.googleStatus, f.status))
		om := jsonMapper(celFilter(f.cond), openAIError(f.msg, f.typ, f.code))
		am.StatusCode, gm.StatusCode, om.StatusCode = wrapperspb.UInt32(f.status), wrapperspb.UInt32(f.status), wrapperspb.UInt32(f.status)
		out = append(out, am, gm, om)
	}
	return out
}

func celFilter(expr string) *accesslogv3.AccessLogFilter {
	return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_ExtensionFilter{
		ExtensionFilter: &accesslogv3.ExtensionFilter{
			Name:       CELFilterName,
			ConfigType: &accesslogv3.ExtensionFilter_TypedConfig{TypedConfig: typed(&celv3.ExpressionFilter{Expression: expr})},
		},
	}}
}

// poolMappers answer a failure matching f on a request the router role gave
// a pool with a pool_exhausted error saying msg: Anthropic's shape for
// Anthropic clients, OpenAI's for the rest.
func poolMappers(f *accesslogv3.AccessLogFilter, msg string) []*hcmv3.ResponseMapper {
	poolSet := metadataFilter(extproc.KeyPool, &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_PresentMatch{PresentMatch: true}})
	return []*hcmv3.ResponseMapper{
		jsonMapper(andFilter(f, poolSet, anthropicClient()), anthropicError("api_error", msg)),
		jsonMapper(andFilter(f, poolSet, clientIs(GeminiClient)), googleError(msg, "UNAVAILABLE", 0)),
		jsonMapper(andFilter(f, poolSet), openAIError(msg, "server_error", extproc.CodePoolExhausted)),
	}
}

// openAIError and anthropicError are json_format bodies in each API's
// error shape.
func openAIError(msg, typ, code string) *structpb.Struct {
	return &structpb.Struct{Fields: map[string]*structpb.Value{
		"error": structpb.NewStructValue(strct(map[string]string{"message": msg, "type": typ, "code": code})),
	}}
}

func anthropicError(typ, msg string) *structpb.Struct {
	return &structpb.Struct{Fields: map[string]*structpb.Value{
		"type":  structpb.NewStringValue("error"),
		"error": structpb.NewStructValue(strct(map[string]string{"type": typ, "message": msg})),
	}}
}

// anthropicClient matches requests the router role marked as coming from an
// Anthropic Messages API client.
func anthropicClient() *accesslogv3.AccessLogFilter { return clientIs(AnthropicClient) }

// clientIs matches requests the router role marked as coming from a client
// of the API named client.
func clientIs(client string) *accesslogv3.AccessLogFilter {
	return metadataFilter(extproc.KeyClient, &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_StringMatch{
		StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: client}}}})
}

// GeminiClient is the llmproc:client metadata value for clients of Google's
// Gemini API; geminiPathCond tells their requests by the path when the
// router role may not have run (everything under /v1beta/, and the methods
// under /v1/models/).
const (
	GeminiClient   = "gemini"
	geminiPathCond = "(request.path.startsWith('/v1beta/') || request.path.startsWith('/v1/models/') && request.path.contains(':'))"
)

// googleError is a json_format body in Google's error shape. code 0 is the
// reply's own status (%RESPONSE_CODE%, a number in json_format).
func googleError(msg, status string, code uint32) *structpb.Struct {
	c := structpb.NewStringValue("%RESPONSE_CODE%")
	if code != 0 {
		c = structpb.NewNumberValue(float64(code))
	}
	return &structpb.Struct{Fields: map[string]*structpb.Value{
		"error": structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
			"code": c, "message": structpb.NewStringValue(msg), "status": structpb.NewStringValue(status),
		}}),
	}}
}

// AnthropicClient is the llmproc:client metadata value the router role sets
// for clients of Anthropic's Messages API.
const AnthropicClient = "anthropic"

// jsonMapper answers a local reply matching f with body. Envoy's own error
// answers carry x-llmproc-request-id too, as llmproc's do: the mapper's
// headers are formatted with the request's headers
// (source/common/local_reply/local_reply.cc, ResponseMapper::rewrite).
func jsonMapper(f *accesslogv3.AccessLogFilter, body *structpb.Struct) *hcmv3.ResponseMapper {
	return &hcmv3.ResponseMapper{
		Filter: f,
		BodyFormatOverride: &corev3.SubstitutionFormatString{
			Format:      &corev3.SubstitutionFormatString_JsonFormat{JsonFormat: body},
			ContentType: "application/json",
		},
		HeadersToAdd: []*corev3.HeaderValueOption{{
			Header:       &corev3.HeaderValue{Key: extproc.HeaderRequestID, Value: "%REQ(X-REQUEST-ID)%"},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		}},
	}
}

func flagFilter(flags []string) *accesslogv3.AccessLogFilter {
	return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_ResponseFlagFilter{
		ResponseFlagFilter: &accesslogv3.ResponseFlagFilter{Flags: flags},
	}}
}

// metadataFilter matches requests whose llmproc dynamic metadata key
// matches v; a request without the key does not match.
func metadataFilter(key string, v *matcherv3.ValueMatcher) *accesslogv3.AccessLogFilter {
	return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_MetadataFilter{
		MetadataFilter: &accesslogv3.MetadataFilter{
			Matcher: &matcherv3.MetadataMatcher{Filter: MetadataNamespace,
				Path:  []*matcherv3.MetadataMatcher_PathSegment{{Segment: &matcherv3.MetadataMatcher_PathSegment_Key{Key: key}}},
				Value: v},
			MatchIfKeyNotFound: wrapperspb.Bool(false),
		},
	}}
}

// metadataOp is the format operator printing an llmproc metadata key.
func metadataOp(key string) string {
	return "%DYNAMIC_METADATA(" + MetadataNamespace + ":" + key + ")%"
}

func andFilter(fs ...*accesslogv3.AccessLogFilter) *accesslogv3.AccessLogFilter {
	return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_AndFilter{
		AndFilter: &accesslogv3.AndFilter{Filters: fs},
	}}
}

func stdoutLog(format *structpb.Struct) *accesslogv3.AccessLog {
	return &accesslogv3.AccessLog{
		Name: StdoutLoggerName,
		ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: typed(&streamv3.StdoutAccessLog{
			AccessLogFormat: &streamv3.StdoutAccessLog_LogFormat{LogFormat: &corev3.SubstitutionFormatString{
				Format: &corev3.SubstitutionFormatString_JsonFormat{JsonFormat: format},
			}},
		})},
	}
}

// accessLogFormat is the HCM's one line per client request. The llmproc
// dynamic metadata is visible here whichever role wrote it: the upstream HTTP
// filter manager hands its filters the downstream request's StreamInfo
// (UpstreamFilterManager::streamInfo returns the router's callbacks'
// streamInfo), so the upstream role's usage and cost land on the same
// metadata the router role wrote, the last attempt's values winning.
//
// The router role writes the request's decisions (client, tenant, route,
// class, cache, trace_id), the upstream role each attempt's backend, usage,
// cost, outcome and budget result (filter/extproc/accesslog.go): the token
// fields are exactly those priced into cost_usd.
func accessLogFormat() *structpb.Struct {
	f := map[string]string{
		"start_time":            "%START_TIME%",
		"request_id":            "%REQ(X-REQUEST-ID)%",
		"method":                "%REQ(:METHOD)%",
		"path":                  "%REQ(:PATH)%",
		"response_code":         "%RESPONSE_CODE%",
		"response_code_details": "%RESPONSE_CODE_DETAILS%",
		"response_flags":        "%RESPONSE_FLAGS%",
		"upstream_cluster":      "%UPSTREAM_CLUSTER%",
		"upstream_host":         "%UPSTREAM_HOST%",
		"attempts":              "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
		"duration_ms":           "%DURATION%",
	}
	for _, k := range extproc.AccessLogKeys() {
		f[k] = metadataOp(k)
	}
	// The caller's tenant (the key's under identity client_keys); "tenant"
	// in the metadata is the bounded metrics label.
	f["tenant"] = metadataOp("caller_tenant")
	return strct(f)
}

// upstreamLogFormat is the router's one line per attempt. It carries no
// llmproc dynamic metadata: the router logs attempts with the UpstreamRequest's
// own StreamInfo, which upstream filters never write to (they write to the
// downstream one, see accessLogFormat), so %DYNAMIC_METADATA(llmproc:…)% would
// always print "-" here. The attempt's backend comes from the chosen host's
// endpoint metadata instead and its pool from the cluster name; the route is
// on the request's access log line (same request_id). The request headers
// are no help: the upstream role has removed the x-llmproc-* ones by then.
func upstreamLogFormat() *structpb.Struct {
	return strct(map[string]string{
		"start_time":       "%START_TIME%",
		"request_id":       "%REQ(X-REQUEST-ID)%",
		"response_code":    "%RESPONSE_CODE%",
		"response_flags":   "%RESPONSE_FLAGS%",
		"upstream_cluster": "%UPSTREAM_CLUSTER%",
		"upstream_host":    "%UPSTREAM_HOST%",
		"duration_ms":      "%DURATION%",
		"backend":          "%UPSTREAM_METADATA(" + MetadataNamespace + ":" + BackendKey + ")%",
	})
}
