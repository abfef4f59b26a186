package envoy

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/extproc"
)

// ExtProcFilterName is the HTTP filter name of both ext_proc filters.
const ExtProcFilterName = "envoy.filters.http.ext_proc"

// MaxMessageTimeout bounds override_message_timeout requests from llmproc
// (the upstream role asks for more time when it must fetch a credential).
const MaxMessageTimeout = extproc.MaxMessageTimeout

// RouterFilter is llmproc's router-role ext_proc filter, placed in the HCM
// before the router: once per request, request headers and the BUFFERED body
// only. llmproc answers with x-llmproc-pool (and clear_route_cache) or an
// immediate response; responses never reach this role. It fails closed.
func RouterFilter(rt *config.Runtime) *hcmv3.HttpFilter {
	return RouterFilterVia(rt, LLMProcClusterName)
}

// RouterFilterVia is RouterFilter reaching llmproc through the named cluster,
// such as Istio's outbound|50051||llmproc.<ns>.svc.cluster.local in a mesh.
func RouterFilterVia(rt *config.Runtime, llmproc string) *hcmv3.HttpFilter {
	return extProcFilter(&extprocfilterv3.ExternalProcessor{
		GrpcService: grpcService(llmproc, RoleRouter),
		StatPrefix:  RoleRouter,
		ProcessingMode: &extprocfilterv3.ProcessingMode{
			RequestHeaderMode:   extprocfilterv3.ProcessingMode_SEND,
			RequestBodyMode:     extprocfilterv3.ProcessingMode_BUFFERED,
			ResponseHeaderMode:  extprocfilterv3.ProcessingMode_SKIP,
			ResponseBodyMode:    extprocfilterv3.ProcessingMode_NONE,
			RequestTrailerMode:  extprocfilterv3.ProcessingMode_SKIP,
			ResponseTrailerMode: extprocfilterv3.ProcessingMode_SKIP,
		},
		RequestAttributes: routerAttributes(rt),
	}, rt, routerForwarding(rt))
	// The router role never overrides its mode: mode_override is not
	// allowed (UpstreamFilterVia allows the one the upstream role sends).
}

// routerForwarding is the metadata the router role is sent: under
// identity.source jwt the payload jwt_authn verified, the tenant's source,
// in metadata no client can set.
func routerForwarding(rt *config.Runtime) []string {
	if rt.IdentitySource == config.SourceJWT {
		return []string{extproc.JWTNamespace}
	}
	return nil
}

// routerAttributes are the request attributes the router role needs: the
// peer certificate's URI SAN under identity.source mesh.
func routerAttributes(rt *config.Runtime) []string {
	if rt.IdentitySource == config.SourceMesh {
		return []string{extproc.AttrPeerURISAN}
	}
	return nil
}

// UpstreamFilter is llmproc's upstream-role ext_proc filter, placed in each
// pool cluster's upstream HTTP filters: once per attempt, with the chosen
// endpoint's backend name and the cluster name as attributes. It sees the
// BUFFERED request body and the response headers and STREAMED response body.
func UpstreamFilter(rt *config.Runtime) *hcmv3.HttpFilter {
	return UpstreamFilterVia(rt, LLMProcClusterName)
}

// UpstreamFilterVia is UpstreamFilter reaching llmproc through the named
// cluster (see RouterFilterVia).
func UpstreamFilterVia(rt *config.Runtime, llmproc string) *hcmv3.HttpFilter {
	return extProcFilter(&extprocfilterv3.ExternalProcessor{
		GrpcService: grpcService(llmproc, RoleUpstream),
		StatPrefix:  RoleUpstream,
		ProcessingMode: &extprocfilterv3.ProcessingMode{
			RequestHeaderMode:   extprocfilterv3.ProcessingMode_SEND,
			RequestBodyMode:     extprocfilterv3.ProcessingMode_BUFFERED,
			ResponseHeaderMode:  extprocfilterv3.ProcessingMode_SEND,
			ResponseBodyMode:    extprocfilterv3.ProcessingMode_STREAMED,
			RequestTrailerMode:  extprocfilterv3.ProcessingMode_SKIP,
			ResponseTrailerMode: extprocfilterv3.ProcessingMode_SKIP,
		},
		RequestAttributes: []string{BackendAttribute, ClusterAttribute},
		// An attempt whose body goes unchanged asks Envoy not to send it
		// (mode_override, filter/extproc/bodyless.go): allowed, and only
		// that mode.
		AllowModeOverride:    true,
		AllowedOverrideModes: []*extprocfilterv3.ProcessingMode{extproc.SkipRequestBodyMode()},
	}, rt, []string{MetadataNamespace})
}

// extProcFilter fills in what both roles share: timeouts, fail-closed and
// the llmproc metadata namespace, which both write and the
// upstream role also reads: the router role's decisions reach every attempt
// as metadata_context (see extproc.KeyPool). mutation_rules stay default.
func extProcFilter(ep *extprocfilterv3.ExternalProcessor, rt *config.Runtime, forward []string) *hcmv3.HttpFilter {
	ep.MessageTimeout = durationpb.New(rt.Source.Envoy.MessageTimeout.Duration)
	ep.MaxMessageTimeout = durationpb.New(MaxMessageTimeout)
	ep.FailureModeAllow = false
	ep.MetadataOptions = &extprocfilterv3.MetadataOptions{
		ReceivingNamespaces: &extprocfilterv3.MetadataOptions_MetadataNamespaces{Untyped: []string{MetadataNamespace}},
	}
	if len(forward) > 0 {
		ep.MetadataOptions.ForwardingNamespaces = &extprocfilterv3.MetadataOptions_MetadataNamespaces{Untyped: forward}
	}
	return &hcmv3.HttpFilter{
		Name:       ExtProcFilterName,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: typed(ep)},
	}
}

func grpcService(cluster, role string) *corev3.GrpcService {
	return &corev3.GrpcService{
		TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: cluster}},
		InitialMetadata: []*corev3.HeaderValue{{Key: RoleHeader, Value: role}},
	}
}
