package mesh

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"istio.io/api/annotation"
	apinetworking "istio.io/api/networking/v1alpha3"
	typev1beta1 "istio.io/api/type/v1beta1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/llmproc/llmproc/envoy"
	"github.com/llmproc/llmproc/filter/config"
)

// API groups, versions and kinds of the rendered Istio and Gateway API objects.
const (
	GatewayAPIGroup     = "gateway.networking.k8s.io"
	GatewayClassIstio   = "istio"
	EnvoyFilterVersion  = "networking.istio.io/v1alpha3"
	NetworkingVersion   = "networking.istio.io/v1"
	GatewayVersion      = GatewayAPIGroup + "/v1"
	GatewayListenerName = "http"
)

// EnvoyFilterPriority orders llmproc's patch sets after Istio's defaults
// (priority 0) and other patch sets of priority 0, so they apply in a stable
// order whatever their creation times.
const EnvoyFilterPriority = 10

// EnvoyFilter names, one per concern.
const (
	ListenerFilterName = "llmproc-listener" // buffer limit, HCM settings, router ext_proc
	PoolsFilterName    = "llmproc-pools"    // CLUSTER ADD per pool
	RoutesFilterName   = "llmproc-routes"   // pool routes in every virtual host
)

// ExtProcCluster is the cluster Istio generates for llmproc's gRPC port on
// every proxy that sees the llmproc Service: both ext_proc filters use it.
func ExtProcCluster(o Options, grpcPort uint32) string {
	return fmt.Sprintf("outbound|%d||%s.%s.svc.cluster.local", grpcPort, Name, o.Namespace)
}

// Istio renders the LLM gateway and what makes it llmproc's Envoy: the
// Gateway (Gateway API, class istio, ClusterIP Service), three EnvoyFilters
// bound to it with targetRefs (listener: buffer limit, HCM idle timeout,
// local replies and access log, the router-role ext_proc before the router;
// pools: every pool cluster ADDed whole, identical to the bootstrap's except
// for the ext_proc cluster name; routes: the bootstrap's pool routes inserted
// first in each virtual host of the gateway's port), and a ServiceEntry per
// provider host (plus, with Transparent, a port-80 route to the gateway).
func Istio(src *Source, o Options) ([]runtime.Object, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	rt := src.Runtime
	_, grpcPort, err := hostPort(src.Config.Listen.GRPC)
	if err != nil {
		return nil, fmt.Errorf("listen.grpc: %w", err)
	}
	llm := ExtProcCluster(o, grpcPort)

	listener, err := listenerPatches(rt, o, llm)
	if err != nil {
		return nil, err
	}
	pools, err := poolPatches(rt, llm)
	if err != nil {
		return nil, err
	}
	routes, err := routePatches(rt, o)
	if err != nil {
		return nil, err
	}
	objs := []runtime.Object{
		gateway(o),
		envoyFilter(o, ListenerFilterName, listener),
		envoyFilter(o, PoolsFilterName, pools),
		envoyFilter(o, RoutesFilterName, routes),
		gatewayNoRetry(o),
	}
	ra, err := requestAuthentication(src.Config, o)
	if err != nil {
		return nil, err
	}
	if ra != nil {
		objs = append(objs, ra)
	}
	if ap := gatewayAuthorization(src.Config, o); ap != nil {
		objs = append(objs, ap)
	}
	if tm := telemetry(src.Config, o); tm != nil {
		objs = append(objs, tm)
	}
	for _, h := range providerHosts(rt) {
		objs = append(objs, serviceEntry(o, h))
		if o.Transparent && h.tls {
			objs = append(objs, transparentRoute(o, h))
		}
	}
	return objs, nil
}

func meta(o Options, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      name,
		Namespace: o.Namespace,
		Labels:    map[string]string{"app.kubernetes.io/part-of": Name},
	}
}

// gateway is the dedicated LLM gateway. Its Service is ClusterIP:
// applications in the cluster call it by name, and nothing outside needs it.
func gateway(o Options) *gatewayv1.Gateway {
	m := meta(o, o.Gateway)
	m.Annotations = map[string]string{annotation.NetworkingServiceType.Name: "ClusterIP"}
	from := gatewayv1.NamespacesFromSame
	return &gatewayv1.Gateway{
		TypeMeta:   metav1.TypeMeta{APIVersion: GatewayVersion, Kind: "Gateway"},
		ObjectMeta: m,
		Spec: gatewayv1.GatewaySpec{
			GatewayClassName: GatewayClassIstio,
			Listeners: []gatewayv1.Listener{{
				Name:          GatewayListenerName,
				Port:          gatewayv1.PortNumber(o.GatewayPort),
				Protocol:      gatewayv1.HTTPProtocolType,
				AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: &from}},
			}},
		},
	}
}

func envoyFilter(o Options, name string, patches []*apinetworking.EnvoyFilter_EnvoyConfigObjectPatch) *networkingv1alpha3.EnvoyFilter {
	return &networkingv1alpha3.EnvoyFilter{
		TypeMeta:   metav1.TypeMeta{APIVersion: EnvoyFilterVersion, Kind: "EnvoyFilter"},
		ObjectMeta: meta(o, name),
		Spec: apinetworking.EnvoyFilter{
			TargetRefs: []*typev1beta1.PolicyTargetReference{{
				Group: GatewayAPIGroup,
				Kind:  "Gateway",
				Name:  o.Gateway,
			}},
			Priority:      EnvoyFilterPriority,
			ConfigPatches: patches,
		},
	}
}

// listenerPatches raise the gateway listener's buffer limit above the body
// limit, give its HCM llmproc's idle timeout, local replies in OpenAI error
// JSON and access log (with tokens and cost), and insert the router-role
// ext_proc before the router.
func listenerPatches(rt *config.Runtime, o Options, llm string) ([]*apinetworking.EnvoyFilter_EnvoyConfigObjectPatch, error) {
	lst, err := value(&listenerv3.Listener{
		PerConnectionBufferLimitBytes: wrapperspb.UInt32(uint32(envoy.BufferLimit(rt))),
	})
	if err != nil {
		return nil, err
	}
	full := envoy.HTTPConnectionManager(rt)
	hcm, err := packed(&hcmv3.HttpConnectionManager{
		StreamIdleTimeout:             full.GetStreamIdleTimeout(),
		LocalReplyConfig:              full.GetLocalReplyConfig(),
		AccessLog:                     full.GetAccessLog(),
		EarlyHeaderMutationExtensions: full.GetEarlyHeaderMutationExtensions(),
	})
	if err != nil {
		return nil, err
	}
	nf, err := value(&listenerv3.Filter{Name: envoy.HCMFilterName, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: hcm}})
	if err != nil {
		return nil, err
	}
	router, err := value(envoy.RouterFilterVia(rt, llm))
	if err != nil {
		return nil, err
	}
	onListener := func(f *apinetworking.EnvoyFilter_ListenerMatch_FilterChainMatch) *apinetworking.EnvoyFilter_EnvoyConfigObjectMatch {
		return &apinetworking.EnvoyFilter_EnvoyConfigObjectMatch{
			Context: apinetworking.EnvoyFilter_GATEWAY,
			ObjectTypes: &apinetworking.EnvoyFilter_EnvoyConfigObjectMatch_Listener{Listener: &apinetworking.EnvoyFilter_ListenerMatch{
				PortNumber:  o.GatewayPort,
				FilterChain: f,
			}},
		}
	}
	hcmMatch := func(sub string) *apinetworking.EnvoyFilter_ListenerMatch_FilterChainMatch {
		fm := &apinetworking.EnvoyFilter_ListenerMatch_FilterMatch{Name: envoy.HCMFilterName}
		if sub != "" {
			fm.SubFilter = &apinetworking.EnvoyFilter_ListenerMatch_SubFilterMatch{Name: sub}
		}
		return &apinetworking.EnvoyFilter_ListenerMatch_FilterChainMatch{Filter: fm}
	}
	return []*apinetworking.EnvoyFilter_EnvoyConfigObjectPatch{
		{
			ApplyTo: apinetworking.EnvoyFilter_LISTENER,
			Match:   onListener(nil),
			Patch:   &apinetworking.EnvoyFilter_Patch{Operation: apinetworking.EnvoyFilter_Patch_MERGE, Value: lst},
		},
		{
			ApplyTo: apinetworking.EnvoyFilter_NETWORK_FILTER,
			Match:   onListener(hcmMatch("")),
			Patch:   &apinetworking.EnvoyFilter_Patch{Operation: apinetworking.EnvoyFilter_Patch_MERGE, Value: nf},
		},
		{
			ApplyTo: apinetworking.EnvoyFilter_HTTP_FILTER,
			Match:   onListener(hcmMatch(envoy.RouterFilterName)),
			Patch:   &apinetworking.EnvoyFilter_Patch{Operation: apinetworking.EnvoyFilter_Patch_INSERT_BEFORE, Value: router},
		},
	}, nil
}

// poolPatches ADD every pool cluster whole: Istio objects cannot express
// endpoint metadata, per-endpoint SNI, priorities across hosts or upstream
// HTTP filters, and a MERGE of the protocol options would replace Istio's.
func poolPatches(rt *config.Runtime, llm string) ([]*apinetworking.EnvoyFilter_EnvoyConfigObjectPatch, error) {
	var out []*apinetworking.EnvoyFilter_EnvoyConfigObjectPatch
	for _, p := range configPools(rt) {
		v, err := value(envoy.PoolClusterVia(rt, p, llm))
		if err != nil {
			return nil, err
		}
		out = append(out, &apinetworking.EnvoyFilter_EnvoyConfigObjectPatch{
			ApplyTo: apinetworking.EnvoyFilter_CLUSTER,
			Match:   &apinetworking.EnvoyFilter_EnvoyConfigObjectMatch{Context: apinetworking.EnvoyFilter_GATEWAY},
			Patch:   &apinetworking.EnvoyFilter_Patch{Operation: apinetworking.EnvoyFilter_Patch_ADD, Value: v},
		})
	}
	return out, nil
}

// routePatches put the bootstrap's routes (one per pool on x-llmproc-pool,
// then the catch-all 400) first in every virtual host of the gateway's
// route configuration, and ask those virtual hosts for
// x-envoy-attempt-count. Each INSERT_BEFORE without a route match prepends,
// so the routes are listed last to first.
func routePatches(rt *config.Runtime, o Options) ([]*apinetworking.EnvoyFilter_EnvoyConfigObjectPatch, error) {
	match := &apinetworking.EnvoyFilter_EnvoyConfigObjectMatch{
		Context: apinetworking.EnvoyFilter_GATEWAY,
		ObjectTypes: &apinetworking.EnvoyFilter_EnvoyConfigObjectMatch_RouteConfiguration{RouteConfiguration: &apinetworking.EnvoyFilter_RouteConfigurationMatch{
			PortNumber: o.GatewayPort,
		}},
	}
	vh, err := structOf(`{"include_request_attempt_count":true}`)
	if err != nil {
		return nil, err
	}
	out := []*apinetworking.EnvoyFilter_EnvoyConfigObjectPatch{{
		ApplyTo: apinetworking.EnvoyFilter_VIRTUAL_HOST,
		Match:   match,
		Patch:   &apinetworking.EnvoyFilter_Patch{Operation: apinetworking.EnvoyFilter_Patch_MERGE, Value: vh},
	}}
	routes := envoy.Routes(rt)
	for _, r := range slices.Backward(routes) {
		v, err := value(r)
		if err != nil {
			return nil, err
		}
		out = append(out, &apinetworking.EnvoyFilter_EnvoyConfigObjectPatch{
			ApplyTo: apinetworking.EnvoyFilter_HTTP_ROUTE,
			Match:   match,
			Patch:   &apinetworking.EnvoyFilter_Patch{Operation: apinetworking.EnvoyFilter_Patch_INSERT_BEFORE, Value: v},
		})
	}
	return out, nil
}

// configPools is the runtime's pools in config order.
func configPools(rt *config.Runtime) []*config.RPool {
	var out []*config.RPool
	for _, p := range rt.Source.Pools {
		if rp := rt.Pools[p.Name]; rp != nil {
			out = append(out, rp)
		}
	}
	return out
}

// value turns an Envoy config message into an EnvoyFilter patch value: its
// protojson form with proto field names, as the bootstrap is rendered.
func value(m proto.Message) (*structpb.Struct, error) {
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("patch value %T: %w", m, err)
	}
	return structOf(string(js))
}

func structOf(js string) (*structpb.Struct, error) {
	s := &structpb.Struct{}
	if err := protojson.Unmarshal([]byte(js), s); err != nil {
		return nil, fmt.Errorf("patch value: %w", err)
	}
	return s, nil
}

func packed(m proto.Message) (*anypb.Any, error) {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		return nil, fmt.Errorf("pack %T: %w", m, err)
	}
	return a, nil
}

// providerHost is a backend host outside the cluster.
type providerHost struct {
	host string
	port uint32
	tls  bool
}

// providerHosts lists the distinct backend hosts that a ServiceEntry can
// name, in config order: DNS names outside the cluster. IP literals,
// localhost and *.svc / *.cluster.local names are left out.
func providerHosts(rt *config.Runtime) []providerHost {
	var out []providerHost
	seen := map[providerHost]bool{}
	for _, b := range rt.Source.Backends {
		rb := rt.Backends[b.Name]
		if rb == nil {
			continue
		}
		h := providerHost{host: strings.ToLower(rb.Host), port: rb.Port, tls: rb.TLS}
		if _, err := netip.ParseAddr(h.host); err == nil || h.host == "localhost" ||
			strings.HasSuffix(h.host, ".svc") || strings.HasSuffix(h.host, ".cluster.local") || seen[h] {
			continue
		}
		seen[h] = true
		out = append(out, h)
	}
	return out
}

// ServiceEntryName names a provider host's ServiceEntry.
func ServiceEntryName(host string, port uint32) string {
	return dnsLabel(fmt.Sprintf("llm-%s-%d", host, port), 63)
}

// serviceEntry makes a provider host visible to the mesh (egress metrics,
// AuthorizationPolicy, REGISTRY_ONLY meshes). The gateway's pool clusters
// reach the host on their own; this object does not route them.
func serviceEntry(o Options, h providerHost) *networkingv1.ServiceEntry {
	port := &apinetworking.ServicePort{Number: h.port, Name: fmt.Sprintf("http-%d", h.port), Protocol: "HTTP"}
	if h.tls {
		port = &apinetworking.ServicePort{Number: h.port, Name: fmt.Sprintf("tls-%d", h.port), Protocol: "TLS"}
	}
	ports := []*apinetworking.ServicePort{port}
	if o.Transparent && h.tls {
		ports = append(ports, &apinetworking.ServicePort{Number: 80, Name: "http-80", Protocol: "HTTP"})
	}
	return &networkingv1.ServiceEntry{
		TypeMeta:   metav1.TypeMeta{APIVersion: NetworkingVersion, Kind: "ServiceEntry"},
		ObjectMeta: meta(o, ServiceEntryName(h.host, h.port)),
		Spec: apinetworking.ServiceEntry{
			Hosts:      []string{h.host},
			Location:   apinetworking.ServiceEntry_MESH_EXTERNAL,
			Resolution: apinetworking.ServiceEntry_DNS,
			Ports:      ports,
		},
	}
}

// NoRetryName names the VirtualService that turns sidecar retries off for
// calls to the LLM gateway.
const NoRetryName = "llm-gateway-no-retry"

// gatewayNoRetry stops client sidecars from retrying the LLM gateway: by
// default they retry a 503 twice, and a 503 from the gateway means its pool
// is exhausted after its own retries, so each sidecar retry would run the
// whole fallback chain (and its provider costs) again.
func gatewayNoRetry(o Options) *networkingv1.VirtualService {
	return &networkingv1.VirtualService{
		TypeMeta:   metav1.TypeMeta{APIVersion: NetworkingVersion, Kind: "VirtualService"},
		ObjectMeta: meta(o, NoRetryName),
		Spec: apinetworking.VirtualService{
			Hosts: []string{o.GatewayService()},
			Http:  []*apinetworking.HTTPRoute{toGateway(o, nil)},
		},
	}
}

// toGateway is an HTTP route to the LLM gateway without retries (attempts 0).
func toGateway(o Options, match []*apinetworking.HTTPMatchRequest) *apinetworking.HTTPRoute {
	return &apinetworking.HTTPRoute{
		Match: match,
		Route: []*apinetworking.HTTPRouteDestination{{
			Destination: &apinetworking.Destination{
				Host: o.GatewayService(),
				Port: &apinetworking.PortSelector{Number: o.GatewayPort},
			},
		}},
		Retries: &apinetworking.HTTPRetry{Attempts: 0},
	}
}

// transparentRoute sends plain-HTTP calls to a provider host (port 80) from
// sidecars to the LLM gateway, whose pool clusters originate TLS.
func transparentRoute(o Options, h providerHost) *networkingv1.VirtualService {
	return &networkingv1.VirtualService{
		TypeMeta:   metav1.TypeMeta{APIVersion: NetworkingVersion, Kind: "VirtualService"},
		ObjectMeta: meta(o, dnsLabel("llm-transparent-"+h.host, 63)),
		Spec: apinetworking.VirtualService{
			Hosts:    []string{h.host},
			Gateways: []string{"mesh"},
			Http:     []*apinetworking.HTTPRoute{toGateway(o, []*apinetworking.HTTPMatchRequest{{Port: 80}})},
		},
	}
}
