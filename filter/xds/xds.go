// Package xds serves llmproc's Envoy configuration over ADS: the pool
// clusters, the client-facing listener and its route configuration, built by
// package envoy from the same config the filter routes with, held in
// go-control-plane's snapshot cache and pushed again whenever a reload
// changes them. Envoy boots from `llmproc envoy-config -ads`.
//
// Every node gets the same snapshot. Its versions are hashes of the
// resources, one per resource type, so a reload that changes nothing Envoy
// sees pushes nothing, a pool change re-sends clusters and routes but not the
// listener, and replicas serving one config agree on the version.
//
// Envoy's rejections (NACKs) are logged and counted, and the rejected
// version is not sent again: go-control-plane's cache would answer a NACK,
// which reports the last accepted version, with the rejected snapshot at
// once, and loop. The watch waits for the next snapshot instead.
package xds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	sotwv3 "github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/llmproc/llmproc/envoy"
	"github.com/llmproc/llmproc/filter/config"
)

// nodeKey is the snapshot cache key every Envoy node maps to.
const nodeKey = "llmproc"

// allNodes is the NodeHash that serves every node the one snapshot.
type allNodes struct{}

func (allNodes) ID(*corev3.Node) string { return nodeKey }

// Metrics is what the ADS server reports; *metrics.Metrics implements it.
type Metrics interface {
	// XDSSnapshot counts a snapshot by result: "pushed", "unchanged" or
	// "error"; version is the snapshot's.
	XDSSnapshot(result, version string)
	// XDSRejected counts a NACK by resource type.
	XDSRejected(resourceType string)
	// XDSStream counts an open stream and returns its closer.
	XDSStream() func()
}

// Snapshot results passed to Metrics.XDSSnapshot.
const (
	resultPushed    = "pushed"
	resultUnchanged = "unchanged"
	resultError     = "error"
)

// Options configures New.
type Options struct {
	// Logger receives pushes, streams and rejections; nil discards.
	Logger *slog.Logger
	// Metrics may be nil.
	Metrics Metrics
}

// Server is an ADS server whose one snapshot follows llmproc's config. Its
// methods are safe for concurrent use.
type Server struct {
	ctx   context.Context
	log   *slog.Logger
	m     Metrics
	cache cachev3.SnapshotCache
	ads   serverv3.Server

	update  sync.Mutex                  // serializes Update
	mu      sync.Mutex                  // guards the fields below
	version string                      // the snapshot served, "" before Update
	streams map[int64]*stream           // open SOTW streams by id
	sent    map[int64]map[string]string // last version sent, per stream and type URL
}

// stream is what the server remembers of one open ADS stream.
type stream struct {
	done func() // counts it closed
	node string // node id, from its first request
}

// New returns a server that serves no snapshot until Update. Cancelling ctx
// ends every ADS stream (Envoy keeps its config and reconnects); do it when
// shutting down, or gRPC's graceful stop waits for streams that never end.
func New(ctx context.Context, o Options) *Server {
	s := &Server{ctx: ctx, log: o.Logger, m: o.Metrics,
		streams: map[int64]*stream{}, sent: map[int64]map[string]string{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.m == nil {
		s.m = noMetrics{}
	}
	s.log = s.log.With("component", "xds")
	s.cache = cachev3.NewSnapshotCache(true, allNodes{}, cpLogger{s.log})
	s.ads = serverv3.NewServer(ctx, s.cache, serverv3.CallbackFuncs{
		StreamOpenFunc:     s.opened,
		StreamClosedFunc:   s.closed,
		StreamRequestFunc:  s.request,
		StreamResponseFunc: s.response,
	}, sotwv3.WithLogger(cpLogger{s.log}), sotwv3.WithOrderedADS())
	return s
}

// Register adds the aggregated discovery service to gs.
func (s *Server) Register(gs *grpc.Server) {
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(gs, s.ads)
}

// Version is the version of the snapshot served, "" before the first Update.
func (s *Server) Version() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// Update builds the snapshot for rt and serves it, unless it equals the one
// served (same version). Open streams receive the resource types whose
// versions changed, in order: clusters, then the listener, then routes
// (WithOrderedADS), so a new route never arrives before its cluster.
func (s *Server) Update(rt *config.Runtime) error {
	snap, version, err := Snapshot(rt)
	if err != nil {
		s.m.XDSSnapshot(resultError, "")
		return err
	}
	// One Update at a time; s.mu is not held while the cache hands the
	// snapshot to the streams, whose callbacks take it.
	s.update.Lock()
	defer s.update.Unlock()
	previous := s.Version()
	if version == previous {
		s.m.XDSSnapshot(resultUnchanged, version)
		s.log.Debug("xds snapshot unchanged", "version", version)
		return nil
	}
	if err := s.cache.SetSnapshot(s.ctx, nodeKey, snap); err != nil {
		s.m.XDSSnapshot(resultError, version)
		return fmt.Errorf("xds: set snapshot: %w", err)
	}
	s.mu.Lock()
	s.version = version
	streams := len(s.streams)
	s.mu.Unlock()
	s.m.XDSSnapshot(resultPushed, version)
	s.log.Info("xds snapshot pushed", "version", version, "previous", previous,
		"clusters", len(snap.GetResources(resourcev3.ClusterType)),
		"listeners", len(snap.GetResources(resourcev3.ListenerType)),
		"route_configs", len(snap.GetResources(resourcev3.RouteType)),
		"streams", streams)
	return nil
}

// Snapshot builds the consistent ADS snapshot for rt from
// envoy.ADSResources. Each resource type's version is a hash of its
// resources; the snapshot's version, returned, is a hash of those.
func Snapshot(rt *config.Runtime) (*cachev3.Snapshot, string, error) {
	res, err := envoy.ADSResources(rt)
	if err != nil {
		return nil, "", fmt.Errorf("xds: %w", err)
	}
	byType := []struct {
		index types.ResponseType
		items []types.Resource
	}{
		{types.Cluster, resourceList(res.Clusters)},
		{types.Listener, resourceList(res.Listeners)},
		{types.Route, resourceList(res.Routes)},
	}
	snap := &cachev3.Snapshot{}
	all := sha256.New()
	for _, t := range byType {
		v, err := hash(t.items)
		if err != nil {
			return nil, "", err
		}
		snap.Resources[t.index] = cachev3.NewResources(v, t.items)
		fmt.Fprintf(all, "%d=%s;", t.index, v)
	}
	if err := snap.Consistent(); err != nil {
		return nil, "", fmt.Errorf("xds: inconsistent snapshot: %w", err)
	}
	return snap, hex.EncodeToString(all.Sum(nil))[:16], nil
}

func resourceList[T types.Resource](in []T) []types.Resource {
	out := make([]types.Resource, len(in))
	for i, r := range in {
		out[i] = r
	}
	return out
}

// hash is a short content hash of resources in order. Deterministic
// marshalling sorts map entries, so equal resources hash equally within one
// build of llmproc.
func hash(items []types.Resource) (string, error) {
	h := sha256.New()
	opts := proto.MarshalOptions{Deterministic: true}
	var buf []byte
	for _, r := range items {
		b, err := opts.MarshalAppend(buf[:0], r)
		if err != nil {
			return "", fmt.Errorf("xds: hash %T: %w", r, err)
		}
		buf = b
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// typeName is the bounded metrics label for a resource type URL.
func typeName(url string) string {
	switch url {
	case resourcev3.ClusterType:
		return "cluster"
	case resourcev3.ListenerType:
		return "listener"
	case resourcev3.RouteType:
		return "route"
	case resourcev3.EndpointType:
		return "endpoint"
	}
	return "other"
}

func (s *Server) opened(_ context.Context, id int64, _ string) error {
	done := s.m.XDSStream()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.streams[id] = &stream{done: done}
	s.sent[id] = map[string]string{}
	return nil
}

func (s *Server) closed(id int64, node *corev3.Node) {
	s.mu.Lock()
	st := s.streams[id]
	delete(s.streams, id)
	delete(s.sent, id)
	s.mu.Unlock()
	if st != nil {
		st.done()
	}
	s.log.Info("ADS stream closed", "stream", id, "node", node.GetId())
}

// request sees every discovery request before the cache does. A NACK names
// the last version Envoy accepted; it is rewritten to the version Envoy
// rejected, so that the cache holds the watch until a new snapshot arrives
// rather than sending the rejected one again.
func (s *Server) request(id int64, req *discoveryv3.DiscoveryRequest) error {
	s.mu.Lock()
	st := s.streams[id]
	first := st != nil && st.node == ""
	if first {
		st.node = req.GetNode().GetId()
	}
	rejected, sent := s.sent[id][req.GetTypeUrl()]
	s.mu.Unlock()
	if first {
		s.log.Info("ADS stream opened", "stream", id, "node", req.GetNode().GetId(), "cluster", req.GetNode().GetCluster())
	}
	detail := req.GetErrorDetail()
	if detail == nil {
		return nil
	}
	s.m.XDSRejected(typeName(req.GetTypeUrl()))
	s.log.Error("Envoy rejected xDS resources; they are not sent again before the config changes",
		"stream", id, "node", req.GetNode().GetId(), "type", typeName(req.GetTypeUrl()),
		"rejected_version", rejected, "kept_version", req.GetVersionInfo(), "error", detail.GetMessage())
	if sent {
		req.VersionInfo = rejected
	}
	return nil
}

// response records the version sent per stream and type, for request.
func (s *Server) response(_ context.Context, id int64, _ *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.sent[id]; p != nil {
		p[resp.GetTypeUrl()] = resp.GetVersionInfo()
	}
}

// cpLogger routes go-control-plane's logging to slog: its Infof lines are
// per-request chatter, so they go to debug.
type cpLogger struct{ l *slog.Logger }

func (c cpLogger) logf(level slog.Level, format string, args []any) {
	if c.l.Enabled(context.Background(), level) {
		c.l.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (c cpLogger) Debugf(format string, args ...any) { c.logf(slog.LevelDebug, format, args) }
func (c cpLogger) Infof(format string, args ...any)  { c.logf(slog.LevelDebug, format, args) }
func (c cpLogger) Warnf(format string, args ...any)  { c.logf(slog.LevelWarn, format, args) }
func (c cpLogger) Errorf(format string, args ...any) { c.logf(slog.LevelError, format, args) }

type noMetrics struct{}

func (noMetrics) XDSSnapshot(string, string) {}
func (noMetrics) XDSRejected(string)         {}
func (noMetrics) XDSStream() func()          { return func() {} }
