// Package envoy renders llmproc's Envoy configuration from its config file, with
// go-control-plane types, so that Envoy's routes and clusters are derived from
// the same pools the filter routes to and can never drift apart.
//
// The output is one static bootstrap: a listener whose HTTP connection manager
// runs llmproc's router-role ext_proc filter before the router, one route and
// one cluster per pool (priorities = the pool's fallback order), and per pool
// cluster an upstream-role ext_proc filter that runs once per attempt. The
// builders for single pieces (PoolCluster, Routes, RouterFilter, UpstreamFilter,
// LLMProcCluster) are exported so that other renderings, such as Istio
// EnvoyFilter patches, can reuse them.
//
// With envoy.xds, the same Envoy is split in two (ads.go): ADSBootstrap holds
// only the llmproc cluster and points LDS and CDS at llmproc's ADS server,
// which serves ADSResources (the pool clusters, the listener and its route
// configuration over RDS), built by the same functions.
package envoy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strconv"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"gopkg.in/yaml.v3"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/extproc"

	// Every extension type the rendered bootstrap packs into an Any, so that
	// Parse (protojson) can resolve the "@type"s.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/filters/cel/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/upstream_codec/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// Names on the wire. Those the filter reads are defined once, in extproc.
const (
	// LLMProcClusterName is the cluster through which Envoy reaches llmproc.
	LLMProcClusterName = "llmproc"
	// PoolClusterPrefix prefixes a pool's name to form its cluster name.
	PoolClusterPrefix = extproc.PoolClusterPrefix
	// PoolHeader is the request header the router role sets and Envoy routes on.
	PoolHeader = extproc.HeaderPool
	// RouteHeader is the request header naming the routing rule that matched.
	RouteHeader = extproc.HeaderRoute
	// RoleHeader is the gRPC initial metadata key that tells llmproc which
	// filter role a stream belongs to.
	RoleHeader = extproc.RoleHeader
	// RoleRouter and RoleUpstream are the values of RoleHeader.
	RoleRouter   = extproc.RoleRouter
	RoleUpstream = extproc.RoleUpstream
	// MetadataNamespace is llmproc's dynamic and endpoint metadata namespace.
	MetadataNamespace = extproc.MetadataNamespace
	// BackendKey is the endpoint metadata key holding the backend name.
	BackendKey = "backend"
	// BackendAttribute is the ext_proc attribute the upstream role asks for.
	BackendAttribute = extproc.AttrBackend
	// ClusterAttribute is the ext_proc attribute naming the chosen cluster.
	ClusterAttribute = extproc.AttrCluster
	// ListenerName is the name of the client-facing listener.
	ListenerName = "llmproc"
	// RouteConfigName is the name of the HCM's route configuration (inline,
	// or the RDS resource over ADS).
	RouteConfigName = "llmproc"
	// VirtualHostName is the single virtual host's name.
	VirtualHostName = "llm"
)

// PoolClusterName is the Envoy cluster name of a pool.
func PoolClusterName(pool string) string { return PoolClusterPrefix + pool }

// Bootstrap builds the complete Envoy bootstrap for a config. The runtime may
// come from config.Topology: no credential is needed or rendered.
func Bootstrap(rt *config.Runtime) (*bootstrapv3.Bootstrap, error) {
	c := rt.Source
	admin, err := socketAddress(c.Envoy.Admin)
	if err != nil {
		return nil, fmt.Errorf("envoy.admin: %w", err)
	}
	lst, err := Listener(rt)
	if err != nil {
		return nil, err
	}
	llm, err := LLMProcCluster(rt)
	if err != nil {
		return nil, err
	}
	clusters := append([]*clusterv3.Cluster{llm}, PoolClusters(rt)...)
	if jc := JWKSCluster(rt); jc != nil {
		clusters = append(clusters, jc)
	}
	if cc := CollectorCluster(rt); cc != nil {
		clusters = append(clusters, cc)
	}
	return &bootstrapv3.Bootstrap{
		Admin: &bootstrapv3.Admin{Address: admin},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{
			Listeners: []*listenerv3.Listener{lst},
			Clusters:  clusters,
		},
	}, nil
}

// PoolClusters is one PoolCluster per pool, in config order: static
// resources in the bootstrap, CDS resources over ADS.
func PoolClusters(rt *config.Runtime) []*clusterv3.Cluster {
	var out []*clusterv3.Cluster
	for _, p := range pools(rt) {
		out = append(out, PoolCluster(rt, p))
	}
	return out
}

// pools returns the runtime's pools in config order, for deterministic output.
func pools(rt *config.Runtime) []*config.RPool {
	out := make([]*config.RPool, 0, len(rt.Pools))
	for _, p := range rt.Source.Pools {
		if rp := rt.Pools[p.Name]; rp != nil {
			out = append(out, rp)
		}
	}
	return out
}

// YAML renders a bootstrap as YAML: protojson (proto field order, "@type" for
// Anys, defaults omitted), re-encoded in block style with two-space indents.
// The output is deterministic for a given bootstrap, and opens with a comment
// naming the Envoy release it needs (MinVersion).
func YAML(bs *bootstrapv3.Bootstrap) ([]byte, error) {
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(bs)
	if err != nil {
		return nil, fmt.Errorf("render bootstrap: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("render bootstrap: %w", err)
	}
	plain(&doc)
	var buf bytes.Buffer
	buf.WriteString(yamlHeader)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("render bootstrap: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render bootstrap: %w", err)
	}
	return buf.Bytes(), nil
}

// plain drops the flow and quoting styles a JSON document parses with, so the
// encoder picks block style and quotes a string only where YAML needs it.
func plain(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		plain(c)
	}
}

// Parse reads a rendered bootstrap back: YAML to JSON, then protojson with
// unknown fields rejected.
func Parse(data []byte) (*bootstrapv3.Bootstrap, error) {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("parse bootstrap: %w", err)
	}
	js, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("parse bootstrap: %w", err)
	}
	bs := &bootstrapv3.Bootstrap{}
	if err := (protojson.UnmarshalOptions{}).Unmarshal(js, bs); err != nil {
		return nil, fmt.Errorf("parse bootstrap: %w", err)
	}
	return bs, nil
}

// socketAddress turns "host:port" into an Envoy TCP address.
func socketAddress(hostport string) (*corev3.Address, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("bad port %q", port)
	}
	return tcpAddress(host, uint32(n)), nil
}

func tcpAddress(host string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       host,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// typed packs an extension config into an Any, deterministically (map entries
// sorted), so equal configs give equal bytes. Marshalling a generated message
// cannot fail here, so a failure is a programming error.
func typed(m proto.Message) *anypb.Any {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		panic(fmt.Sprintf("envoy: pack %T: %v", m, err))
	}
	return a
}
