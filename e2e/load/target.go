package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/types/known/structpb"
)

// -target drives another ext_proc server with its own gateway's message
// sequence, next to the floor answering that same sequence, so anyone with
// the other server's binary can reproduce the comparison. The one kind
// modelled is Envoy AI Gateway's extproc ("aigw"), as its control plane
// renders the two filters (envoyproxy/ai-gateway,
// internal/extensionserver/post_translate_modify.go: maybeModifyCluster for
// the upstream filter, insertRouterLevelAIGatewayExtProc for the router
// filter) and as its server reads them (internal/extproc/server.go,
// processor_impl.go):
//
//   - router filter (HCM, per request): request headers SEND, body BUFFERED,
//     response headers SEND, response body BUFFERED (its response-headers
//     reply overrides it to STREAMED for a streamed 200), trailers SKIP;
//     allow_mode_override; receiving namespace io.envoy.ai_gateway. Its
//     request-headers reply sets x-ai-eg-internal-req-id, its body reply
//     x-ai-eg-model (Envoy routes on it) with clear_route_cache. The stream
//     stays open for the response: the router filter translates responses.
//   - upstream filter (cluster upstream filters, per attempt): request
//     headers SEND with attributes, body NONE (the server keeps the router's
//     body in memory and answers the headers with CONTINUE_AND_REPLACE and
//     the translated body), response headers SKIP, body NONE. The server
//     finds its router stream by x-ai-eg-internal-req-id (state in process:
//     both filters must reach the same replica) and the backend by the
//     endpoint metadata in the attributes.
//
// The driver sends the endpoint metadata both ways the versions read it:
// xds.upstream_host_metadata as a text-format envoy.config.core.v3.Metadata
// (v0.x–v1.1 server.go) and the full
// xds.upstream_host_metadata.filter_metadata['aigateway.envoy.io']['per_route_rule_backend_name']
// path with the plain name (later versions), plus the route name.
type targetOptions struct {
	addr, kind     string
	pid            int
	backend, route string
}

func (t *targetOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&t.addr, "target", "", "drive another ext_proc server at this 127.0.0.1 address with its gateway's message sequence (see -target-kind), next to the floor; the llmproc server is not started")
	fs.StringVar(&t.kind, "target-kind", "aigw", "the target's gateway: aigw (Envoy AI Gateway's extproc)")
	fs.IntVar(&t.pid, "target-pid", 0, "the target's process id, to read its CPU time (run it under taskset on the server CPUs yourself)")
	fs.StringVar(&t.backend, "target-backend", "default/openai/route/llm/rule/0/ref/0", "aigw: the per-route-rule backend name of an OpenAI-schema backend in the target's filter config (namespace/name/route/ROUTE/rule/N/ref/N)")
	fs.StringVar(&t.route, "target-route", "llm", "aigw: the AIGatewayRoute name sent as the route attribute")
}

func (t *targetOptions) validate(o options) error {
	if t.addr == "" {
		return nil
	}
	var errs []error
	if t.kind != "aigw" {
		errs = append(errs, fmt.Errorf("-target-kind %q: only aigw is modelled", t.kind))
	}
	if !strings.HasPrefix(t.addr, "127.0.0.1:") {
		errs = append(errs, fmt.Errorf("-target %q: the driver only uses 127.0.0.1", t.addr))
	}
	if o.addr != "" || o.mode != "both" {
		errs = append(errs, errors.New("-target runs the floor next to the target: no -addr or -mode"))
	}
	for _, c := range o.cases {
		if !contains(targetCaseNames(), c) {
			errs = append(errs, fmt.Errorf("-target: case %q needs llmproc's config (OpenAI-backend cases only: %s)", c, strings.Join(targetCaseNames(), ", ")))
		}
	}
	return errors.Join(errs...)
}

// targetCaseNames are the cases any gateway can serve with one OpenAI
// backend.
func targetCaseNames() []string { return []string{case2KJSON, case2KSSE, case64KJSON} }

const aigwNamespace = "io.envoy.ai_gateway"

// aigwSpecs are Envoy AI Gateway's two ext_proc filters.
func aigwSpecs() (router, upstream *filterSpec) {
	router = specFromConfig("aigw router", &extprocfilterv3.ExternalProcessor{
		ProcessingMode: &extprocfilterv3.ProcessingMode{
			RequestHeaderMode: extprocfilterv3.ProcessingMode_SEND, RequestBodyMode: extprocfilterv3.ProcessingMode_BUFFERED,
			RequestTrailerMode: extprocfilterv3.ProcessingMode_SKIP, ResponseHeaderMode: extprocfilterv3.ProcessingMode_SEND,
			ResponseBodyMode: extprocfilterv3.ProcessingMode_BUFFERED, ResponseTrailerMode: extprocfilterv3.ProcessingMode_SKIP,
		},
		AllowModeOverride: true,
		MetadataOptions:   &extprocfilterv3.MetadataOptions{ReceivingNamespaces: &extprocfilterv3.MetadataOptions_MetadataNamespaces{Untyped: []string{aigwNamespace}}},
	})
	upstream = specFromConfig("aigw upstream", &extprocfilterv3.ExternalProcessor{
		ProcessingMode: &extprocfilterv3.ProcessingMode{
			RequestHeaderMode: extprocfilterv3.ProcessingMode_SEND, RequestBodyMode: extprocfilterv3.ProcessingMode_NONE,
			ResponseHeaderMode: extprocfilterv3.ProcessingMode_SKIP, ResponseBodyMode: extprocfilterv3.ProcessingMode_NONE,
		},
		AllowModeOverride: true,
		MetadataOptions:   &extprocfilterv3.MetadataOptions{ReceivingNamespaces: &extprocfilterv3.MetadataOptions_MetadataNamespaces{Untyped: []string{aigwNamespace}}},
	})
	return router, upstream
}

// attrs are the upstream filter's attributes naming the chosen endpoint.
func (t *targetOptions) attrs() map[string]*structpb.Struct {
	const ns = "aigateway.envoy.io"
	md := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{ns: {Fields: map[string]*structpb.Value{
		"per_route_rule_backend_name": structpb.NewStringValue(t.backend),
	}}}}
	text, _ := prototext.Marshal(md)
	return map[string]*structpb.Struct{attrsKey: {Fields: map[string]*structpb.Value{
		"xds.upstream_host_metadata": structpb.NewStringValue(string(text)),
		"xds.upstream_host_metadata.filter_metadata['" + ns + "']['per_route_rule_backend_name']": structpb.NewStringValue(t.backend),
		"xds.cluster_metadata.filter_metadata['" + ns + "']['per_route_rule_backend_name']":       structpb.NewStringValue(t.backend),
		"xds.route_metadata.filter_metadata['" + ns + "']['aigw_route_name']":                     structpb.NewStringValue(t.route),
	}}}
}

// workload is case c in the AI Gateway's sequence. Against the target it
// records the cycle (the router's headers flow to the upstream filter, as
// the server needs its internal request id) and checks the body reply set
// the model header; the floor gets the same sequence with a fixed internal
// request id.
func (t *targetOptions) workload(c caseSpec, isTarget bool) (*workload, error) {
	router, upstream := aigwSpecs()
	w, err := newWorkload(c, router, upstream, routing{pool: "aigw", backend: t.backend}, t.attrs())
	if err != nil {
		return nil, err
	}
	hdrs := append(headerList(nil), w.clientHeaders...)
	hdrs = append(hdrs, &corev3.HeaderValue{Key: "x-ai-eg-internal-req-id", RawValue: []byte("0b3c5d7e-1f2a-4b6c-8d9e-0a1b2c3d4e5f-9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d")},
		&corev3.HeaderValue{Key: "x-ai-eg-model", RawValue: []byte(c.model)})
	w.upHeaders = w.upstreamHeaders(hdrs, nil)
	if isTarget {
		w.record = true
		w.verify = func(w *workload, o outcome) error {
			if o.immediate != nil {
				return fmt.Errorf("router: %w: immediate response %d: %s", errUnexpected, o.immediate.GetStatus().GetCode(), o.immediate.GetBody())
			}
			if m, _ := o.routerHeaders.get("x-ai-eg-model"); m != c.model {
				return fmt.Errorf("router: %w: x-ai-eg-model is %q after the router, want %q", errUnexpected, m, c.model)
			}
			if len(o.client) == 0 {
				return fmt.Errorf("%w: the client gets an empty body", errUnexpected)
			}
			return nil
		}
	}
	return w, nil
}
