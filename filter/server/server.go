// Package server runs llmproc: the ext_proc gRPC listener (both roles) with
// gRPC health, the HTTP (admin) listener for /metrics, /healthz, the
// read-only status page (filter/status) and optional pprof, config reloading, and graceful shutdown. cmd/llmproc only parses flags and
// calls Run; tests and the load driver call it in-process.
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync/atomic"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/llmproc/llmproc/envoy"
	"github.com/llmproc/llmproc/filter/budget"
	"github.com/llmproc/llmproc/filter/cache"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/conversation"
	"github.com/llmproc/llmproc/filter/extproc"
	"github.com/llmproc/llmproc/filter/feedback"
	"github.com/llmproc/llmproc/filter/identity"
	"github.com/llmproc/llmproc/filter/metrics"
	"github.com/llmproc/llmproc/filter/redisconn"
	"github.com/llmproc/llmproc/filter/semantic"
	"github.com/llmproc/llmproc/filter/status"
	"github.com/llmproc/llmproc/filter/translate"
	"github.com/llmproc/llmproc/filter/xds"
)

// Options configures Run.
type Options struct {
	ConfigPath string
	// Logger overrides the logger built from the config's log section, which
	// writes to LogOutput.
	Logger    *slog.Logger
	LogOutput io.Writer
	// Getenv resolves credential env vars; os.Getenv when nil.
	Getenv func(string) string
	// Ready, if set, is called once both listeners accept connections.
	Ready func(Addrs)
	// Version is llmproc's version, for the trace resource.
	Version string
}

// Addrs are the listeners' actual addresses (useful with port 0).
type Addrs struct {
	GRPC string
	HTTP string // "" when the HTTP listener is off
}

// grpcMsgLimit is added on top of Envoy's body buffer limit for gRPC framing,
// headers and attributes, so a maximal buffered body still fits in one
// ext_proc message.
const grpcMsgLimit = 1 << 20

// Run loads the config and serves until ctx ends, then stops accepting new
// streams and lets in-flight ones finish for up to limits.shutdown_grace.
func Run(ctx context.Context, o Options) error {
	cfg, err := config.Load(o.ConfigPath)
	if err != nil {
		return err
	}
	log := o.Logger
	if log == nil {
		log = NewLogger(cfg.Log, o.LogOutput)
	}
	gc := applyGC(os.Getenv, cgroupMemoryLimit) // the process's own environment, as the Go runtime reads it
	log.Info("garbage collector", "gogc", gc.Percent, "gogc_from", gc.PercentFrom, "memory_limit_bytes", gc.Limit, "memory_limit_from", gc.LimitFrom)
	rt, err := config.Compile(cfg, o.Getenv)
	if err := errors.Join(err, translate.CheckBackends(cfg)); err != nil {
		return fmt.Errorf("config %s: %w", o.ConfigPath, err)
	}
	store := config.NewStore(rt)

	started := time.Now()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)
	m.ConfigLoaded(cfg.Version())

	gl, err := net.Listen("tcp", cfg.Listen.GRPC)
	if err != nil {
		return fmt.Errorf("listen.grpc: %w", err)
	}
	defer gl.Close()
	// Envoy sends a BUFFERED request body as one message, up to the buffer
	// limit the config renders (envoy.BufferLimit, 2 × max_request_bytes):
	// the receive limit takes all of it, so a body above max_request_bytes
	// gets llmproc's 413 in the client's API shape, not a failed stream
	// (Envoy's empty 500). Read at start, like listen.grpc.
	gs := grpc.NewServer(
		grpc.MaxRecvMsgSize(int(envoy.BufferLimit(rt))+grpcMsgLimit),
		// A reply may carry a whole rewritten answer (extproc.MaxMessageBytes).
		grpc.MaxSendMsgSize(extproc.MaxMessageBytes(cfg.Limits)),
	)
	redisTier := sharedTier(cfg, rt)
	if redisTier != nil {
		defer redisTier.Close()
	}
	tiers, closeCache, err := cacheTiers(cfg, m, redisTier, rt.RedisPassword)
	if err != nil {
		return err
	}
	defer closeCache()
	conv, closeConv, err := conversations(cfg, redisTier, m, log)
	if err != nil {
		return err
	}
	defer closeConv()
	budgets, closeBudgets, err := budgetEngine(cfg, rt, log)
	if err != nil {
		return err
	}
	defer closeBudgets()
	if budgets != nil {
		m.BudgetFigures(func() []metrics.BudgetFigure {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			var out []metrics.BudgetFigure
			for _, f := range budgets.Engine.Figures(ctx) {
				out = append(out, metrics.BudgetFigure{Budget: f.Budget, SpentPico: f.SpentPico, LimitPico: f.LimitPico})
			}
			return out
		})
	}
	shared, closeShared := sharedKeys(cfg, rt, log)
	defer closeShared()
	fb, closeFeedback := feedbackStore(cfg, rt, m, log)
	defer closeFeedback()
	tracer, err := newTracer(cfg, reg, o.Version)
	if err != nil {
		return err
	}
	defer shutdownTracer(tracer, log)
	ep := extproc.New(extproc.Options{Config: store, Metrics: m, Logger: log, Cache: tiers, Budgets: budgets, Conversations: conv,
		MaxReplyBytes: extproc.MaxMessageBytes(cfg.Limits) - grpcMsgLimit, SharedKeys: shared, Tracer: tracer, Feedback: fb})
	defer ep.Close()
	extprocv3.RegisterExternalProcessorServer(gs, ep)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(extprocv3.ExternalProcessor_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	// envoy.xds: Envoy's clusters, listener and routes over ADS on the same
	// gRPC server, built from the runtime the filter serves. Its streams
	// never end by themselves, so stopXDS ends them when shutdown starts.
	xdsCtx, stopXDS := context.WithCancel(context.Background())
	defer stopXDS()
	var ads *xds.Server
	if cfg.Envoy.XDS {
		ads = xds.New(xdsCtx, xds.Options{Logger: log, Metrics: m})
		if err := ads.Update(rt); err != nil {
			return err
		}
		ads.Register(gs)
	}

	addrs := Addrs{GRPC: gl.Addr().String()}
	var draining atomic.Bool // set once shutdown starts; /healthz then fails
	var hsrv *http.Server
	errc := make(chan error, 2)
	if cfg.Listen.HTTP != "off" {
		hl, err := net.Listen("tcp", cfg.Listen.HTTP)
		if err != nil {
			return fmt.Errorf("listen.http: %w", err)
		}
		addrs.HTTP = hl.Addr().String()
		page := status.New(status.Options{Gatherer: reg, Budgets: statusBudgets(cfg), Shared: cfg.BudgetStore.Redis != nil,
			Tenants: statusTenants(budgets), Started: started})
		hsrv = &http.Server{Handler: httpMux(reg, cfg.Listen.Pprof, &draining, page), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := hsrv.Serve(hl); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("http: %w", err)
			}
		}()
	}
	go func() {
		if err := gs.Serve(gl); err != nil {
			errc <- fmt.Errorf("grpc: %w", err)
		}
	}()
	log.Info("llmproc serving", "grpc", addrs.GRPC, "http", addrs.HTTP, "config", o.ConfigPath)

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go store.Watch(watchCtx, o.ConfigPath, cfg.Limits.ReloadInterval.Duration, o.Getenv, func(err error) {
		m.ConfigReload(err == nil)
		if err != nil {
			log.Error("config reload failed; keeping the previous config", "err", err)
			return
		}
		log.Info("config reloaded")
		m.ConfigLoaded(store.Load().Source.Version())
		if ads != nil {
			if err := ads.Update(store.Load()); err != nil {
				log.Error("xds snapshot not updated; Envoy keeps the previous one", "err", err)
			}
		}
	})
	if o.Ready != nil {
		o.Ready(addrs)
	}

	select {
	case <-ctx.Done():
	case err := <-errc:
		gs.Stop()
		return err
	}
	// Report NOT_SERVING, on gRPC health and /healthz, so Envoy and probes
	// move away while in-flight streams finish.
	draining.Store(true)
	hs.Shutdown()
	stopXDS()
	grace := store.Load().Source.Limits.ShutdownGrace.Duration
	log.Info("shutting down", "grace", grace)
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(grace):
		log.Warn("shutdown grace period over; closing remaining streams")
		gs.Stop()
	}
	if hsrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hsrv.Shutdown(sctx)
	}
	return nil
}

// httpMux is the HTTP (admin) port: metrics, health, the read-only status
// page (filter/status) and, when asked for, pprof.
func httpMux(reg *prometheus.Registry, withPprof bool, draining *atomic.Bool, page *status.Page) *http.ServeMux {
	mux := http.NewServeMux()
	page.Register(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("content-type", "text/plain")
		if draining.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("shutting down\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// statusTenants lists the tenant-scoped budgets' top tenants from the
// budget store for the status page (nil without budgets).
func statusTenants(budgets *extproc.Budgets) func(context.Context, int) []status.TenantBudget {
	if budgets == nil {
		return nil
	}
	return func(ctx context.Context, top int) []status.TenantBudget {
		var out []status.TenantBudget
		for _, f := range budgets.Engine.TenantFigures(ctx, top) {
			tb := status.TenantBudget{Budget: f.Budget, Tenants: status.Tenants{More: f.More, MoreUSD: float64(f.MorePico) / 1e12, Partial: f.Partial}}
			for _, ts := range f.Top {
				tb.Top = append(tb.Top, status.TenantSpend{Tenant: ts.Tenant, Model: ts.Model, SpentUSD: float64(ts.SpentPico) / 1e12})
			}
			out = append(out, tb)
		}
		return out
	}
}

// statusBudgets are the budgets the engine was built with, for the status
// page's bars.
func statusBudgets(cfg *config.Config) []status.BudgetDef {
	var out []status.BudgetDef
	for _, b := range cfg.Budgets {
		d := status.BudgetDef{Name: b.Name, Scope: b.Scope, Window: b.Window, Models: b.Models}
		if b.LimitUSD.Set {
			l := float64(b.LimitUSD.Pico) / 1e12
			d.LimitUSD = &l
		}
		out = append(out, d)
	}
	return out
}

// NewLogger builds the process logger from the log section; a nil writer
// discards.
func NewLogger(c config.Log, w io.Writer) *slog.Logger {
	if w == nil {
		return slog.New(slog.DiscardHandler)
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// cacheTiers builds the response cache when any request may use it: the
// in-process tier, and Redis when configured. The cache is sized at start; a
// reload changes modes and routes but not its memory bound or tiers.
func cacheTiers(cfg *config.Config, m *metrics.Metrics, shared *cache.Redis, password string) (*extproc.CacheTiers, func(), error) {
	used := cfg.Cache.Mode != "off"
	for _, r := range cfg.Routes {
		used = used || (r.Cache.Mode != "" && r.Cache.Mode != "off")
	}
	if !used {
		return nil, func() {}, nil
	}
	local, err := cache.NewLocal(cfg.Cache.MemoryMB, cfg.Cache.TTL.Duration)
	if err != nil {
		return nil, nil, fmt.Errorf("cache: %w", err)
	}
	m.CacheStats(func() (entries, bytes, evictions int64) {
		return int64(local.Len()), local.Bytes(), local.Evictions()
	})
	t := &extproc.CacheTiers{Local: local, TTL: cfg.Cache.TTL.Duration, MaxEntryBytes: cfg.Cache.MaxEntryBytes}
	closeAll := func() { _ = local.Close() }
	if shared != nil {
		t.Shared = shared
		if s, r := cfg.Cache.Semantic, cfg.Cache.Redis; s != nil {
			// Its own connections: a lookup's XRANGE and the exact tier's GET
			// do not wait for each other.
			c := redisconn.New(redisconn.Options{Addr: r.Addr, Password: password, DB: r.DB,
				Timeout: cmp.Or(r.Timeout.Duration, cache.DefaultRedisTimeout), PoolSize: 8})
			t.Semantic = semantic.NewShared(c, r.KeyPrefix, cfg.Cache.TTL.Duration, s.MaxBucketEntries)
			closeAll = func() { _ = local.Close(); _ = c.Close() }
		}
	}
	return t, closeAll, nil
}

// sharedTier is the Redis tier (cache.redis) the response cache and the
// conversation state share, nil when none is configured.
func sharedTier(cfg *config.Config, rt *config.Runtime) *cache.Redis {
	r := cfg.Cache.Redis
	if r == nil {
		return nil
	}
	return cache.NewRedis(cache.RedisOptions{Addr: r.Addr, Password: rt.RedisPassword, DB: r.DB,
		Timeout: r.Timeout.Duration, KeyPrefix: r.KeyPrefix})
}

// conversations builds the Responses API's conversation state
// (cache.conversations): its own in-process tier, sized for records of up
// to max_bytes, and the shared tier when there is one. Like the cache it is
// built at start.
func conversations(cfg *config.Config, shared *cache.Redis, m *metrics.Metrics, log *slog.Logger) (*conversation.Store, func(), error) {
	c := cfg.Cache.Conversations
	if c.Mode == "off" {
		return nil, func() {}, nil
	}
	local, err := cache.NewLocalFor(c.MemoryMB, c.TTL.Duration, c.MaxBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("cache.conversations: %w", err)
	}
	st := &conversation.Store{Local: local, TTL: c.TTL.Duration, MaxBytes: c.MaxBytes, Now: time.Now}
	if shared != nil {
		st.Shared = shared
		var last atomic.Int64
		st.OnError = func(op string, err error) {
			m.CacheError("redis")
			if now := time.Now().UnixNano(); now-last.Load() > int64(10*time.Second) {
				last.Store(now)
				log.Warn("shared tier failed for the conversation state; kept in process only", "op", op, "err", err)
			}
		}
	}
	return st, func() { _ = local.Close() }, nil
}

// feedbackStore keeps the request records quality feedback is given
// against (feedback.*): in process, and in cache.redis when set, with its
// key prefix, so that any replica takes feedback for any request. Like the
// cache it is built at start.
func feedbackStore(cfg *config.Config, rt *config.Runtime, m *metrics.Metrics, log *slog.Logger) (*feedback.Store, func()) {
	f := cfg.Feedback
	if f.Mode == "off" {
		return nil, func() {}
	}
	st := &feedback.Store{Local: feedback.NewLocal(f.MaxRecords, nil), Window: f.Window.Duration, Now: time.Now}
	r := cfg.Cache.Redis
	if r == nil {
		return st, func() {}
	}
	red := feedback.NewRedis(redisconn.New(redisconn.Options{Addr: r.Addr, Password: rt.RedisPassword, DB: r.DB,
		Timeout: r.Timeout.Duration, PoolSize: 4}), r.KeyPrefix)
	st.Shared = red
	var last atomic.Int64
	st.OnError = func(op string, err error) {
		m.CacheError("redis")
		if now := time.Now().UnixNano(); now-last.Load() > int64(10*time.Second) {
			last.Store(now)
			log.Warn("shared tier failed for feedback records; kept in process only", "op", op, "err", err)
		}
	}
	return st, func() { _ = red.Close() }
}

// budgetEngine builds budgets and rate limits when the config has any, or
// client keys (whose records may carry their own): in memory for one
// replica, in Redis when budget_store.redis is set. Like the cache, the
// engine is built at start.
func budgetEngine(cfg *config.Config, rt *config.Runtime, log *slog.Logger) (*extproc.Budgets, func(), error) {
	if len(cfg.Budgets) == 0 && len(cfg.RateLimits) == 0 && cfg.Identity.Source != config.SourceClientKeys {
		return nil, func() {}, nil
	}
	var store budget.Store = budget.NewMemory(time.Now)
	closeStore := func() {}
	if r := cfg.BudgetStore.Redis; r != nil {
		red := budget.NewRedis(budget.RedisOptions{Addr: r.Addr, Password: rt.BudgetRedisPassword, Timeout: r.Timeout.Duration})
		store, closeStore = red, func() { _ = red.Close() }
		if err := checkEviction(cfg, red, log); err != nil {
			closeStore()
			return nil, nil, err
		}
	}
	e, err := budget.NewEngine(budget.Options{
		Budgets: cfg.Budgets, RateLimits: cfg.RateLimits, Store: store, Now: time.Now,
		Lifetimes: extproc.Lifetimes(cfg.Envoy),
		ModelName: func(name string) string {
			if m, ok := rt.Model(name); ok {
				return m.Name
			}
			return name
		},
	})
	if err != nil {
		closeStore()
		return nil, nil, fmt.Errorf("budgets: %w", err)
	}
	return &extproc.Budgets{Engine: e, FailClosed: cfg.BudgetStore.OnError == "closed", DefaultMaxTokens: 4096}, closeStore, nil
}

// sharedKeys starts the refresher of identity.redis, the client-key store
// every replica shares, when the config has one: read at start, then every
// identity.refresh. Like budget_store.redis, it is not changed by a reload.
func sharedKeys(cfg *config.Config, rt *config.Runtime, log *slog.Logger) (extproc.KeySource, func()) {
	r := cfg.Identity.Redis
	if r == nil || cfg.Identity.Source != config.SourceClientKeys {
		return nil, func() {}
	}
	timeout := r.Timeout.Duration
	if timeout == 0 {
		timeout = time.Second
	}
	c := redisconn.New(redisconn.Options{Addr: r.Addr, Password: rt.IdentityRedisPassword, Timeout: timeout, PoolSize: 2})
	ref := identity.NewRefresher(identity.NewRedisStore(c, r.Prefix), log.With("component", "identity"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ref.Run(ctx, cfg.Identity.RefreshInterval())
	}()
	return ref, func() {
		cancel()
		<-done
		_ = c.Close()
	}
}

// checkEviction refuses a budget Redis that may evict keys: an evicted
// counter silently resets a tenant's spend to 0. A policy that cannot be
// read (CONFIG disabled, Redis down at start) is only warned about, as is
// a cache sharing the budget's Redis (its traffic competes for the memory).
func checkEviction(cfg *config.Config, red *budget.Redis, log *slog.Logger) error {
	addr := cfg.BudgetStore.Redis.Addr
	if c := cfg.Cache.Redis; c != nil && c.Addr == addr && cfg.Cache.Mode != "off" {
		log.Warn("the cache and budgets share one Redis; give budgets their own (budget_store.redis.addr) or make sure it never fills", "addr", addr)
	}
	policy, err := red.EvictingPolicy(context.Background())
	switch {
	case err != nil:
		log.Warn("cannot read the budget Redis's maxmemory-policy; it must be noeviction, or counters may be evicted", "addr", addr, "err", err)
	case policy != "":
		return fmt.Errorf("budget_store.redis: %s has maxmemory-policy %s, which evicts keys and would reset budget counters; set it to noeviction (or give budgets their own Redis)", addr, policy)
	}
	return nil
}
