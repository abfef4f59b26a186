package harness

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	upstreamcodecv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/upstream_codec/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	earlyhmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	previouspriov3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// plan is the bootstrap compiled into what the harness executes.
type plan struct {
	listenAddr  string
	bufferLimit int
	statPrefix  string
	routes      []*vhost
	filters     []*procConfig // downstream ext_proc filters, in order
	jwt         *jwtAuthn     // jwt_authn, before every ext_proc filter; nil when absent
	earlyRemove []string      // early_header_mutation removals, before route matching and filters
	now         func() time.Time
	peerURISAN  func(*http.Request) string
	accessLog   []*accessLogger
	upstreamLog []*accessLogger
	localReply  *localReplyConfig
	clusters    map[string]*cluster
	grpcTargets map[string]string // ext_proc cluster name → host:port
	rds         bool              // the route configuration came from RDS
	version     envoyVersion      // the Envoy release played (Options.EnvoyVersion)
	internal    internalAddresses // which clients are internal (internal.go)
	tracing     *tracingSpec      // the HCM's tracing (tracing.go); nil without
	tracer      *envoyTracer      // its exporter, set by Envoy.install
}

type vhost struct {
	name    string
	domains []string
	routes  []*route
}

type route struct {
	// attemptCount: the virtual host's include_request_attempt_count — each
	// upstream request carries x-envoy-attempt-count (1 for the first try).
	attemptCount    bool
	name            string
	prefix, path    string
	regex           *regexp.Regexp
	caseInsensitive bool
	headers         []headerMatcher

	cluster, clusterHeader string
	notFoundCode           int
	direct                 *directResponse
	hostRewrite            string
	autoHostRewrite        bool
	prefixRewrite          string
	bodyLimit              int // request_body_buffer_limit; 0 = the listener's
	respHeadersToAdd       []headerOption
	respHeadersToRemove    []string
	reqHeadersToAdd        []headerOption
	reqHeadersToRemove     []string
	timeout, idleTimeout   time.Duration
	retry                  *retryPolicy
}

// headerOption is a route header to add: appended or overwritten.
type headerOption struct {
	key, value string
	append     bool
}

func headerOptions(opts []*corev3.HeaderValueOption, path string) ([]headerOption, error) {
	var out []headerOption
	for i, o := range opts {
		v := o.GetHeader().GetValue()
		if strings.Contains(v, "%") {
			return nil, fmt.Errorf("%s[%d]: header values with command operators unsupported by the harness", path, i)
		}
		app := o.GetAppendAction() == corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
		if o.GetAppend() != nil {
			app = o.GetAppend().GetValue()
		}
		out = append(out, headerOption{strings.ToLower(o.GetHeader().GetKey()), v, app})
	}
	return out, nil
}

func (h *headerMap) applyOptions(opts []headerOption) {
	for _, o := range opts {
		if o.append {
			h.add(o.key, o.value)
		} else {
			h.set(o.key, o.value)
		}
	}
}

type directResponse struct {
	status int
	body   string
}

type headerMatcher struct {
	name   string
	invert bool
	match  func(v string, present bool) bool
}

type retryPolicy struct {
	on             map[string]bool
	codes          map[int]bool
	numRetries     int
	perTry         time.Duration
	base, max      time.Duration
	rlHeaders      []string // reset headers in SECONDS format
	rlMax          time.Duration
	prevPriorities int             // previous_priorities update_frequency; 0 = off
	headers        []headerMatcher // retriable_headers (retry_on retriable-headers)
}

// Field allow-lists: anything else set in these messages is unsupported and
// rejected at Start. "Accepted" fields with no effect here are listed too.
// (The HCM's tracing messages have theirs in tracing.go.)
var supported = map[string][]string{
	"envoy.config.listener.v3.Listener":                                                 {"name", "address", "filter_chains", "per_connection_buffer_limit_bytes", "stat_prefix"},
	"envoy.config.listener.v3.FilterChain":                                              {"filters", "name"},
	"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager": {"stat_prefix", "codec_type", "route_config", "http_filters", "access_log", "local_reply_config", "stream_idle_timeout", "request_timeout", "use_remote_address", "internal_address_config", "generate_request_id", "normalize_path", "merge_slashes", "common_http_protocol_options", "http_protocol_options", "http2_protocol_options", "server_name", "max_request_headers_kb", "early_header_mutation_extensions", "tracing"},
	"envoy.config.route.v3.RouteConfiguration":                                          {"name", "virtual_hosts", "validate_clusters"},
	"envoy.config.route.v3.VirtualHost":                                                 {"name", "domains", "routes", "include_request_attempt_count"},
	"envoy.config.route.v3.Route":                                                       {"name", "match", "route", "direct_response", "request_body_buffer_limit", "response_headers_to_add", "response_headers_to_remove", "request_headers_to_add", "request_headers_to_remove"},
	"envoy.config.route.v3.RouteMatch":                                                  {"prefix", "path", "safe_regex", "headers", "case_sensitive"},
	"envoy.config.route.v3.RouteAction":                                                 {"cluster", "cluster_header", "cluster_not_found_response_code", "host_rewrite_literal", "auto_host_rewrite", "prefix_rewrite", "timeout", "idle_timeout", "retry_policy"},
	"envoy.config.route.v3.RetryPolicy":                                                 {"retry_on", "num_retries", "per_try_timeout", "retry_priority", "retry_host_predicate", "host_selection_retry_max_attempts", "retriable_status_codes", "retriable_headers", "retry_back_off", "rate_limited_retry_back_off"},
	"envoy.config.route.v3.HeaderMatcher":                                               {"name", "exact_match", "prefix_match", "suffix_match", "contains_match", "safe_regex_match", "present_match", "string_match", "invert_match"},
	"envoy.config.cluster.v3.Cluster":                                                   {"name", "type", "connect_timeout", "load_assignment", "outlier_detection", "typed_extension_protocol_options", "transport_socket", "transport_socket_matches", "dns_lookup_family", "lb_policy", "circuit_breakers", "http2_protocol_options", "metadata", "common_lb_config"},
	"envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor":                       {"grpc_service", "failure_mode_allow", "processing_mode", "request_attributes", "response_attributes", "message_timeout", "stat_prefix", "mutation_rules", "max_message_timeout", "allow_mode_override", "metadata_options", "route_cache_action", "disable_clear_route_cache", "send_body_without_waiting_for_header_response", "allowed_override_modes", "status_on_error", "allow_content_length_header"},
	"envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication":                      {"providers", "rules"},
	"envoy.extensions.filters.http.jwt_authn.v3.JwtProvider":                            {"issuer", "audiences", "local_jwks", "remote_jwks", "forward", "payload_in_metadata", "clock_skew_seconds"},
	"envoy.extensions.upstreams.http.v3.HttpProtocolOptions":                            {"explicit_http_config", "http_filters", "common_http_protocol_options", "upstream_http_protocol_options"},
	"envoy.config.bootstrap.v3.Bootstrap.DynamicResources":                              {"lds_config", "cds_config", "ads_config"},
	"envoy.config.core.v3.ConfigSource":                                                 {"ads", "resource_api_version"},
	"envoy.config.core.v3.ApiConfigSource":                                              {"api_type", "transport_api_version", "grpc_services", "set_node_on_first_message_only"},
	"envoy.config.core.v3.GrpcService":                                                  {"envoy_grpc"},
	"envoy.config.core.v3.GrpcService.EnvoyGrpc":                                        {"cluster_name"},
	"envoy.config.cluster.v3.CircuitBreakers":                                           {"thresholds", "per_host_thresholds"},
	"envoy.config.cluster.v3.CircuitBreakers.Thresholds":                                {"priority", "max_connections", "max_pending_requests", "max_requests", "max_retries", "retry_budget", "track_remaining"},
	"envoy.config.cluster.v3.CircuitBreakers.Thresholds.RetryBudget":                    {"budget_percent", "min_retry_concurrency"},
	"envoy.config.cluster.v3.OutlierDetection":                                          {"consecutive_5xx", "interval", "base_ejection_time", "max_ejection_percent", "enforcing_consecutive_5xx", "consecutive_gateway_failure", "enforcing_consecutive_gateway_failure", "max_ejection_time", "enforcing_success_rate", "enforcing_failure_percentage"},
}

// checkFields fails if m sets a field outside its allow-list.
func checkFields(m proto.Message, path string) error {
	r := m.ProtoReflect()
	allowed, ok := supported[string(r.Descriptor().FullName())]
	if !ok {
		return nil
	}
	return checkAllowed(m, path, allowed)
}

// checkAllowed fails if m sets a field not in allowed.
func checkAllowed(m proto.Message, path string, allowed []string) error {
	r := m.ProtoReflect()
	var bad []string
	r.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if !slices.Contains(allowed, string(fd.Name())) {
			bad = append(bad, string(fd.Name()))
		}
		return true
	})
	if len(bad) > 0 {
		return fmt.Errorf("%s: unsupported by the harness: %s", path, strings.Join(bad, ", "))
	}
	return nil
}

func dur(d *durationpb.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.AsDuration()
}

// dynamic is what compile needs to know about a bootstrap folded from ADS
// resources (adsState.fold).
type dynamic struct {
	// prev is the plan served now: its clusters whose config is unchanged
	// are taken over with their state (hosts, outlier ejections,
	// connections), as Envoy keeps a cluster a CDS update does not change.
	prev *plan
	// rds: the listener's route configuration came from RDS, where
	// validate_clusters defaults to false.
	rds bool
}

// compile turns bs into a plan; dyn is nil for a static bootstrap.
func compile(bs *bootstrapv3.Bootstrap, opts Options, dyn *dynamic) (*plan, error) {
	sr := bs.GetStaticResources()
	if bs.GetDynamicResources() != nil {
		return nil, errors.New("dynamic_resources: only ADS is supported by the harness (see Start)")
	}
	if len(sr.GetListeners()) == 0 {
		return nil, errors.New("static_resources.listeners: none")
	}
	version, err := parseEnvoyVersion(opts.EnvoyVersion)
	if err != nil {
		return nil, err
	}
	p := &plan{clusters: map[string]*cluster{}, grpcTargets: map[string]string{}, version: version, now: opts.Now, peerURISAN: opts.PeerURISAN}
	if p.now == nil {
		p.now = time.Now
	}
	var prev map[string]*cluster
	if dyn != nil {
		p.rds = dyn.rds
		if dyn.prev != nil {
			prev = dyn.prev.clusters
		}
	}
	var errs []error
	kept := map[string]bool{}
	for i, c := range sr.GetClusters() {
		if _, dup := p.clusters[c.GetName()]; dup {
			errs = append(errs, fmt.Errorf("clusters[%d]: duplicate name %q", i, c.GetName()))
			continue
		}
		if old := prev[c.GetName()]; old != nil && proto.Equal(old.src, c) {
			p.clusters[c.GetName()], kept[c.GetName()] = old, true
			continue
		}
		cl, err := compileCluster(c, fmt.Sprintf("clusters[%d]", i))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.clusters[c.GetName()] = cl
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	l := sr.GetListeners()[0]
	if err := p.compileListener(l, opts); err != nil {
		return nil, err
	}
	// Upstream http_filters are compiled once all clusters are known.
	for i, c := range sr.GetClusters() {
		if kept[c.GetName()] {
			continue
		}
		if err := p.compileUpstreamFilters(c, p.clusters[c.GetName()], fmt.Sprintf("clusters[%d]", i)); err != nil {
			errs = append(errs, err)
		}
	}
	return p, errors.Join(errs...)
}

func (p *plan) compileListener(l *listenerv3.Listener, opts Options) error {
	if err := checkFields(l, "listeners[0]"); err != nil {
		return err
	}
	sa := l.GetAddress().GetSocketAddress()
	p.listenAddr = net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
	if opts.ListenAddr != "" {
		p.listenAddr = opts.ListenAddr
	}
	p.bufferLimit = 1 << 20
	if v := l.GetPerConnectionBufferLimitBytes(); v != nil {
		p.bufferLimit = int(v.GetValue())
	}
	if len(l.GetFilterChains()) != 1 {
		return fmt.Errorf("listeners[0].filter_chains: want exactly one, got %d", len(l.GetFilterChains()))
	}
	fc := l.GetFilterChains()[0]
	if err := checkFields(fc, "listeners[0].filter_chains[0]"); err != nil {
		return err
	}
	if len(fc.GetFilters()) != 1 {
		return errors.New("listeners[0].filter_chains[0].filters: want only the http_connection_manager")
	}
	hcm := &hcmv3.HttpConnectionManager{}
	if err := anyTo(fc.GetFilters()[0].GetTypedConfig(), hcm); err != nil {
		return fmt.Errorf("listeners[0].filter_chains[0].filters[0]: %w", err)
	}
	return p.compileHCM(hcm, "http_connection_manager")
}

func anyTo(a *anypb.Any, m proto.Message) error {
	if a == nil {
		return errors.New("typed_config missing")
	}
	if a.MessageName() != m.ProtoReflect().Descriptor().FullName() {
		return fmt.Errorf("typed_config %s: unsupported by the harness (want %s)", a.MessageName(), m.ProtoReflect().Descriptor().FullName())
	}
	return a.UnmarshalTo(m)
}

func (p *plan) compileHCM(hcm *hcmv3.HttpConnectionManager, path string) error {
	if err := checkFields(hcm, path); err != nil {
		return err
	}
	p.statPrefix = hcm.GetStatPrefix()
	ia, err := compileInternalAddresses(hcm, path)
	if err != nil {
		return err
	}
	p.internal = ia
	if err := p.compileTracing(hcm.GetTracing(), path+".tracing"); err != nil {
		return err
	}
	for i, ext := range hcm.GetEarlyHeaderMutationExtensions() {
		ep := fmt.Sprintf("%s.early_header_mutation_extensions[%d]", path, i)
		hm := &earlyhmv3.HeaderMutation{}
		if err := anyTo(ext.GetTypedConfig(), hm); err != nil {
			return fmt.Errorf("%s: %w", ep, err)
		}
		for j, m := range hm.GetMutations() {
			if m.GetRemove() == "" {
				return fmt.Errorf("%s.mutations[%d]: only remove is played by the harness", ep, j)
			}
			p.earlyRemove = append(p.earlyRemove, strings.ToLower(m.GetRemove()))
		}
	}
	rc := hcm.GetRouteConfig()
	if rc == nil {
		return fmt.Errorf("%s: only an inline route_config is supported", path)
	}
	if err := p.compileRoutes(rc, path+".route_config"); err != nil {
		return err
	}
	filters := hcm.GetHttpFilters()
	if len(filters) == 0 || filters[len(filters)-1].GetName() != "envoy.filters.http.router" {
		return fmt.Errorf("%s.http_filters: the router must be last", path)
	}
	for i, f := range filters {
		fp := fmt.Sprintf("%s.http_filters[%d]", path, i)
		if f.GetDisabled() || f.GetIsOptional() || f.GetConfigDiscovery() != nil {
			return fmt.Errorf("%s: disabled/is_optional/config_discovery unsupported by the harness", fp)
		}
		switch a := f.GetTypedConfig(); a.MessageName() {
		case "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication":
			if len(p.filters) > 0 || p.jwt != nil {
				return fmt.Errorf("%s: the harness plays one jwt_authn filter, before every ext_proc filter", fp)
			}
			j, err := p.compileJWT(a, fp, p.now)
			if err != nil {
				return err
			}
			p.jwt = j
		case "envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor":
			pc, err := p.compileProc(a, fp, "http."+p.statPrefix+".", false)
			if err != nil {
				return err
			}
			p.filters = append(p.filters, pc)
		case "envoy.extensions.filters.http.router.v3.Router":
			if i != len(filters)-1 {
				return fmt.Errorf("%s: the router must be last", fp)
			}
			r := &routerv3.Router{}
			if err := a.UnmarshalTo(r); err != nil {
				return fmt.Errorf("%s: %w", fp, err)
			}
			for j, al := range r.GetUpstreamLog() {
				lg, err := compileAccessLog(al, fmt.Sprintf("%s.upstream_log[%d]", fp, j))
				if err != nil {
					return err
				}
				p.upstreamLog = append(p.upstreamLog, lg)
			}
		default:
			return fmt.Errorf("%s: http filter %q (%s) unsupported by the harness", fp, f.GetName(), a.MessageName())
		}
	}
	for i, al := range hcm.GetAccessLog() {
		lg, err := compileAccessLog(al, fmt.Sprintf("%s.access_log[%d]", path, i))
		if err != nil {
			return err
		}
		p.accessLog = append(p.accessLog, lg)
	}
	lr, err := compileLocalReply(hcm.GetLocalReplyConfig(), path+".local_reply_config")
	if err != nil {
		return err
	}
	p.localReply = lr
	return nil
}

func (p *plan) compileRoutes(rc *routev3.RouteConfiguration, path string) error {
	if err := checkFields(rc, path); err != nil {
		return err
	}
	// validate_clusters defaults to true for an inline route_config and to
	// false for one from RDS, where a route to an unknown cluster answers
	// cluster_not_found_response_code instead.
	validate := !p.rds
	if v := rc.GetValidateClusters(); v != nil {
		validate = v.GetValue()
	}
	for i, vh := range rc.GetVirtualHosts() {
		vp := fmt.Sprintf("%s.virtual_hosts[%d]", path, i)
		if err := checkFields(vh, vp); err != nil {
			return err
		}
		v := &vhost{name: vh.GetName(), domains: vh.GetDomains()}
		for j, r := range vh.GetRoutes() {
			rt, err := p.compileRoute(r, fmt.Sprintf("%s.routes[%d]", vp, j), validate)
			if err != nil {
				return err
			}
			rt.attemptCount = vh.GetIncludeRequestAttemptCount()
			v.routes = append(v.routes, rt)
		}
		p.routes = append(p.routes, v)
	}
	return nil
}

func (p *plan) compileRoute(r *routev3.Route, path string, validateCluster bool) (*route, error) {
	if err := checkFields(r, path); err != nil {
		return nil, err
	}
	m := r.GetMatch()
	if err := checkFields(m, path+".match"); err != nil {
		return nil, err
	}
	rt := &route{name: r.GetName(), prefix: m.GetPrefix(), path: m.GetPath()}
	if cs := m.GetCaseSensitive(); cs != nil && !cs.GetValue() {
		rt.caseInsensitive = true
	}
	switch m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix, *routev3.RouteMatch_Path:
	case *routev3.RouteMatch_SafeRegex:
		re, err := regexp.Compile("^(?:" + m.GetSafeRegex().GetRegex() + ")$")
		if err != nil {
			return nil, fmt.Errorf("%s.match.safe_regex: %w", path, err)
		}
		rt.regex = re
	default:
		return nil, fmt.Errorf("%s.match: path specifier %T unsupported by the harness", path, m.GetPathSpecifier())
	}
	for i, h := range m.GetHeaders() {
		hm, err := compileHeaderMatcher(h, fmt.Sprintf("%s.match.headers[%d]", path, i))
		if err != nil {
			return nil, err
		}
		rt.headers = append(rt.headers, hm)
	}
	if err := p.since(r.GetRequestBodyBufferLimit() != nil, path+".request_body_buffer_limit", envoyVersion{1, 36}); err != nil {
		return nil, err
	}
	if v := r.GetRequestBodyBufferLimit(); v != nil {
		rt.bodyLimit = int(v.GetValue())
	}
	var err error
	if rt.respHeadersToAdd, err = headerOptions(r.GetResponseHeadersToAdd(), path+".response_headers_to_add"); err != nil {
		return nil, err
	}
	if rt.reqHeadersToAdd, err = headerOptions(r.GetRequestHeadersToAdd(), path+".request_headers_to_add"); err != nil {
		return nil, err
	}
	for _, k := range r.GetResponseHeadersToRemove() {
		rt.respHeadersToRemove = append(rt.respHeadersToRemove, strings.ToLower(k))
	}
	for _, k := range r.GetRequestHeadersToRemove() {
		rt.reqHeadersToRemove = append(rt.reqHeadersToRemove, strings.ToLower(k))
	}
	if d := r.GetDirectResponse(); d != nil {
		rt.direct = &directResponse{status: int(d.GetStatus())}
		if b := d.GetBody(); b != nil {
			body, err := dataSource(b)
			if err != nil {
				return nil, fmt.Errorf("%s.direct_response.body: %w", path, err)
			}
			rt.direct.body = body
		}
		return rt, nil
	}
	a := r.GetRoute()
	if a == nil {
		return nil, fmt.Errorf("%s: only route and direct_response actions are supported by the harness", path)
	}
	if err := checkFields(a, path+".route"); err != nil {
		return nil, err
	}
	rt.cluster, rt.clusterHeader = a.GetCluster(), a.GetClusterHeader()
	if rt.cluster != "" && validateCluster {
		if _, ok := p.clusters[rt.cluster]; !ok {
			return nil, fmt.Errorf("%s.route.cluster: unknown cluster %q", path, rt.cluster)
		}
	}
	rt.notFoundCode = 503
	if a.GetClusterNotFoundResponseCode() == routev3.RouteAction_NOT_FOUND {
		rt.notFoundCode = 404
	} else if a.GetClusterNotFoundResponseCode() == routev3.RouteAction_INTERNAL_SERVER_ERROR {
		rt.notFoundCode = 500
	}
	rt.hostRewrite, rt.prefixRewrite = a.GetHostRewriteLiteral(), a.GetPrefixRewrite()
	rt.autoHostRewrite = a.GetAutoHostRewrite().GetValue()
	rt.timeout = dur(a.GetTimeout(), 15*time.Second)
	rt.idleTimeout = dur(a.GetIdleTimeout(), 0)
	if rp := a.GetRetryPolicy(); rp != nil {
		pol, err := compileRetry(rp, path+".route.retry_policy")
		if err != nil {
			return nil, err
		}
		rt.retry = pol
	}
	return rt, nil
}

func compileHeaderMatcher(h *routev3.HeaderMatcher, path string) (headerMatcher, error) {
	if err := checkFields(h, path); err != nil {
		return headerMatcher{}, err
	}
	hm := headerMatcher{name: strings.ToLower(h.GetName()), invert: h.GetInvertMatch()}
	switch s := h.GetHeaderMatchSpecifier().(type) {
	case *routev3.HeaderMatcher_PresentMatch:
		want := s.PresentMatch
		hm.match = func(_ string, present bool) bool { return present == want }
	case *routev3.HeaderMatcher_ExactMatch:
		hm.match = presentAnd(func(v string) bool { return v == s.ExactMatch })
	case *routev3.HeaderMatcher_PrefixMatch:
		hm.match = presentAnd(func(v string) bool { return strings.HasPrefix(v, s.PrefixMatch) })
	case *routev3.HeaderMatcher_SuffixMatch:
		hm.match = presentAnd(func(v string) bool { return strings.HasSuffix(v, s.SuffixMatch) })
	case *routev3.HeaderMatcher_ContainsMatch:
		hm.match = presentAnd(func(v string) bool { return strings.Contains(v, s.ContainsMatch) })
	case *routev3.HeaderMatcher_SafeRegexMatch:
		re, err := regexp.Compile("^(?:" + s.SafeRegexMatch.GetRegex() + ")$")
		if err != nil {
			return hm, fmt.Errorf("%s: %w", path, err)
		}
		hm.match = presentAnd(re.MatchString)
	case *routev3.HeaderMatcher_StringMatch:
		f, err := stringMatcher(s.StringMatch)
		if err != nil {
			return hm, fmt.Errorf("%s.string_match: %w", path, err)
		}
		hm.match = presentAnd(f)
	case nil:
		hm.match = func(_ string, present bool) bool { return present }
	default:
		return hm, fmt.Errorf("%s: matcher %T unsupported by the harness", path, s)
	}
	return hm, nil
}

func presentAnd(f func(string) bool) func(string, bool) bool {
	return func(v string, present bool) bool { return present && f(v) }
}

func stringMatcher(m *matcherv3.StringMatcher) (func(string) bool, error) {
	fold := m.GetIgnoreCase()
	norm := func(s string) string {
		if fold {
			return strings.ToLower(s)
		}
		return s
	}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		want := norm(p.Exact)
		return func(v string) bool { return norm(v) == want }, nil
	case *matcherv3.StringMatcher_Prefix:
		want := norm(p.Prefix)
		return func(v string) bool { return strings.HasPrefix(norm(v), want) }, nil
	case *matcherv3.StringMatcher_Suffix:
		want := norm(p.Suffix)
		return func(v string) bool { return strings.HasSuffix(norm(v), want) }, nil
	case *matcherv3.StringMatcher_Contains:
		want := norm(p.Contains)
		return func(v string) bool { return strings.Contains(norm(v), want) }, nil
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := regexp.Compile("^(?:" + p.SafeRegex.GetRegex() + ")$")
		if err != nil {
			return nil, err
		}
		return re.MatchString, nil
	}
	return nil, fmt.Errorf("match pattern %T unsupported by the harness", m.GetMatchPattern())
}

func compileRetry(rp *routev3.RetryPolicy, path string) (*retryPolicy, error) {
	if err := checkFields(rp, path); err != nil {
		return nil, err
	}
	pol := &retryPolicy{on: map[string]bool{}, codes: map[int]bool{}, numRetries: 1, base: 25 * time.Millisecond, rlMax: 300 * time.Second}
	known := []string{"5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "refused-stream", "retriable-status-codes", "retriable-4xx", "retriable-headers"}
	for _, on := range strings.Split(rp.GetRetryOn(), ",") {
		on = strings.TrimSpace(on)
		if on == "" {
			continue
		}
		if !slices.Contains(known, on) {
			return nil, fmt.Errorf("%s.retry_on: %q unsupported by the harness", path, on)
		}
		pol.on[on] = true
	}
	for _, c := range rp.GetRetriableStatusCodes() {
		pol.codes[int(c)] = true
	}
	for i, h := range rp.GetRetriableHeaders() {
		hm, err := compileHeaderMatcher(h, fmt.Sprintf("%s.retriable_headers[%d]", path, i))
		if err != nil {
			return nil, err
		}
		pol.headers = append(pol.headers, hm)
	}
	if n := rp.GetNumRetries(); n != nil {
		pol.numRetries = int(n.GetValue())
	}
	pol.perTry = dur(rp.GetPerTryTimeout(), 0)
	if bo := rp.GetRetryBackOff(); bo != nil {
		pol.base = dur(bo.GetBaseInterval(), pol.base)
		pol.max = dur(bo.GetMaxInterval(), 0)
	}
	if pol.max == 0 {
		pol.max = 10 * pol.base
	}
	if rl := rp.GetRateLimitedRetryBackOff(); rl != nil {
		for _, h := range rl.GetResetHeaders() {
			if h.GetFormat() != routev3.RetryPolicy_SECONDS {
				return nil, fmt.Errorf("%s.rate_limited_retry_back_off: only SECONDS reset headers are supported by the harness", path)
			}
			pol.rlHeaders = append(pol.rlHeaders, strings.ToLower(h.GetName()))
		}
		pol.rlMax = dur(rl.GetMaxInterval(), pol.rlMax)
	}
	if pr := rp.GetRetryPriority(); pr != nil {
		if pr.GetName() != "envoy.retry_priorities.previous_priorities" {
			return nil, fmt.Errorf("%s.retry_priority: %q unsupported by the harness", path, pr.GetName())
		}
		cfg := &previouspriov3.PreviousPrioritiesConfig{}
		if err := anyTo(pr.GetTypedConfig(), cfg); err != nil {
			return nil, fmt.Errorf("%s.retry_priority: %w", path, err)
		}
		pol.prevPriorities = max(1, int(cfg.GetUpdateFrequency()))
	}
	for i, hp := range rp.GetRetryHostPredicate() {
		// previous_hosts only matters with several hosts per priority; host
		// choice here already rotates round-robin.
		if hp.GetName() != "envoy.retry_host_predicates.previous_hosts" {
			return nil, fmt.Errorf("%s.retry_host_predicate[%d]: %q unsupported by the harness", path, i, hp.GetName())
		}
	}
	return pol, nil
}

func compileCluster(c *clusterv3.Cluster, path string) (*cluster, error) {
	if err := checkFields(c, path); err != nil {
		return nil, err
	}
	switch c.GetType() {
	case clusterv3.Cluster_STATIC, clusterv3.Cluster_STRICT_DNS, clusterv3.Cluster_LOGICAL_DNS:
	default:
		return nil, fmt.Errorf("%s.type: %v unsupported by the harness", path, c.GetType())
	}
	if c.GetLbPolicy() == clusterv3.Cluster_CLUSTER_PROVIDED {
		return nil, fmt.Errorf("%s.lb_policy: CLUSTER_PROVIDED (aggregate clusters) unsupported by the harness", path)
	}
	cl := &cluster{name: c.GetName(), src: c, connectTimeout: dur(c.GetConnectTimeout(), 5*time.Second)}
	if c.GetHttp2ProtocolOptions() != nil {
		cl.http2 = true
	}
	if a, ok := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]; ok {
		hpo := &upstreamhttpv3.HttpProtocolOptions{}
		if err := anyTo(a, hpo); err != nil {
			return nil, fmt.Errorf("%s.typed_extension_protocol_options: %w", path, err)
		}
		if err := checkFields(hpo, path+".typed_extension_protocol_options.HttpProtocolOptions"); err != nil {
			return nil, err
		}
		if hpo.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil {
			cl.http2 = true
		}
		if hpo.GetExplicitHttpConfig().GetHttp3ProtocolOptions() != nil {
			return nil, fmt.Errorf("%s: http3 unsupported by the harness", path)
		}
	}
	for k := range c.GetTypedExtensionProtocolOptions() {
		if k != "envoy.extensions.upstreams.http.v3.HttpProtocolOptions" {
			return nil, fmt.Errorf("%s.typed_extension_protocol_options[%q]: unsupported by the harness", path, k)
		}
	}
	cb, err := compileBreakers(c.GetCircuitBreakers(), cl.http2, path+".circuit_breakers")
	if err != nil {
		return nil, err
	}
	cl.cb = cb
	defTLS, err := tlsConfig(c.GetTransportSocket(), path+".transport_socket")
	if err != nil {
		return nil, err
	}
	type tsMatch struct {
		match *structpb.Struct
		tls   *tls.Config
	}
	var matches []tsMatch
	for i, m := range c.GetTransportSocketMatches() {
		tc, err := tlsConfig(m.GetTransportSocket(), fmt.Sprintf("%s.transport_socket_matches[%d]", path, i))
		if err != nil {
			return nil, err
		}
		matches = append(matches, tsMatch{m.GetMatch(), tc})
	}
	for _, lle := range c.GetLoadAssignment().GetEndpoints() {
		for _, lbe := range lle.GetLbEndpoints() {
			sa := lbe.GetEndpoint().GetAddress().GetSocketAddress()
			if sa == nil {
				return nil, fmt.Errorf("%s: only socket_address endpoints are supported by the harness", path)
			}
			h := &host{
				addr:     net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue()))),
				hostname: lbe.GetEndpoint().GetHostname(),
				priority: int(lle.GetPriority()),
				metadata: lbe.GetMetadata(),
				healthy:  lbe.GetHealthStatus() == corev3.HealthStatus_UNKNOWN || lbe.GetHealthStatus() == corev3.HealthStatus_HEALTHY || lbe.GetHealthStatus() == corev3.HealthStatus_DEGRADED,
				tls:      defTLS,
			}
			if h.hostname == "" && c.GetType() != clusterv3.Cluster_STATIC {
				h.hostname = sa.GetAddress() // DNS hosts are named by their address
			}
			if hn := lbe.GetEndpoint().GetHostname(); hn != "" && h.tls != nil && h.tls.ServerName == "" {
				h.tls = h.tls.Clone()
				h.tls.ServerName = hn
			}
			em := lbe.GetMetadata().GetFilterMetadata()["envoy.transport_socket_match"]
			for _, m := range matches {
				if structSubset(m.match, em) {
					h.tls = m.tls
					break
				}
			}
			cl.hosts = append(cl.hosts, h)
		}
	}
	sort.SliceStable(cl.hosts, func(i, j int) bool { return cl.hosts[i].priority < cl.hosts[j].priority })
	if od := c.GetOutlierDetection(); od != nil {
		if err := checkFields(od, path+".outlier_detection"); err != nil {
			return nil, err
		}
		o := &outlierConfig{
			consec5xx:   5,
			enforce5xx:  100,
			consecGw:    5,
			base:        dur(od.GetBaseEjectionTime(), 30*time.Second),
			maxEjection: dur(od.GetMaxEjectionTime(), 300*time.Second),
			maxPercent:  10,
			enforceGw:   0,
			enforceSR:   100,
			interval:    dur(od.GetInterval(), 10*time.Second),
		}
		if v := od.GetEnforcingSuccessRate(); v != nil {
			o.enforceSR = int(v.GetValue())
		}
		if v := od.GetEnforcingFailurePercentage(); v != nil {
			o.enforceFP = int(v.GetValue())
		}
		if v := od.GetConsecutive_5Xx(); v != nil {
			o.consec5xx = int(v.GetValue())
		}
		if v := od.GetEnforcingConsecutive_5Xx(); v != nil {
			o.enforce5xx = int(v.GetValue())
		}
		if v := od.GetConsecutiveGatewayFailure(); v != nil {
			o.consecGw = int(v.GetValue())
		}
		if v := od.GetEnforcingConsecutiveGatewayFailure(); v != nil {
			o.enforceGw = int(v.GetValue())
		}
		if v := od.GetMaxEjectionPercent(); v != nil {
			o.maxPercent = int(v.GetValue())
		}
		cl.outlier = o
	}
	return cl, nil
}

// structSubset reports whether every field of want equals the one in got.
func structSubset(want, got *structpb.Struct) bool {
	for k, v := range want.GetFields() {
		g, ok := got.GetFields()[k]
		if !ok || !proto.Equal(v, g) {
			return false
		}
	}
	return true
}

func tlsConfig(ts *corev3.TransportSocket, path string) (*tls.Config, error) {
	if ts == nil {
		return nil, nil
	}
	if ts.GetName() == "envoy.transport_sockets.raw_buffer" {
		return nil, nil
	}
	ctx := &tlsv3.UpstreamTlsContext{}
	if err := anyTo(ts.GetTypedConfig(), ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cfg := &tls.Config{ServerName: ctx.GetSni(), MinVersion: tls.VersionTLS12}
	vc := ctx.GetCommonTlsContext().GetValidationContext()
	if ca := vc.GetTrustedCa(); ca != nil {
		pem, err := dataSource(ca)
		if err != nil {
			return nil, fmt.Errorf("%s.trusted_ca: %w", path, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(pem)) {
			return nil, fmt.Errorf("%s.trusted_ca: no certificates", path)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

func dataSource(d *corev3.DataSource) (string, error) {
	switch s := d.GetSpecifier().(type) {
	case *corev3.DataSource_InlineString:
		return s.InlineString, nil
	case *corev3.DataSource_InlineBytes:
		return string(s.InlineBytes), nil
	case *corev3.DataSource_Filename:
		b, err := os.ReadFile(s.Filename)
		return string(b), err
	case *corev3.DataSource_EnvironmentVariable:
		return os.Getenv(s.EnvironmentVariable), nil
	}
	return "", fmt.Errorf("data source %T unsupported by the harness", d.GetSpecifier())
}

func (p *plan) compileUpstreamFilters(c *clusterv3.Cluster, cl *cluster, path string) error {
	a, ok := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
	if !ok {
		return nil
	}
	hpo := &upstreamhttpv3.HttpProtocolOptions{}
	if err := a.UnmarshalTo(hpo); err != nil {
		return err
	}
	filters := hpo.GetHttpFilters()
	for i, f := range filters {
		fp := fmt.Sprintf("%s.HttpProtocolOptions.http_filters[%d]", path, i)
		switch tc := f.GetTypedConfig(); tc.MessageName() {
		case "envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor":
			pc, err := p.compileProc(tc, fp, "cluster."+c.GetName(), true)
			if err != nil {
				return err
			}
			cl.filters = append(cl.filters, pc)
		case "envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec":
			if i != len(filters)-1 {
				return fmt.Errorf("%s: upstream_codec must be last", fp)
			}
			if err := anyTo(tc, &upstreamcodecv3.UpstreamCodec{}); err != nil {
				return fmt.Errorf("%s: %w", fp, err)
			}
		default:
			return fmt.Errorf("%s: upstream http filter %q (%s) unsupported by the harness", fp, f.GetName(), tc.MessageName())
		}
	}
	if len(filters) > 0 && filters[len(filters)-1].GetTypedConfig().MessageName() != "envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec" {
		return fmt.Errorf("%s.HttpProtocolOptions.http_filters: upstream_codec must be last", path)
	}
	return nil
}

func (p *plan) compileProc(a *anypb.Any, path, scope string, upstream bool) (*procConfig, error) {
	cfg := &extprocfilterv3.ExternalProcessor{}
	if err := a.UnmarshalTo(cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := checkFields(cfg, path); err != nil {
		return nil, err
	}
	pc := &procConfig{
		upstream:       upstream,
		failOpen:       cfg.GetFailureModeAllow(),
		timeout:        dur(cfg.GetMessageTimeout(), 200*time.Millisecond),
		maxTimeout:     dur(cfg.GetMaxMessageTimeout(), 0),
		reqAttrs:       cfg.GetRequestAttributes(),
		respAttrs:      cfg.GetResponseAttributes(),
		allowOverride:  cfg.GetAllowModeOverride(),
		allowedModes:   cfg.GetAllowedOverrideModes(),
		sendNoWait:     cfg.GetSendBodyWithoutWaitingForHeaderResponse(),
		forwardNS:      cfg.GetMetadataOptions().GetForwardingNamespaces().GetUntyped(),
		receiveNS:      cfg.GetMetadataOptions().GetReceivingNamespaces().GetUntyped(),
		routeAction:    cfg.GetRouteCacheAction(),
		disableClear:   cfg.GetDisableClearRouteCache(),
		statusOnError:  500,
		allowCL:        cfg.GetAllowContentLengthHeader(),
		initialMode:    normalizeMode(cfg.GetProcessingMode()),
		configMode:     cfg.GetProcessingMode(),
		disableImmResp: false,
	}
	if err := p.since(pc.allowCL, path+".allow_content_length_header", envoyVersion{1, 38}); err != nil {
		return nil, err
	}
	if pc.sendNoWait {
		return nil, fmt.Errorf("%s.send_body_without_waiting_for_header_response: unsupported by the harness", path)
	}
	if s := cfg.GetStatusOnError(); s != nil && s.GetCode() != 0 {
		pc.statusOnError = int(s.GetCode())
	}
	for _, m := range []*extprocfilterv3.ProcessingMode{pc.initialMode} {
		for _, b := range []extprocfilterv3.ProcessingMode_BodySendMode{m.GetRequestBodyMode(), m.GetResponseBodyMode()} {
			if b != extprocfilterv3.ProcessingMode_NONE && b != extprocfilterv3.ProcessingMode_BUFFERED && b != extprocfilterv3.ProcessingMode_STREAMED {
				return nil, fmt.Errorf("%s.processing_mode: body mode %v unsupported by the harness", path, b)
			}
		}
	}
	for _, attr := range append(append([]string(nil), pc.reqAttrs...), pc.respAttrs...) {
		if !knownAttribute(attr) {
			return nil, fmt.Errorf("%s: attribute %q unsupported by the harness", path, attr)
		}
	}
	if mr := cfg.GetMutationRules(); mr != nil {
		pc.rules = mutationRules{
			allowAllRouting: mr.GetAllowAllRouting().GetValue(),
			allowEnvoy:      mr.GetAllowEnvoy().GetValue(),
			disallowSystem:  mr.GetDisallowSystem().GetValue(),
			disallowAll:     mr.GetDisallowAll().GetValue(),
			disallowIsError: mr.GetDisallowIsError().GetValue(),
		}
		var err error
		if re := mr.GetAllowExpression(); re != nil {
			if pc.rules.allowExpr, err = regexp.Compile("^(?:" + re.GetRegex() + ")$"); err != nil {
				return nil, fmt.Errorf("%s.mutation_rules.allow_expression: %w", path, err)
			}
		}
		if re := mr.GetDisallowExpression(); re != nil {
			if pc.rules.disallowExpr, err = regexp.Compile("^(?:" + re.GetRegex() + ")$"); err != nil {
				return nil, fmt.Errorf("%s.mutation_rules.disallow_expression: %w", path, err)
			}
		}
	}
	gs := cfg.GetGrpcService()
	switch {
	case gs.GetEnvoyGrpc() != nil:
		name := gs.GetEnvoyGrpc().GetClusterName()
		cl, ok := p.clusters[name]
		if !ok {
			return nil, fmt.Errorf("%s.grpc_service.envoy_grpc.cluster_name: unknown cluster %q", path, name)
		}
		if !cl.http2 {
			return nil, fmt.Errorf("%s: ext_proc cluster %q must be HTTP/2 (explicit_http_config.http2_protocol_options)", path, name)
		}
		if len(cl.hosts) == 0 {
			return nil, fmt.Errorf("%s: ext_proc cluster %q has no endpoints", path, name)
		}
		pc.target, pc.clusterName, pc.cb = cl.hosts[0].addr, name, cl.cb
	case gs.GetGoogleGrpc() != nil:
		pc.target = gs.GetGoogleGrpc().GetTargetUri()
	default:
		return nil, fmt.Errorf("%s: grpc_service required (http_service unsupported by the harness)", path)
	}
	pc.callTimeout = dur(gs.GetTimeout(), 0)
	for _, hv := range gs.GetInitialMetadata() {
		v := hv.GetValue()
		if len(hv.GetRawValue()) > 0 {
			v = string(hv.GetRawValue())
		}
		pc.initialMetadata = append(pc.initialMetadata, strings.ToLower(hv.GetKey()), v)
	}
	// Envoy's ext_proc counters are <scope>ext_proc.<stat_prefix><name>,
	// the filter's stat_prefix taken as is (FilterConfig::generateStats in
	// source/extensions/filters/http/ext_proc/ext_proc.h); the scope is the
	// HCM's "http.<stat_prefix>." for a downstream filter and the cluster's
	// stats scope name, "cluster.<name>" without a trailing dot, for an
	// upstream one (ClusterInfoImpl in source/common/upstream/upstream_impl.cc).
	pc.stats = scope + "ext_proc." + cfg.GetStatPrefix()
	return pc, nil
}

// normalizeMode fills DEFAULT header modes: headers SEND, trailers SKIP.
func normalizeMode(m *extprocfilterv3.ProcessingMode) *extprocfilterv3.ProcessingMode {
	out := &extprocfilterv3.ProcessingMode{}
	if m != nil {
		out = proto.Clone(m).(*extprocfilterv3.ProcessingMode)
	}
	if out.RequestHeaderMode == extprocfilterv3.ProcessingMode_DEFAULT {
		out.RequestHeaderMode = extprocfilterv3.ProcessingMode_SEND
	}
	if out.ResponseHeaderMode == extprocfilterv3.ProcessingMode_DEFAULT {
		out.ResponseHeaderMode = extprocfilterv3.ProcessingMode_SEND
	}
	if out.RequestTrailerMode == extprocfilterv3.ProcessingMode_DEFAULT {
		out.RequestTrailerMode = extprocfilterv3.ProcessingMode_SKIP
	}
	if out.ResponseTrailerMode == extprocfilterv3.ProcessingMode_DEFAULT {
		out.ResponseTrailerMode = extprocfilterv3.ProcessingMode_SKIP
	}
	return out
}

func compileAccessLog(al *accesslogv3.AccessLog, path string) (*accessLogger, error) {
	lg := &accessLogger{}
	if f := al.GetFilter(); f != nil {
		flt, err := compileLogFilter(f, path+".filter")
		if err != nil {
			return nil, err
		}
		lg.filter = flt
	}
	var sfs interface {
		GetLogFormat() *corev3.SubstitutionFormatString
	}
	switch a := al.GetTypedConfig(); a.MessageName() {
	case "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog":
		m := &streamv3.StdoutAccessLog{}
		if err := a.UnmarshalTo(m); err != nil {
			return nil, err
		}
		sfs = m
	case "envoy.extensions.access_loggers.stream.v3.StderrAccessLog":
		m := &streamv3.StderrAccessLog{}
		if err := a.UnmarshalTo(m); err != nil {
			return nil, err
		}
		sfs = m
	case "envoy.extensions.access_loggers.file.v3.FileAccessLog":
		m := &filev3.FileAccessLog{}
		if err := a.UnmarshalTo(m); err != nil {
			return nil, err
		}
		if m.GetFormat() != "" || m.GetJsonFormat() != nil || m.GetTypedJsonFormat() != nil {
			return nil, fmt.Errorf("%s: deprecated FileAccessLog formats unsupported by the harness; use log_format", path)
		}
		sfs = m
	default:
		return nil, fmt.Errorf("%s: access logger %s unsupported by the harness", path, a.MessageName())
	}
	f, err := compileFormat(sfs.GetLogFormat(), defaultLogFormat, path+".log_format")
	if err != nil {
		return nil, err
	}
	lg.format = f
	return lg, nil
}

func compileLocalReply(c *hcmv3.LocalReplyConfig, path string) (*localReplyConfig, error) {
	lr := &localReplyConfig{}
	if c == nil {
		return lr, nil
	}
	if c.GetBodyFormat() != nil {
		f, err := compileFormat(c.GetBodyFormat(), "", path+".body_format")
		if err != nil {
			return nil, err
		}
		lr.bodyFormat = f
	}
	for i, m := range c.GetMappers() {
		mp := fmt.Sprintf("%s.mappers[%d]", path, i)
		flt, err := compileLogFilter(m.GetFilter(), mp+".filter")
		if err != nil {
			return nil, err
		}
		rm := &responseMapper{filter: flt}
		if sc := m.GetStatusCode(); sc != nil {
			rm.status = int(sc.GetValue())
		}
		if b := m.GetBody(); b != nil {
			body, err := dataSource(b)
			if err != nil {
				return nil, fmt.Errorf("%s.body: %w", mp, err)
			}
			rm.body = &body
		}
		if bf := m.GetBodyFormatOverride(); bf != nil {
			f, err := compileFormat(bf, "", mp+".body_format_override")
			if err != nil {
				return nil, err
			}
			rm.format = f
		}
		for _, h := range m.GetHeadersToAdd() {
			segs, err := parseSegments(h.GetHeader().GetValue(), mp+".headers_to_add")
			if err != nil {
				return nil, err
			}
			rm.headers = append(rm.headers, header{strings.ToLower(h.GetHeader().GetKey()), h.GetHeader().GetValue()})
			rm.values = append(rm.values, &format{text: segs})
			rm.appendHdr = append(rm.appendHdr, h.GetAppendAction() == corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD && (h.GetAppend() == nil || h.GetAppend().GetValue()))
		}
		lr.mappers = append(lr.mappers, rm)
	}
	return lr, nil
}

func compileLogFilter(f *accesslogv3.AccessLogFilter, path string) (logFilter, error) {
	switch s := f.GetFilterSpecifier().(type) {
	case *accesslogv3.AccessLogFilter_StatusCodeFilter:
		cmp := s.StatusCodeFilter.GetComparison()
		v := int(cmp.GetValue().GetDefaultValue())
		switch cmp.GetOp() {
		case accesslogv3.ComparisonFilter_EQ:
			return func(i *logInfo) bool { return i.code == v }, nil
		case accesslogv3.ComparisonFilter_GE:
			return func(i *logInfo) bool { return i.code >= v }, nil
		case accesslogv3.ComparisonFilter_LE:
			return func(i *logInfo) bool { return i.code <= v }, nil
		case accesslogv3.ComparisonFilter_NE:
			return func(i *logInfo) bool { return i.code != v }, nil
		}
	case *accesslogv3.AccessLogFilter_ResponseFlagFilter:
		flags := s.ResponseFlagFilter.GetFlags()
		return func(i *logInfo) bool {
			if len(flags) == 0 {
				return len(i.flags) > 0
			}
			for _, f := range flags {
				if slices.Contains(i.flags, f) {
					return true
				}
			}
			return false
		}, nil
	case *accesslogv3.AccessLogFilter_AndFilter, *accesslogv3.AccessLogFilter_OrFilter:
		var subs []*accesslogv3.AccessLogFilter
		and := false
		if a, ok := s.(*accesslogv3.AccessLogFilter_AndFilter); ok {
			subs, and = a.AndFilter.GetFilters(), true
		} else {
			subs = s.(*accesslogv3.AccessLogFilter_OrFilter).OrFilter.GetFilters()
		}
		var fs []logFilter
		for i, sub := range subs {
			lf, err := compileLogFilter(sub, fmt.Sprintf("%s.filters[%d]", path, i))
			if err != nil {
				return nil, err
			}
			fs = append(fs, lf)
		}
		return func(i *logInfo) bool {
			for _, f := range fs {
				if f(i) != and {
					return !and
				}
			}
			return and
		}, nil
	case *accesslogv3.AccessLogFilter_ExtensionFilter:
		return compileCELFilter(s.ExtensionFilter, path+".extension_filter")
	case *accesslogv3.AccessLogFilter_MetadataFilter:
		return metadataLogFilter(s.MetadataFilter, path+".metadata_filter")
	case *accesslogv3.AccessLogFilter_HeaderFilter:
		hm, err := compileHeaderMatcher(s.HeaderFilter.GetHeader(), path+".header_filter.header")
		if err != nil {
			return nil, err
		}
		return func(i *logInfo) bool {
			v, ok := i.reqHeaders.joined(hm.name)
			return hm.match(v, ok) != hm.invert
		}, nil
	}
	return nil, fmt.Errorf("%s: access log filter %T unsupported by the harness", path, f.GetFilterSpecifier())
}
