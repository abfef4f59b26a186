package mesh

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	apinetworking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	telemetryv1 "istio.io/client-go/pkg/apis/telemetry/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

// Problems Check reports; test with errors.Is.
var (
	// ErrUnknownKind: a document's apiVersion and kind name no type Check knows.
	ErrUnknownKind = errors.New("unknown apiVersion/kind")
	// ErrDecode: a document does not decode strictly into its type (unknown
	// or misspelt fields, wrong types, snake_case keys in an Istio spec).
	ErrDecode = errors.New("object does not decode strictly")
	// ErrName: a name or namespace Kubernetes would refuse.
	ErrName = errors.New("invalid object name")
	// ErrPatch: an EnvoyFilter patch Istio's validation would refuse, or
	// whose value does not decode strictly into the type its applyTo
	// implies or fails that type's validation.
	ErrPatch = errors.New("invalid EnvoyFilter patch")
)

// kinds maps "apiVersion/kind" to a constructor of its Go type.
var kinds = map[string]func() runtime.Object{
	"v1/Namespace":                               func() runtime.Object { return &corev1.Namespace{} },
	"v1/ServiceAccount":                          func() runtime.Object { return &corev1.ServiceAccount{} },
	"v1/ConfigMap":                               func() runtime.Object { return &corev1.ConfigMap{} },
	"v1/Service":                                 func() runtime.Object { return &corev1.Service{} },
	"apps/v1/Deployment":                         func() runtime.Object { return &appsv1.Deployment{} },
	"policy/v1/PodDisruptionBudget":              func() runtime.Object { return &policyv1.PodDisruptionBudget{} },
	"monitoring.coreos.com/v1/ServiceMonitor":    func() runtime.Object { return &monitoringv1.ServiceMonitor{} },
	"security.istio.io/v1/AuthorizationPolicy":   func() runtime.Object { return &securityv1.AuthorizationPolicy{} },
	"security.istio.io/v1/RequestAuthentication": func() runtime.Object { return &securityv1.RequestAuthentication{} },
	EnvoyFilterVersion + "/EnvoyFilter":          func() runtime.Object { return &networkingv1alpha3.EnvoyFilter{} },
	NetworkingVersion + "/ServiceEntry":          func() runtime.Object { return &networkingv1.ServiceEntry{} },
	NetworkingVersion + "/VirtualService":        func() runtime.Object { return &networkingv1.VirtualService{} },
	GatewayVersion + "/Gateway":                  func() runtime.Object { return &gatewayv1.Gateway{} },
	TelemetryVersion + "/Telemetry":              func() runtime.Object { return &telemetryv1.Telemetry{} },
}

// istioSpec is the protobuf spec of an Istio object, whose generated
// UnmarshalJSON tolerates unknown fields; Check decodes it again strictly.
func istioSpec(o runtime.Object) proto.Message {
	switch v := o.(type) {
	case *networkingv1alpha3.EnvoyFilter:
		return &v.Spec
	case *networkingv1.ServiceEntry:
		return &v.Spec
	case *networkingv1.VirtualService:
		return &v.Spec
	case *securityv1.AuthorizationPolicy:
		return &v.Spec
	case *securityv1.RequestAuthentication:
		return &v.Spec
	case *telemetryv1.Telemetry:
		return &v.Spec
	}
	return nil
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*\n`)

// Parse splits a multi-document rendering and decodes every document
// strictly into its Go type: unknown fields are errors, as with kubectl's
// strict field validation, and Istio specs are decoded again with protojson
// (unknown fields rejected) and must use the camelCase names the CRD schemas
// know. It returns the objects and every problem found, joined.
func Parse(data []byte) ([]runtime.Object, error) {
	var objs []runtime.Object
	var errs []error
	for i, doc := range docSeparator.Split(string(data), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		o, err := decode([]byte(doc))
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", i, err))
			continue
		}
		objs = append(objs, o)
	}
	return objs, errors.Join(errs...)
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func decode(doc []byte) (runtime.Object, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	mk := kinds[tm.APIVersion+"/"+tm.Kind]
	if mk == nil {
		return nil, fmt.Errorf("%w: %s %s", ErrUnknownKind, tm.APIVersion, tm.Kind)
	}
	o := mk()
	if err := yaml.UnmarshalStrict(doc, o); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrDecode, tm.Kind, err)
	}
	if spec := istioSpec(o); spec != nil {
		var raw struct {
			Spec json.RawMessage `json:"spec"`
		}
		if err := yaml.Unmarshal(doc, &raw); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrDecode, tm.Kind, err)
		}
		if err := strictProto(raw.Spec, spec.ProtoReflect().New().Interface()); err != nil {
			return nil, fmt.Errorf("%w: %s spec: %v", ErrDecode, tm.Kind, err)
		}
	}
	return o, nil
}

// strictProto decodes JSON into m with unknown fields rejected, and requires
// the input to be exactly what protojson writes back (camelCase names, no
// default values spelt out), since a CRD's structural schema knows only the
// camelCase names and would prune anything else.
func strictProto(js []byte, m proto.Message) error {
	if err := (protojson.UnmarshalOptions{}).Unmarshal(js, m); err != nil {
		return err
	}
	back, err := protojson.Marshal(m)
	if err != nil {
		return err
	}
	var in, out any
	if err := json.Unmarshal(js, &in); err != nil {
		return err
	}
	if err := json.Unmarshal(back, &out); err != nil {
		return err
	}
	if !reflect.DeepEqual(in, out) {
		return fmt.Errorf("fields not in the CRD's camelCase form or spelt-out defaults:\n got %s\nwant %s", js, back)
	}
	return nil
}

// Check parses a rendering (Parse) and then checks each object as the API
// server and Istio's validation would: DNS-1123 names (DNS-1035 for
// Services) and namespaces, and for every EnvoyFilter: targetRefs or a
// selector, not both; each patch's match agreeing with its applyTo; each
// patch value decoding strictly into the go-control-plane type its applyTo
// implies, every typed extension with a typed_config, and ValidateAll passing
// (for a MERGE, on the value merged into the object Istio generates).
func Check(data []byte) error {
	objs, err := Parse(data)
	errs := []error{err}
	for _, o := range objs {
		errs = append(errs, checkObject(o)...)
	}
	return errors.Join(errs...)
}

func checkObject(o runtime.Object) []error {
	var errs []error
	acc, ok := o.(metav1.Object)
	if !ok {
		return []error{fmt.Errorf("%w: %T has no metadata", ErrDecode, o)}
	}
	kind := o.GetObjectKind().GroupVersionKind().Kind
	where := kind + " " + acc.GetNamespace() + "/" + acc.GetName()
	nameErrs := validation.IsDNS1123Subdomain(acc.GetName())
	if kind == "Service" {
		nameErrs = validation.IsDNS1035Label(acc.GetName())
	}
	for _, e := range nameErrs {
		errs = append(errs, fmt.Errorf("%w: %s: name: %s", ErrName, where, e))
	}
	if kind != "Namespace" {
		if acc.GetNamespace() == "" {
			errs = append(errs, fmt.Errorf("%w: %s: no namespace", ErrName, where))
		}
		for _, e := range validation.IsDNS1123Label(acc.GetNamespace()) {
			errs = append(errs, fmt.Errorf("%w: %s: namespace: %s", ErrName, where, e))
		}
	}
	if ef, ok := o.(*networkingv1alpha3.EnvoyFilter); ok {
		for _, err := range CheckEnvoyFilter(&ef.Spec) {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
	}
	return errs
}

// PatchType is the go-control-plane message an EnvoyFilter patch value of
// this applyTo must decode into (nil for kinds llmproc does not render).
func PatchType(applyTo apinetworking.EnvoyFilter_ApplyTo) proto.Message {
	switch applyTo {
	case apinetworking.EnvoyFilter_LISTENER:
		return &listenerv3.Listener{}
	case apinetworking.EnvoyFilter_FILTER_CHAIN:
		return &listenerv3.FilterChain{}
	case apinetworking.EnvoyFilter_NETWORK_FILTER:
		return &listenerv3.Filter{}
	case apinetworking.EnvoyFilter_HTTP_FILTER:
		return &hcmv3.HttpFilter{}
	case apinetworking.EnvoyFilter_ROUTE_CONFIGURATION:
		return &routev3.RouteConfiguration{}
	case apinetworking.EnvoyFilter_VIRTUAL_HOST:
		return &routev3.VirtualHost{}
	case apinetworking.EnvoyFilter_HTTP_ROUTE:
		return &routev3.Route{}
	case apinetworking.EnvoyFilter_CLUSTER:
		return &clusterv3.Cluster{}
	case apinetworking.EnvoyFilter_BOOTSTRAP:
		return &bootstrapv3.Bootstrap{}
	}
	return nil
}

// PatchValue decodes a patch value strictly into the type its applyTo
// implies: protojson with unknown fields rejected, every "@type" resolved.
func PatchValue(p *apinetworking.EnvoyFilter_EnvoyConfigObjectPatch) (proto.Message, error) {
	m := PatchType(p.GetApplyTo())
	if m == nil {
		return nil, fmt.Errorf("applyTo %v: not a kind llmproc checks", p.GetApplyTo())
	}
	js, err := protojson.Marshal(p.GetPatch().GetValue())
	if err != nil {
		return nil, err
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(js, m); err != nil {
		return nil, err
	}
	return m, nil
}

// CheckEnvoyFilter checks an EnvoyFilter spec as Istio's validation does, and
// stricter: problems Istio only warns about (unknown fields, a filter without
// typed_config) are errors here, and patch values must pass ValidateAll.
func CheckEnvoyFilter(ef *apinetworking.EnvoyFilter) []error {
	var errs []error
	fail := func(i int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: configPatches[%d]: %s", ErrPatch, i, fmt.Sprintf(format, args...)))
	}
	if ef.GetWorkloadSelector() != nil && len(ef.GetTargetRefs()) > 0 {
		errs = append(errs, fmt.Errorf("%w: both workloadSelector and targetRefs", ErrPatch))
	}
	for i, cp := range ef.GetConfigPatches() {
		op := cp.GetPatch().GetOperation()
		switch {
		case cp.GetApplyTo() == apinetworking.EnvoyFilter_INVALID:
			fail(i, "missing applyTo")
			continue
		case op == apinetworking.EnvoyFilter_Patch_INVALID:
			fail(i, "missing patch operation")
			continue
		case op != apinetworking.EnvoyFilter_Patch_REMOVE && cp.GetPatch().GetValue() == nil:
			fail(i, "missing patch value")
			continue
		}
		if msg := matchProblem(cp); msg != "" {
			fail(i, "%s", msg)
		}
		if op == apinetworking.EnvoyFilter_Patch_REMOVE {
			continue
		}
		v, err := PatchValue(cp)
		if err != nil {
			fail(i, "%v value: %v", cp.GetApplyTo(), err)
			continue
		}
		if missing := untyped(v); len(missing) > 0 {
			fail(i, "%v value: extensions without typed_config: %s", cp.GetApplyTo(), strings.Join(missing, ", "))
		}
		if op == apinetworking.EnvoyFilter_Patch_MERGE {
			if v, err = mergedIntoGenerated(cp.GetApplyTo(), v); err != nil {
				fail(i, "%v merge: %v", cp.GetApplyTo(), err)
				continue
			}
		}
		if err := validateAll(v); err != nil {
			fail(i, "%v %v value: %v", cp.GetApplyTo(), op, err)
		}
	}
	return errs
}

// matchProblem mirrors Istio's validation of how a match lines up with its
// applyTo; "" when it does.
func matchProblem(cp *apinetworking.EnvoyFilter_EnvoyConfigObjectPatch) string {
	m := cp.GetMatch()
	if m.GetObjectTypes() == nil {
		return ""
	}
	switch cp.GetApplyTo() {
	case apinetworking.EnvoyFilter_LISTENER, apinetworking.EnvoyFilter_FILTER_CHAIN,
		apinetworking.EnvoyFilter_NETWORK_FILTER, apinetworking.EnvoyFilter_HTTP_FILTER:
		l := m.GetListener()
		if l == nil {
			return "applyTo for listener class objects needs a listener match"
		}
		f := l.GetFilterChain().GetFilter()
		if f == nil {
			return ""
		}
		if f.GetName() == "" {
			return "filter match has no name to match on"
		}
		if sub := f.GetSubFilter(); sub != nil {
			if cp.GetApplyTo() != apinetworking.EnvoyFilter_HTTP_FILTER {
				return "subfilter match can be used with applyTo HTTP_FILTER only"
			}
			if f.GetName() != "envoy.filters.network.http_connection_manager" {
				return "subfilter match requires the HTTP connection manager filter"
			}
			if sub.GetName() == "" {
				return "subfilter match has no name to match on"
			}
		}
	case apinetworking.EnvoyFilter_ROUTE_CONFIGURATION, apinetworking.EnvoyFilter_VIRTUAL_HOST, apinetworking.EnvoyFilter_HTTP_ROUTE:
		if m.GetRouteConfiguration() == nil {
			return "applyTo for http route class objects needs a route configuration match"
		}
	case apinetworking.EnvoyFilter_CLUSTER:
		if m.GetCluster() == nil {
			return "applyTo for cluster class objects needs a cluster match"
		}
	}
	return ""
}

// walk calls visit for m and every message inside it, at any depth,
// unpacking Anys; packed is true for a message that came out of an Any (or
// is the root), and an Any that does not unpack is reported as err.
func walk(m protoreflect.Message, packed bool, visit func(m protoreflect.Message, packed bool, err error)) {
	visit(m, packed, nil)
	if a, ok := m.Interface().(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err != nil {
			visit(m, false, fmt.Errorf("%s: %w", a.GetTypeUrl(), err))
			return
		}
		walk(inner.ProtoReflect(), true, visit)
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len(); i++ {
				walk(v.List().Get(i).Message(), false, visit)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				walk(mv.Message(), false, visit)
				return true
			})
		case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
			walk(v.Message(), false, visit)
		}
		return true
	})
}

// untyped lists the messages that have a typed_config field left unset
// (Envoy would look the extension up by name, which it no longer does).
func untyped(m proto.Message) []string {
	var out []string
	walk(m.ProtoReflect(), true, func(m protoreflect.Message, _ bool, _ error) {
		fields := m.Descriptor().Fields()
		tc := fields.ByName("typed_config")
		if tc == nil || m.Has(tc) {
			return
		}
		if cd := fields.ByName("config_discovery"); cd != nil && m.Has(cd) {
			return
		}
		name := ""
		if f := fields.ByName("name"); f != nil && f.Kind() == protoreflect.StringKind {
			name = m.Get(f).String()
		}
		out = append(out, fmt.Sprintf("%s %q", m.Descriptor().Name(), name))
	})
	return out
}

// validateAll runs ValidateAll on a message and on every message packed in
// an Any inside it: proto validation does not look into Anys, Envoy does
// when it loads the extension.
func validateAll(m proto.Message) error {
	var errs []error
	walk(m.ProtoReflect(), true, func(m protoreflect.Message, packed bool, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		if v, ok := m.Interface().(interface{ ValidateAll() error }); ok && packed {
			if err := v.ValidateAll(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", m.Descriptor().FullName(), err))
			}
		}
	})
	return errors.Join(errs...)
}

// mergedIntoGenerated merges a MERGE patch value into a stand-in for the
// object Istio generates on a gateway (carrying the fields Envoy requires),
// the way Istio merges, so that ValidateAll judges what Envoy will get.
func mergedIntoGenerated(applyTo apinetworking.EnvoyFilter_ApplyTo, v proto.Message) (proto.Message, error) {
	switch applyTo {
	case apinetworking.EnvoyFilter_LISTENER:
		base := &listenerv3.Listener{Name: "0.0.0.0_80", Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "0.0.0.0", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 80}},
		}}}
		proto.Merge(base, v)
		return base, nil
	case apinetworking.EnvoyFilter_VIRTUAL_HOST:
		base := &routev3.VirtualHost{Name: "blackhole:80", Domains: []string{"*"}}
		proto.Merge(base, v)
		return base, nil
	case apinetworking.EnvoyFilter_NETWORK_FILTER:
		f := v.(*listenerv3.Filter)
		patch := &hcmv3.HttpConnectionManager{}
		if err := f.GetTypedConfig().UnmarshalTo(patch); err != nil {
			return nil, fmt.Errorf("only HTTP connection manager merges are checked: %w", err)
		}
		base := &hcmv3.HttpConnectionManager{
			StatPrefix: "outbound_0.0.0.0_80",
			RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
				RouteConfigName: "http.80",
				ConfigSource:    &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}},
			}},
		}
		proto.Merge(base, patch)
		a, err := anypb.New(base)
		if err != nil {
			return nil, err
		}
		return &listenerv3.Filter{Name: f.GetName(), ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: a}}, nil
	}
	return nil, fmt.Errorf("no stand-in for a MERGE into %v", applyTo)
}
