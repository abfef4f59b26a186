package extproc

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/llmproc/llmproc/filter/apierr"
)

// refuseRetryAfter is the retry-after of a stream refused by
// limits.max_streams: streams are short, one second is enough for some to
// end (or for the client to try another replica).
const refuseRetryAfter = time.Second

// refuse answers a stream past limits.max_streams without serving it: it
// reads the first message and answers it with an immediate response, a 503
// in the client's API shape with retry-after, then ends the stream cleanly.
//
// Why not a gRPC error (RESOURCE_EXHAUSTED), which would cost even less:
// Envoy's ext_proc filter turns any gRPC error on its stream into a local
// reply with status 500, details ext_proc_error_gRPC_error_<code> and no
// body (Filter::onGrpcError in
// source/extensions/filters/http/ext_proc/ext_proc.cc), or, with
// failure_mode_allow, lets the request through unprocessed: no pool header
// for the router, an untranslated request for the upstream role. An
// immediate response instead becomes Envoy's local reply with llmproc's
// status, headers and body (sendImmediateResponse in the same file; for the
// upstream filter since Envoy 1.37), so the client sees an overload error it
// can parse and retry, in OpenAI's, Anthropic's (overloaded_error) or
// Gemini's shape, and Envoy does not count a failure against llmproc.
//
// Refusing costs one message: no router or upstream state is built and no
// config, cache or budget is consulted.
func (s *Server) refuse(stream extprocv3.ExternalProcessor_ProcessServer, role string, max int64) error {
	if s.metrics != nil {
		s.metrics.StreamRefused(role)
	}
	if now := s.now().UnixNano(); now-s.refusedLog.Load() > int64(10*time.Second) {
		s.refusedLog.Store(now)
		s.log.Warn("refusing ext_proc streams: limits.max_streams are open", "max_streams", max, "role", role)
	}
	req, err := stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	h, ok := req.Request.(*extprocv3.ProcessingRequest_RequestHeaders)
	if !ok {
		// Envoy always sends the request headers first; anything else
		// gets a gRPC error, which Envoy turns into its own 500.
		return status.Errorf(codes.ResourceExhausted, "llmproc is serving limits.max_streams (%d) streams", max)
	}
	var path, id string
	for _, hv := range h.RequestHeaders.GetHeaders().GetHeaders() {
		switch hv.Key {
		case ":path":
			path, _, _ = strings.Cut(string(hv.RawValue), "?")
		case "x-request-id":
			id = string(hv.RawValue)
		}
	}
	e := &apierr.Error{Status: http.StatusServiceUnavailable, Type: apierr.TypeServer, Code: "overloaded",
		Message:    "llmproc is serving as many requests as it may at once (limits.max_streams); retry shortly",
		RetryAfter: refuseRetryAfter}
	schema := clientOfPath(path)
	if role == RoleUpstream {
		// An attempt's :path may be an earlier attempt's rewrite; the
		// router's decision names the client's API.
		switch c := req.GetMetadataContext().GetFilterMetadata()[MetadataNamespace].GetFields()[KeyClient].GetStringValue(); c {
		case clientOpenAI, clientAnthropic, clientGemini:
			schema = c
		}
	}
	resp := immediateResponse(schema, e)
	if id != "" {
		im := resp.GetImmediateResponse()
		im.Headers.SetHeaders = append(im.Headers.SetHeaders, header(HeaderRequestID, id))
	}
	if req.ObservabilityMode {
		return nil
	}
	return stream.Send(resp)
}

// clientOfPath is the API a client speaks by its request path alone, as the
// router tells it (router.requestHeaders): enough to render an error in it.
func clientOfPath(path string) string {
	switch {
	case path == "/v1/messages" || strings.HasPrefix(path, "/v1/messages/"):
		return clientAnthropic
	case geminiPath(path):
		return clientGemini
	}
	return clientOpenAI
}
