package harness

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// internalAddresses is what the HCM needs to tell internal requests from
// external ones (ConnectionManagerUtility::mutateRequestHeaders in Envoy's
// source/common/http/conn_manager_utility.cc): with use_remote_address the
// connection's peer is the client, otherwise the last x-forwarded-for
// address (none: external); a client is internal only when
// internal_address_config lists its address. Without that config no address
// is internal (Envoy 1.36 removed the RFC 1918 default together with the
// explicit_internal_address_config runtime guard). XFF appending and
// xff_num_trusted_hops are not modelled.
type internalAddresses struct {
	useRemote bool
	cidrs     []netip.Prefix
}

func compileInternalAddresses(hcm *hcmv3.HttpConnectionManager, path string) (internalAddresses, error) {
	ia := internalAddresses{useRemote: hcm.GetUseRemoteAddress().GetValue()}
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
	return ia, nil
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

// clean removes the internal-only headers from an external request, as
// cleanInternalHeaders does, and marks an internal one with
// x-envoy-internal: true. remote is the connection's peer (host:port).
func (ia internalAddresses) clean(h *headerMap, remote string) {
	var client string
	if ia.useRemote {
		client, _, _ = net.SplitHostPort(remote)
	} else if xff, ok := h.joined("x-forwarded-for"); ok {
		parts := strings.Split(xff, ",")
		client = strings.TrimSpace(parts[len(parts)-1])
	}
	if a, err := netip.ParseAddr(client); err == nil {
		for _, p := range ia.cidrs {
			if p.Contains(a.Unmap()) {
				h.set("x-envoy-internal", "true")
				return
			}
		}
	}
	for _, k := range internalOnly {
		h.del(k)
	}
	if ia.useRemote {
		for _, k := range edgeOnly {
			h.del(k)
		}
	}
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
