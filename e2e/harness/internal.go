package harness

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// internalAddresses is what the HCM needs for its request header policy
// (ConnectionManagerUtility::mutateRequestHeaders in Envoy's
// source/common/http/conn_manager_utility.cc): with use_remote_address the
// connection's peer is the client (trusted only when the request brought
// no x-forwarded-for), otherwise the last x-forwarded-for address (the
// default xff detection; trusted only when it is the only one); a trusted
// client is internal only when internal_address_config lists its address
// (an empty internal_address_config: Envoy's RFC 1918 / loopback default).
// Without that config no address is internal (Envoy 1.36 removed the
// RFC 1918 default together with the explicit_internal_address_config
// runtime guard). xff_num_trusted_hops, skip_xff_append and other original
// IP detection extensions are refused by the field allow-list.
type internalAddresses struct {
	useRemote  bool
	cidrs      []netip.Prefix
	generateID bool // generate_request_id
}

func compileInternalAddresses(hcm *hcmv3.HttpConnectionManager, path string) (internalAddresses, error) {
	ia := internalAddresses{useRemote: hcm.GetUseRemoteAddress().GetValue(), generateID: true}
	if v := hcm.GetGenerateRequestId(); v != nil {
		ia.generateID = v.GetValue()
	}
	c := hcm.GetInternalAddressConfig()
	if c.GetUnixSockets() {
		return ia, fmt.Errorf("%s.internal_address_config.unix_sockets unsupported by the harness", path)
	}
	for i, r := range c.GetCidrRanges() {
		a, err := netip.ParseAddr(r.GetAddressPrefix())
		if err != nil {
			return ia, fmt.Errorf("%s.internal_address_config.cidr_ranges[%d]: %w", path, i, err)
		}
		pfx, err := a.Prefix(int(r.GetPrefixLen().GetValue()))
		if err != nil {
			return ia, fmt.Errorf("%s.internal_address_config.cidr_ranges[%d]: %w", path, i, err)
		}
		ia.cidrs = append(ia.cidrs, pfx)
	}
	if c != nil && len(c.GetCidrRanges()) == 0 {
		// An internal_address_config without cidr_ranges falls back to
		// Network::Utility::isInternalAddress (InternalAddressConfig in
		// source/extensions/filters/network/http_connection_manager/
		// config.h; the field's doc: "If unset, then RFC1918 / RFC4193 IP
		// addresses will be considered internal"): RFC 1918, 127.0.0.1,
		// fd00::/8 and ::1. Only a missing internal_address_config trusts
		// no address (since 1.36).
		ia.cidrs = defaultInternal
	}
	return ia, nil
}

// defaultInternal is what Envoy's Network::Utility::isInternalAddress
// (source/common/network/utility.cc) counts as internal.
var defaultInternal = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("127.0.0.1/32"),
	netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("::1/128"),
}

// internalOnly are the request headers cleanInternalHeaders removes from an
// external request; edgeOnly those it removes only when use_remote_address
// makes the request an edge request.
var (
	internalOnly = []string{
		"x-envoy-retriable-status-codes", "x-envoy-retriable-header-names", "x-envoy-retry-on",
		"x-envoy-retry-grpc-on", "x-envoy-max-retries", "x-envoy-upstream-alt-stat-name",
		"x-envoy-upstream-rq-timeout-ms", "x-envoy-upstream-rq-per-try-timeout-ms",
		"x-envoy-upstream-rq-timeout-alt-response", "x-envoy-expected-rq-timeout-ms",
		"x-envoy-force-trace", "x-envoy-ip-tags", "x-envoy-original-url", "x-envoy-hedge-on-per-try-timeout",
	}
	edgeOnly = []string{"x-envoy-decorator-operation", "x-envoy-downstream-service-cluster", "x-envoy-downstream-service-node"}
)

// clean applies the HCM's request header policy before any filter runs:
// hop-by-hop and proxy headers go, and x-envoy-internal from the client;
// with use_remote_address the peer is appended to x-forwarded-for (Envoy's
// own address for a loopback peer) and x-forwarded-proto is overwritten.
// An internal request is marked x-envoy-internal: true; an external one
// loses the internal-only headers (cleanInternalHeaders), and an edge one
// (external with use_remote_address) the edge-only ones too, gets
// x-envoy-external-address and a new x-request-id. remote is the
// connection's peer (host:port), local its local address.
func (ia internalAddresses) clean(h *headerMap, remote string, local net.Addr, newID func() string) {
	for _, k := range []string{"connection", "upgrade", "x-envoy-internal", "keep-alive", "proxy-connection", "transfer-encoding", "x-forwarded-client-cert"} {
		h.del(k)
	}
	var client netip.Addr
	trusted := false
	if ia.useRemote {
		client = hostAddr(remote)
		xff, had := h.joined("x-forwarded-for")
		trusted = !had
		hop := client
		if hop.IsLoopback() && local != nil {
			hop = hostAddr(local.String())
		}
		if had {
			h.set("x-forwarded-for", xff+","+hop.String())
		} else {
			h.set("x-forwarded-for", hop.String())
		}
		h.set("x-forwarded-proto", "http")
	} else if xff, ok := h.joined("x-forwarded-for"); ok {
		parts := strings.Split(xff, ",")
		client, trusted = hostAddr(strings.TrimSpace(parts[len(parts)-1])), len(parts) == 1
	}
	if _, ok := h.get("x-forwarded-proto"); !ok {
		h.set("x-forwarded-proto", "http")
	}
	internal := false
	for _, p := range ia.cidrs {
		if trusted && client.IsValid() && p.Contains(client) {
			internal = true
		}
	}
	edge := !internal && ia.useRemote
	switch {
	case internal:
		h.set("x-envoy-internal", "true")
	case edge:
		for _, k := range edgeOnly {
			h.del(k)
		}
		fallthrough
	default:
		for _, k := range internalOnly {
			h.del(k)
		}
	}
	if edge && client.IsValid() {
		h.set("x-envoy-external-address", client.String())
	}
	if _, ok := h.get("x-request-id"); ia.generateID && (!ok || edge) {
		h.set("x-request-id", newID())
	}
}

// hostAddr parses "host:port" or a bare address; invalid if neither.
func hostAddr(s string) netip.Addr {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, _ := netip.ParseAddr(s)
	return a.Unmap()
}

// maxRetries is the retry budget of a request: the route's num_retries,
// unless the request still carries x-envoy-max-retries, which the router
// honours (RetryStateImpl's constructor in source/common/router/
// retry_state_impl.cc) when it reaches it: from an internal client, or one
// whose header no route removed.
func maxRetries(pol *retryPolicy, h *headerMap) int {
	n := pol.numRetries
	if v, ok := h.get("x-envoy-max-retries"); ok {
		if m, err := strconv.ParseUint(v, 10, 31); err == nil {
			n = int(m)
		}
	}
	return n
}
