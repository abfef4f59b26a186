package mesh

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	apinetworking "istio.io/api/networking/v1alpha3"
	networkingv1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/llmproc/llmproc/envoy"
)

func pack(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// istioCluster is the cluster Istio generates on the gateway for a Service
// port: outbound|port||name.ns.svc.cluster.local, HTTP/2 when the port's
// appProtocol is grpc (or its name starts with grpc), else HTTP/1.1, with
// the circuit breakers Istio gives every outbound cluster without a
// DestinationRule connectionPool: all thresholds math.MaxUint32
// (getDefaultCircuitBreakerThresholds in istio's
// pilot/pkg/networking/core/cluster_traffic_policy.go).
func istioCluster(t *testing.T, svc *corev1.Service, port corev1.ServicePort) *clusterv3.Cluster {
	t.Helper()
	opts := &httpv3.HttpProtocolOptions{UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
		ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{HttpProtocolOptions: &corev3.Http1ProtocolOptions{}},
	}}}
	if port.AppProtocol != nil && *port.AppProtocol == "grpc" {
		opts.UpstreamProtocolOptions = &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
		}}
	}
	return &clusterv3.Cluster{
		Name:                          fmt.Sprintf("outbound|%d||%s.%s.svc.cluster.local", port.Port, svc.Name, svc.Namespace),
		ClusterDiscoveryType:          &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:              &clusterv3.Cluster_EdsClusterConfig{EdsConfig: &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}},
		TypedExtensionProtocolOptions: map[string]*anypb.Any{envoy.HTTPProtocolOptionsKey: pack(t, opts)},
		CircuitBreakers: &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
			MaxConnections:     wrapperspb.UInt32(math.MaxUint32),
			MaxPendingRequests: wrapperspb.UInt32(math.MaxUint32),
			MaxRequests:        wrapperspb.UInt32(math.MaxUint32),
			MaxRetries:         wrapperspb.UInt32(math.MaxUint32),
		}}},
	}
}

// gatewayBootstrap plays istiod for the LLM gateway: it starts from the
// listener, HCM, route configuration (a blackhole virtual host, as for a
// Gateway without routes) and clusters Istio generates (the llmproc
// Service's outbound cluster, from the kubernetes rendering), applies the
// rendered EnvoyFilters the way Istio applies them, and runs envoy.Check on
// the result: the same cross-checks as the standalone bootstrap.
func gatewayBootstrap(t *testing.T, src *Source, o Options, istioObjs []runtime.Object) *bootstrapv3.Bootstrap {
	t.Helper()
	kube, err := Kubernetes(src, o)
	if err != nil {
		t.Fatal(err)
	}
	od, _ := o.withDefaults()
	var clusters []*clusterv3.Cluster
	for _, obj := range kube {
		if svc, ok := obj.(*corev1.Service); ok {
			for _, p := range svc.Spec.Ports {
				clusters = append(clusters, istioCluster(t, svc, p))
			}
		}
	}
	rc := &routev3.RouteConfiguration{
		Name:         fmt.Sprintf("http.%d", od.GatewayPort),
		VirtualHosts: []*routev3.VirtualHost{{Name: fmt.Sprintf("blackhole:%d", od.GatewayPort), Domains: []string{"*"}}},
	}
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix:     fmt.Sprintf("outbound_0.0.0.0_%d", od.GatewayPort),
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: rc},
		HttpFilters:    []*hcmv3.HttpFilter{{Name: envoy.RouterFilterName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: pack(t, &routerv3.Router{})}}},
	}
	lst := &listenerv3.Listener{
		Name: fmt.Sprintf("0.0.0.0_%d", od.GatewayPort),
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "0.0.0.0", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: od.GatewayPort},
		}}},
	}

	for _, obj := range istioObjs {
		ef, ok := obj.(*networkingv1alpha3.EnvoyFilter)
		if !ok {
			continue
		}
		if tr := ef.Spec.GetTargetRefs(); len(tr) != 1 || tr[0].GetKind() != "Gateway" || tr[0].GetName() != od.Gateway || ef.Namespace != od.Namespace {
			t.Fatalf("EnvoyFilter %s does not target Gateway %s/%s: %v", ef.Name, od.Namespace, od.Gateway, tr)
		}
		for i, cp := range ef.Spec.GetConfigPatches() {
			where := fmt.Sprintf("%s[%d]", ef.Name, i)
			if cp.GetMatch().GetContext() != apinetworking.EnvoyFilter_GATEWAY {
				t.Fatalf("%s: context %v", where, cp.GetMatch().GetContext())
			}
			if p := cp.GetMatch().GetListener().GetPortNumber() + cp.GetMatch().GetRouteConfiguration().GetPortNumber(); p != 0 && p != od.GatewayPort {
				t.Fatalf("%s: matches port %d, the gateway listens on %d", where, p, od.GatewayPort)
			}
			v, err := PatchValue(cp)
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			op := cp.GetPatch().GetOperation()
			switch {
			case cp.GetApplyTo() == apinetworking.EnvoyFilter_LISTENER && op == apinetworking.EnvoyFilter_Patch_MERGE:
				proto.Merge(lst, v)
			case cp.GetApplyTo() == apinetworking.EnvoyFilter_NETWORK_FILTER && op == apinetworking.EnvoyFilter_Patch_MERGE:
				patch := &hcmv3.HttpConnectionManager{}
				if err := v.(*listenerv3.Filter).GetTypedConfig().UnmarshalTo(patch); err != nil {
					t.Fatal(err)
				}
				proto.Merge(hcm, patch)
			case cp.GetApplyTo() == apinetworking.EnvoyFilter_HTTP_FILTER && op == apinetworking.EnvoyFilter_Patch_INSERT_BEFORE:
				sub := cp.GetMatch().GetListener().GetFilterChain().GetFilter().GetSubFilter().GetName()
				at := slices.IndexFunc(hcm.HttpFilters, func(f *hcmv3.HttpFilter) bool { return f.GetName() == sub })
				if at < 0 {
					t.Fatalf("%s: no HTTP filter %q to insert before", where, sub)
				}
				hcm.HttpFilters = slices.Insert(hcm.HttpFilters, at, v.(*hcmv3.HttpFilter))
			case cp.GetApplyTo() == apinetworking.EnvoyFilter_CLUSTER && op == apinetworking.EnvoyFilter_Patch_ADD:
				clusters = append(clusters, v.(*clusterv3.Cluster))
			case cp.GetApplyTo() == apinetworking.EnvoyFilter_VIRTUAL_HOST && op == apinetworking.EnvoyFilter_Patch_MERGE:
				for _, vh := range rc.VirtualHosts {
					proto.Merge(vh, v)
				}
			case cp.GetApplyTo() == apinetworking.EnvoyFilter_HTTP_ROUTE && op == apinetworking.EnvoyFilter_Patch_INSERT_BEFORE:
				if cp.GetMatch().GetRouteConfiguration().GetVhost().GetRoute() != nil {
					t.Fatalf("%s: route match: the simulation only knows INSERT_BEFORE without one (a prepend)", where)
				}
				for _, vh := range rc.VirtualHosts {
					vh.Routes = append([]*routev3.Route{proto.Clone(v).(*routev3.Route)}, vh.Routes...)
				}
			default:
				t.Fatalf("%s: %v %v is not simulated", where, cp.GetApplyTo(), op)
			}
		}
	}
	lst.FilterChains = []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
		Name: envoy.HCMFilterName, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: pack(t, hcm)},
	}}}}
	bs := &bootstrapv3.Bootstrap{StaticResources: &bootstrapv3.Bootstrap_StaticResources{
		Listeners: []*listenerv3.Listener{lst},
		Clusters:  clusters,
	}}
	if err := envoy.Check(bs, src.Runtime); err != nil {
		t.Fatalf("the gateway's config after the patches fails envoy.Check: %v", err)
	}

	// The routes are the bootstrap's, in its order, in the virtual host that
	// sends x-envoy-attempt-count; the ext_proc runs before the router.
	vh := rc.VirtualHosts[0]
	if d := cmp.Diff(envoy.Routes(src.Runtime), vh.GetRoutes(), protocmp.Transform()); d != "" {
		t.Errorf("gateway routes differ from the bootstrap's (-bootstrap +gateway):\n%s", d)
	}
	if !vh.GetIncludeRequestAttemptCount() {
		t.Error("the gateway's virtual host does not send x-envoy-attempt-count")
	}
	var names []string
	for _, f := range hcm.HttpFilters {
		names = append(names, f.GetName())
	}
	if d := cmp.Diff([]string{envoy.ExtProcFilterName, envoy.RouterFilterName}, names); d != "" {
		t.Errorf("HTTP filters (-want +got):\n%s", d)
	}
	return bs
}

// TestPoolClustersIdentical: each CLUSTER ADD value is the standalone
// bootstrap's pool cluster, byte for byte once the upstream ext_proc's gRPC
// cluster is named back from Istio's outbound cluster to "llmproc".
func TestPoolClustersIdentical(t *testing.T) {
	for _, path := range []string{example("openai"), example("providers"), "../testdata/https.yaml"} {
		t.Run(path, func(t *testing.T) {
			src := load(t, path)
			objs, err := Istio(src, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []*clusterv3.Cluster
			for _, obj := range objs {
				if ef, ok := obj.(*networkingv1alpha3.EnvoyFilter); ok && ef.Name == PoolsFilterName {
					for _, cp := range ef.Spec.GetConfigPatches() {
						v, err := PatchValue(cp)
						if err != nil {
							t.Fatal(err)
						}
						got = append(got, v.(*clusterv3.Cluster))
					}
				}
			}
			pools := configPools(src.Runtime)
			if len(got) != len(pools) {
				t.Fatalf("%d CLUSTER patches for %d pools", len(got), len(pools))
			}
			for i, c := range got {
				opts := &httpv3.HttpProtocolOptions{}
				if err := c.GetTypedExtensionProtocolOptions()[envoy.HTTPProtocolOptionsKey].UnmarshalTo(opts); err != nil {
					t.Fatal(err)
				}
				ep := &extprocfilterv3.ExternalProcessor{}
				if err := opts.GetHttpFilters()[0].GetTypedConfig().UnmarshalTo(ep); err != nil {
					t.Fatal(err)
				}
				if name := ep.GetGrpcService().GetEnvoyGrpc().GetClusterName(); name != "outbound|50051||llmproc.llmproc.svc.cluster.local" {
					t.Errorf("%s: upstream ext_proc reaches %q", c.GetName(), name)
				}
				ep.GrpcService.GetEnvoyGrpc().ClusterName = envoy.LLMProcClusterName
				opts.HttpFilters[0].GetTypedConfig().MarshalFrom(ep)
				c.TypedExtensionProtocolOptions[envoy.HTTPProtocolOptionsKey].MarshalFrom(opts)
				if d := cmp.Diff(envoy.PoolCluster(src.Runtime, pools[i]), c, protocmp.Transform()); d != "" {
					t.Errorf("pool %s differs from the bootstrap's (-bootstrap +istio):\n%s", pools[i].Name, d)
				}
			}
		})
	}
}

// TestKubernetesInvariants checks what the issue asks of llmproc's objects.
func TestKubernetesInvariants(t *testing.T) {
	src := load(t, example("openai"))
	objs, err := Kubernetes(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var dep *appsv1.Deployment
	var svc *corev1.Service
	var ap *securityv1.AuthorizationPolicy
	var cm *corev1.ConfigMap
	for _, o := range objs {
		switch v := o.(type) {
		case *appsv1.Deployment:
			dep = v
		case *corev1.Service:
			svc = v
		case *securityv1.AuthorizationPolicy:
			ap = v
		case *corev1.ConfigMap:
			cm = v
		}
	}
	if dep == nil || svc == nil || ap == nil || cm == nil {
		t.Fatalf("missing objects: %v", objs)
	}
	ps := dep.Spec.Template.Spec
	c := ps.Containers[0]
	if *dep.Spec.Replicas < 2 {
		t.Errorf("replicas = %d", *dep.Spec.Replicas)
	}
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.GRPC == nil || p.GRPC.Port != 50051 {
			t.Errorf("%s probe is not gRPC health on 50051: %+v", name, p)
		}
	}
	grace := src.Config.Limits.ShutdownGrace.Duration.Seconds()
	if float64(*ps.TerminationGracePeriodSeconds) <= grace+PreStopSeconds {
		t.Errorf("terminationGracePeriodSeconds %d does not cover preStop %ds + shutdown_grace %.0fs", *ps.TerminationGracePeriodSeconds, PreStopSeconds, grace)
	}
	if !strings.Contains(dep.Spec.Template.Annotations["proxy.istio.io/config"], fmt.Sprintf(`"%ds"`, *ps.TerminationGracePeriodSeconds)) {
		t.Errorf("sidecar drain does not last the pod's grace period: %v", dep.Spec.Template.Annotations)
	}
	if len(ps.TopologySpreadConstraints) == 0 {
		t.Error("no topology spread")
	}
	for _, e := range c.Env {
		if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("env %s is not a Secret reference", e.Name)
		}
	}
	if svc.Spec.Ports[0].AppProtocol == nil || *svc.Spec.Ports[0].AppProtocol != "grpc" {
		t.Errorf("Service gRPC port appProtocol = %v", svc.Spec.Ports[0].AppProtocol)
	}
	if got := ap.Spec.GetRules()[0].GetFrom()[0].GetSource().GetPrincipals(); len(got) != 1 || got[0] != "cluster.local/ns/llmproc/sa/llm-gateway-istio" {
		t.Errorf("AuthorizationPolicy principals = %v", got)
	}
	// The ConfigMap's config is the user's with only listen changed.
	pod, err := Load([]byte(cm.Data[ConfigFile]))
	if err != nil {
		t.Fatal(err)
	}
	want := *src.Config
	want.Listen.GRPC, want.Listen.HTTP = "0.0.0.0:50051", "0.0.0.0:9090"
	want.Envoy.LLMProc = pod.Config.Envoy.LLMProc // defaulted from listen.grpc
	if d := cmp.Diff(want, *pod.Config, cmp.AllowUnexported(want)); d != "" {
		t.Errorf("pod config differs beyond listen (-want +got):\n%s", d)
	}
}
