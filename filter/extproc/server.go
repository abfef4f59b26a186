// Package extproc is llmproc's ext_proc gRPC service. One server plays both
// filter roles: the router (downstream, once per request) and the upstream
// (in each pool cluster, once per attempt). The role comes from the
// x-llmproc-role gRPC metadata that Envoy sends as the filter's
// initial_metadata, so no memory is shared between streams and any replica can
// serve any stream.
//
// The stream loop only receives, dispatches by phase and sends; each role is a
// processor with one method per phase. Client-visible failures are
// *apierr.Error values, turned into an ImmediateResponse in one place
// (immediate).
package extproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/conversation"
	"github.com/llmproc/llmproc/filter/feedback"
	"github.com/llmproc/llmproc/filter/identity"
	"github.com/llmproc/llmproc/filter/metrics"
	"github.com/llmproc/llmproc/filter/semantic"
	"github.com/llmproc/llmproc/filter/tracing"
	"github.com/llmproc/llmproc/filter/translate"
)

// Roles, as sent in the x-llmproc-role gRPC metadata.
const (
	RoleRouter   = "router"
	RoleUpstream = "upstream"
	// RoleHeader is the gRPC metadata key (the filter's initial_metadata)
	// that names the role.
	RoleHeader = "x-llmproc-role"
	// MetadataNamespace is llmproc's dynamic and endpoint metadata namespace.
	MetadataNamespace = "llmproc"
)

// Runtimes gives the current compiled config; *config.Store implements it.
type Runtimes interface {
	Load() *config.Runtime
}

// Options configures a Server.
type Options struct {
	Config Runtimes
	// Cache, when set, enables the response cache.
	Cache *CacheTiers
	// SemanticVectors, when set, replaces the embeddings pool as the
	// semantic tier's source of vectors (tests use a stand-in).
	SemanticVectors semantic.VectorSource
	// Budgets, when set, enables budgets and rate limits.
	Budgets *Budgets
	// Conversations, when set, keeps the Responses API's conversation
	// state (conversation.go).
	Conversations *conversation.Store
	Metrics       *metrics.Metrics
	Logger        *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// MaxReplyBytes is the largest body one reply may carry (the gRPC send
	// limit less framing, see MaxMessageBytes); 0 means no limit.
	MaxReplyBytes int
	// SharedKeys, when set, is the client-key store every replica shares
	// (identity.redis): looked up after the config's keys file.
	SharedKeys KeySource
	// Tracer, when set, makes the spans of each request and attempt
	// (trace.go); nil makes none.
	Tracer *tracing.Tracer
	// Feedback, when set, keeps every answer's request record and serves
	// POST /v1/feedback (feedback.go).
	Feedback *feedback.Store
}

// KeySource holds a copy of a shared client-key store; Keys is nil until
// the first copy has been read. *identity.Refresher implements it.
type KeySource interface {
	Keys() *identity.Keys
}

// Server implements envoy.service.ext_proc.v3.ExternalProcessor.
type Server struct {
	extprocv3.UnimplementedExternalProcessorServer
	cfg Runtimes
	tr  *translate.Set
	// prepared is the runtime whose backends' credentials tr keeps fresh.
	prepared atomic.Pointer[config.Runtime]
	// keys holds the provider keys refused lately (rotation.go).
	keys     keyHealth
	cache    *responseCache
	semantic *semantic.Tier // nil unless cache.semantic is set
	budgets  *Budgets
	shared   KeySource
	conv     *conversation.Store
	feedback *feedback.Store
	metrics  *metrics.Metrics
	tracer   *tracing.Tracer
	log      *slog.Logger
	now      func() time.Time

	maxReply int
	// buffered is what all answers hold right now (answer.go), bufferedPeak
	// the most they ever held.
	buffered, bufferedPeak atomic.Int64
	// open counts the ext_proc streams being served (limits.max_streams);
	// refusedLog rate-limits the warning about refusals (streams.go).
	open, refusedLog atomic.Int64
	// ownedCache holds owned's answer for the config last asked about.
	ownedCache atomic.Pointer[ownedHeaders]
}

// New builds a Server.
func New(o Options) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: o.Config, budgets: o.Budgets, conv: o.Conversations, metrics: o.Metrics, log: o.Logger, now: o.Now, maxReply: o.MaxReplyBytes, shared: o.SharedKeys, tracer: o.Tracer, feedback: o.Feedback}
	s.tr = translate.NewSet(translate.SetOptions{OnCredentialRefresh: s.credentialRefreshed})
	if o.Cache != nil {
		s.cache = &responseCache{CacheTiers: *o.Cache, metrics: o.Metrics, log: o.Logger, now: o.Now}
	}
	if o.Config != nil {
		s.prepare(o.Config.Load())
		if s.cache != nil {
			s.semantic = s.newSemantic(o.Config.Load(), o)
		}
	}
	return s
}

var _ extprocv3.ExternalProcessorServer = (*Server)(nil)

// processor handles one stream of one role, phase by phase. A returned error
// ends the exchange with an ImmediateResponse built from it.
type processor interface {
	requestHeaders(req *extprocv3.ProcessingRequest, h *extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error)
	requestBody(b *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error)
	responseHeaders(h *extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error)
	responseBody(b *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error)
	// done is called once when the stream ends; err is nil for a clean end.
	done(err error)
	// requestID is the request's id (KeyRequestID), once its headers are
	// read; every answer carries it in HeaderRequestID.
	requestID() string
	// immediateMetadata is the dynamic metadata of an immediate response
	// that sets none itself: the access-log fields known so far.
	immediateMetadata() *structpb.Struct
	// clientSchema is the API the client speaks (clientOpenAI,
	// clientAnthropic or clientGemini): errors are rendered in it.
	clientSchema() string
}

// Client schemas: the API a client speaks. Inside, everything is OpenAI.
const (
	clientOpenAI    = "openai"
	clientAnthropic = "anthropic"
)

// renderError writes an error as the client's API renders errors.
func renderError(schema string, e *apierr.Error) []byte {
	switch schema {
	case clientAnthropic:
		return translate.AnthropicError(e)
	case clientGemini:
		return translate.GeminiError(e)
	}
	return e.JSON()
}

// Process serves one ext_proc stream.
func (s *Server) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	ctx := stream.Context()
	role := roleOf(ctx)
	rt := s.cfg.Load()
	s.prepare(rt)
	if role == RoleRouter || role == RoleUpstream {
		// limits.max_streams (streams.go): past it, one message and a
		// 503 in the client's API shape, before any per-stream state.
		n := s.open.Add(1)
		defer s.open.Add(-1)
		if max := int64(rt.Source.Limits.MaxStreams); max > 0 && n > max {
			return s.refuse(stream, role, max)
		}
	}
	var p processor
	switch role {
	case RoleRouter:
		p = &router{s: s, rt: rt, ctx: ctx, envoySpan: s.envoySpan(ctx)}
	case RoleUpstream:
		p = &upstream{s: s, rt: rt, send: stream.Send}
	default:
		return status.Errorf(codes.InvalidArgument, "ext_proc stream without a valid %s metadata (got %q): set it in the filter's grpc_service.initial_metadata", RoleHeader, role)
	}
	if s.metrics != nil {
		defer s.metrics.Streams(role)()
	}
	err := s.loop(stream, role, p)
	p.done(err)
	if err != nil && !isNormalEnd(err) {
		return err
	}
	return nil
}

func (s *Server) loop(stream extprocv3.ExternalProcessor_ProcessServer, role string, p processor) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		start := s.now()
		var (
			resp  *extprocv3.ProcessingResponse
			phase string
		)
		switch r := req.Request.(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			phase = "request_headers"
			resp, err = p.requestHeaders(req, r.RequestHeaders)
		case *extprocv3.ProcessingRequest_RequestBody:
			phase = "request_body"
			resp, err = p.requestBody(r.RequestBody)
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			phase = "response_headers"
			resp, err = p.responseHeaders(r.ResponseHeaders)
		case *extprocv3.ProcessingRequest_ResponseBody:
			phase = "response_body"
			resp, err = p.responseBody(r.ResponseBody)
		case *extprocv3.ProcessingRequest_RequestTrailers:
			phase = "request_trailers"
			resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}}
		case *extprocv3.ProcessingRequest_ResponseTrailers:
			phase = "response_trailers"
			resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}}
		default:
			return status.Errorf(codes.InvalidArgument, "unknown ext_proc request %T", req.Request)
		}
		if err != nil {
			resp = s.immediate(role, p.clientSchema(), p.requestID(), err)
		}
		if im := resp.GetImmediateResponse(); im != nil {
			if a, ok := p.(answeredLocally); ok {
				a.answered(int(im.GetStatus().GetCode()), im.GetDetails())
			}
			if id := p.requestID(); id != "" {
				if im.Headers == nil {
					im.Headers = &extprocv3.HeaderMutation{}
				}
				im.Headers.SetHeaders = append(im.Headers.SetHeaders, header(HeaderRequestID, id))
			}
			if resp.DynamicMetadata == nil {
				resp.DynamicMetadata = p.immediateMetadata()
			}
		}
		if req.ObservabilityMode {
			resp = nil // Envoy ignores replies in observability mode
		}
		if resp != nil {
			if serr := stream.Send(resp); serr != nil {
				return serr
			}
		}
		if s.metrics != nil {
			s.metrics.ObservePhase(role, phase, s.now().Sub(start))
		}
	}
}

// immediate is the one place where an error becomes a client-visible answer:
// OpenAI error JSON with the error's HTTP status.
func (s *Server) immediate(role, schema, id string, err error) *extprocv3.ProcessingResponse {
	e := apierr.From(err)
	if e.Status >= 500 {
		s.log.Error("request failed", "role", role, "request_id", id, "status", e.Status, "code", e.Code, "err", err)
	} else {
		s.log.Debug("request rejected", "role", role, "request_id", id, "status", e.Status, "code", e.Code, "msg", e.Message)
	}
	return immediateResponse(schema, e)
}

// immediateResponse renders e as the client's API renders errors, with its
// HTTP status and retry-after.
func immediateResponse(schema string, e *apierr.Error) *extprocv3.ProcessingResponse {
	body := renderError(schema, e)
	hdrs := []*corev3.HeaderValueOption{
		header("content-type", "application/json"),
		header("content-length", strconv.Itoa(len(body))),
	}
	if e.RetryAfter > 0 {
		secs := (e.RetryAfter + time.Second - 1) / time.Second
		hdrs = append(hdrs, header("retry-after", strconv.FormatInt(int64(secs), 10)))
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
		ImmediateResponse: &extprocv3.ImmediateResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(e.Status)},
			Headers: &extprocv3.HeaderMutation{SetHeaders: hdrs},
			Body:    body,
			// Every immediate response's details start with llmproc_: the
			// rendered local_reply_config leaves those alone and rewrites
			// Envoy's own unflagged 5xx (envoy/listener.go).
			Details: "llmproc_" + codeOr(e.Code, "error"),
		},
	}}
}

func codeOr(code, def string) string {
	if code == "" {
		return def
	}
	return code
}

func roleOf(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(RoleHeader); len(v) > 0 {
		return v[0]
	}
	return ""
}

func isNormalEnd(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
		return true
	}
	c := status.Code(err)
	return c == codes.Canceled
}

// header builds a HeaderValueOption that overwrites (raw_value, not value: Envoy
// reads raw_value only).
func header(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, RawValue: []byte(v)}}
}

// headers indexes an ext_proc header map by lowercase name (first value wins).
type headers map[string]string

func headersOf(h *extprocv3.HttpHeaders) headers {
	out := headers{}
	if h == nil || h.Headers == nil {
		return out
	}
	for _, hv := range h.Headers.Headers {
		if _, ok := out[hv.Key]; ok {
			continue
		}
		v := string(hv.RawValue)
		if v == "" {
			v = hv.Value
		}
		out[hv.Key] = v
	}
	return out
}

const headerPrefix = "x-llmproc-"

// Header names llmproc sets.
const (
	HeaderPool    = "x-llmproc-pool"
	HeaderRoute   = "x-llmproc-route"
	HeaderBackend = "x-llmproc-backend"
	HeaderModel   = "x-llmproc-model"
	// HeaderClass is the task class the classifier chose, when a rule
	// needed it (shown to clients, like HeaderRoute).
	HeaderClass = "x-llmproc-class"
	// HeaderRequestID is on every answer llmproc handles: the request's id
	// as the access log and llmproc's logs show it, for the client to quote.
	HeaderRequestID = "x-llmproc-request-id"
)

func requestHeadersResponse(c *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{Response: c}}}
}

func requestBodyResponse(c *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: c}}}
}

func responseHeadersResponse(c *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{Response: c}}}
}

func responseBodyResponse(c *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{Response: c}}}
}

// errorf is a shorthand for internal failures that should never reach clients
// in normal operation.
func errorf(format string, args ...any) error { return apierr.Internal(fmt.Errorf(format, args...)) }
