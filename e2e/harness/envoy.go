package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Options configure Start.
type Options struct {
	// Logger receives the harness's own diagnostics; nil discards them.
	Logger *slog.Logger
	// ListenAddr overrides the listener address, e.g. "127.0.0.1:0".
	ListenAddr string
	// AccessLog receives HCM access_log and router upstream_log lines.
	AccessLog io.Writer
	// EnvoyVersion is the Envoy release ("1.37", "1.36.2") whose
	// version-dependent behaviour the harness follows; "" is
	// DefaultEnvoyVersion. Before 1.37 an upstream ext_proc filter's local
	// replies (immediate responses and its own failures) are dropped (the
	// attempt stalls until its per-try or the route timeout) and a route's
	// request_body_buffer_limit bounds
	// only the router's buffer, not the downstream filters'; before 1.36
	// request_body_buffer_limit is an unknown field, and before 1.38
	// allow_content_length_header.
	EnvoyVersion string
	// Now is the clock jwt_authn checks exp and nbf against; time.Now
	// when nil.
	Now func() time.Time
	// PeerURISAN, when set, gives a request's client certificate URI SAN
	// (the attribute connection.uri_san_peer_certificate): the harness
	// listens without TLS, so a test says which workload is calling.
	PeerURISAN func(*http.Request) string
}

// Envoy is a running harness.
type Envoy struct {
	p      atomic.Pointer[plan] // the plan new requests use
	logger *slog.Logger
	root   context.Context
	cancel context.CancelFunc
	ln     net.Listener
	srv    *http.Server
	log    *logWriter
	reqSeq atomic.Uint64
	ads    *adsClient    // nil for a static bootstrap
	adsEnd chan struct{} // closed when the ADS client stops

	setup   sync.Mutex                   // guards the fields below (install, Close)
	conns   map[string]*grpc.ClientConn  // ext_proc connections by target
	retired []*cluster                   // clusters of replaced plans
	addr    string                       // the first plan's listener address
	tracers map[tracingSpec]*envoyTracer // Envoy's tracers (tracing.go), one per spec

	mu       sync.Mutex
	counters map[string]uint64
}

func insecureCreds() credentials.TransportCredentials { return insecure.NewCredentials() }

// Start compiles bs, dials the ext_proc services and serves the first
// static listener. With dynamic_resources (ADS), it first fetches the
// clusters, listener and route configurations over ADS the way Envoy does
// (see the package doc) and serves once they have arrived. Configuration
// the harness does not implement is an error. ctx bounds the start only;
// use Close.
func Start(ctx context.Context, bs *bootstrapv3.Bootstrap, opts Options) (*Envoy, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &Envoy{logger: logger, counters: map[string]uint64{}, log: &logWriter{w: opts.AccessLog}, conns: map[string]*grpc.ClientConn{}}
	e.root, e.cancel = context.WithCancel(context.Background())
	if bs.GetDynamicResources() != nil {
		if err := e.startADS(ctx, bs, opts); err != nil {
			e.Close() //nolint:errcheck
			return nil, err
		}
	} else {
		p, err := compile(bs, opts, nil)
		if err == nil {
			err = e.install(p)
		}
		if err != nil {
			e.Close() //nolint:errcheck
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", e.p.Load().listenAddr)
	if err != nil {
		e.Close() //nolint:errcheck
		return nil, err
	}
	e.ln = ln
	e.srv = &http.Server{Handler: e, ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)}
	go e.srv.Serve(ln) //nolint:errcheck // ErrServerClosed on Close
	return e, nil
}

// install makes p the plan new requests use: it gives p's new clusters
// their transports and p's new ext_proc filters their gRPC clients, then
// retires the clusters p no longer has (requests in flight finish on them).
// Clusters p took over from the plan served keep their state. The listener
// address cannot change.
func (e *Envoy) install(p *plan) error {
	e.setup.Lock()
	defer e.setup.Unlock()
	if e.addr != "" && p.listenAddr != e.addr {
		return fmt.Errorf("listener address %s -> %s: changing the listener address is unsupported by the harness", e.addr, p.listenAddr)
	}
	procs := slices.Clone(p.filters)
	for _, cl := range p.clusters {
		if !cl.ready {
			cl.newTransports()
			procs = append(procs, cl.filters...)
		}
	}
	for _, pc := range procs {
		conn, ok := e.conns[pc.target]
		if !ok {
			var err error
			if conn, err = dialProc(pc.target); err != nil {
				return fmt.Errorf("ext_proc %s: %w", pc.target, err)
			}
			e.conns[pc.target] = conn
		}
		pc.client = extprocv3.NewExternalProcessorClient(conn)
	}
	for _, cl := range p.clusters {
		cl.ready = true
	}
	if p.tracing != nil {
		t, err := e.tracerFor(*p.tracing)
		if err != nil {
			return fmt.Errorf("tracing: %w", err)
		}
		p.tracer = t
	}
	e.addr = p.listenAddr
	if old := e.p.Swap(p); old != nil {
		for name, cl := range old.clusters {
			if p.clusters[name] != cl {
				cl.closeIdle()
				e.retired = append(e.retired, cl)
			}
		}
	}
	return nil
}

// Addr returns the listener's host:port.
func (e *Envoy) Addr() string { return e.ln.Addr().String() }

// Counters returns a snapshot of the counters (see the package doc).
func (e *Envoy) Counters() map[string]uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.counters)
}

// Close stops serving, aborts requests in flight and closes ext_proc
// connections.
func (e *Envoy) Close() error {
	var errs []error
	if e.srv != nil {
		if err := e.srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	if e.cancel != nil {
		e.cancel()
	}
	if e.adsEnd != nil {
		<-e.adsEnd
	}
	if e.ads != nil {
		if err := e.ads.conn.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	e.setup.Lock()
	defer e.setup.Unlock()
	for _, c := range e.conns {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	clusters := e.retired
	if p := e.p.Load(); p != nil {
		clusters = slices.AppendSeq(clusters, maps.Values(p.clusters))
	}
	for _, cl := range clusters {
		cl.closeIdle()
	}
	errs = append(errs, e.closeTracers())
	return errors.Join(errs...)
}

func (e *Envoy) count(name string, n int) {
	e.mu.Lock()
	e.counters[name] += uint64(n)
	e.mu.Unlock()
}

// exchange is one downstream request.
type exchange struct {
	e          *Envoy
	p          *plan // the plan when the request arrived, for all of it
	ctx        context.Context
	info       *streamInfo
	start      time.Time
	origin     *headerMap // request headers as received
	reqHeaders *headerMap // after the downstream filters
	body       []byte
	bytesIn    int
	route      *route
	clearRoute atomic.Bool
	flags      []string
	attempts   int
	cluster    string
	hostAddr   string
	hostMeta   *corev3.Metadata
	respHdrs   *headerMap
	bytesOut   int
	code       int
	details    string
}

// ServeHTTP handles one downstream request the way the configured HCM does.
func (e *Envoy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	x := &exchange{e: e, p: e.p.Load(), ctx: ctx, info: newStreamInfo(), start: time.Now()}
	e.count("http."+x.p.statPrefix+".downstream_rq_total", 1)
	defer x.accessLog()

	h := &headerMap{}
	h.add(":authority", r.Host)
	h.add(":path", r.URL.RequestURI())
	h.add(":method", r.Method)
	h.add(":scheme", "http")
	rest := fromHTTPHeader(r.Header)
	slices.SortStableFunc(rest.kv, func(a, b header) int { return strings.Compare(a.key, b.key) })
	h.kv = append(h.kv, rest.kv...)
	if r.ContentLength > 0 || (r.ContentLength == 0 && r.Method != http.MethodGet && r.Method != http.MethodHead) {
		h.set("content-length", strconv.FormatInt(r.ContentLength, 10))
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	x.p.internal.clean(h, r.RemoteAddr, local, func() string {
		return fmt.Sprintf("harness-%d-%d", x.start.UnixNano(), e.reqSeq.Add(1))
	})
	// The HCM's early header mutations run before route matching and every
	// HTTP filter (HttpConnectionManager.early_header_mutation_extensions:
	// "before route matching and the filter chain").
	for _, k := range x.p.earlyRemove {
		h.del(k)
	}
	// The HCM starts the request's span once the headers are sanitized,
	// before its filters (tracing.go).
	x.info.span = x.p.tracer.ingress(h, x.start)
	if x.p.peerURISAN != nil {
		x.info.peerURISAN = x.p.peerURISAN(r)
	}
	// jwt_authn decodes the headers before the ext_proc filters (it is
	// rendered first): a refusal is its local reply, success leaves the
	// payload in the dynamic metadata they are forwarded.
	if x.p.jwt != nil {
		x.info.reqHeaders = h
		if lr := x.p.jwt.decode(h, x.info); lr != nil {
			x.origin = h.clone()
			x.sendLocal(w, lr)
			return
		}
	}
	x.origin = h.clone()
	x.info.reqHeaders = h
	// Envoy matches the route when headers arrive and caches it.
	x.route = x.p.matchRoute(h)
	if x.route != nil {
		x.info.routeName, x.info.cluster = x.route.name, x.route.cluster
	}

	// The request body is read in full first (reads become chunks).
	var chunks [][]byte
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Body.Read(buf)
		if n > 0 {
			chunks = append(chunks, slices.Clone(buf[:n]))
			x.bytesIn += n
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			break
		}
	}

	limit := x.p.bufferLimit
	if x.route != nil && x.route.bodyLimit > 0 && !x.p.version.before(envoyVersion{1, 37}) {
		// From Envoy 1.37 the route's limit applies once the route is
		// matched; before, only at the router.
		limit = x.route.bodyLimit
	}
	streams := make([]*procStream, len(x.p.filters))
	for i, f := range x.p.filters {
		streams[i] = newProcStream(e, f, x.info, func() { x.clearRoute.Store(true) }, limit)
	}
	in := make(chan event, len(chunks)+2)
	in <- event{headers: h, end: len(chunks) == 0}
	for i, c := range chunks {
		in <- event{data: c, end: i == len(chunks)-1}
	}
	out, wg := chain(ctx, streams, dirRequest, in)
	var body []byte
	for done := false; !done; {
		var ev event
		select {
		case ev = <-out:
		case <-ctx.Done():
			return
		}
		switch {
		case ev.local != nil:
			wg.Wait()
			closeStreams(streams)
			x.sendLocal(w, ev.local)
			return
		case ev.err != nil:
			wg.Wait()
			closeStreams(streams)
			x.sendLocal(w, &localReply{status: 500, details: "harness_request_error"})
			return
		case ev.headers != nil:
			x.reqHeaders = ev.headers
		default:
			body = append(body, ev.data...)
		}
		done = ev.end
	}
	wg.Wait()
	x.body = body
	if x.clearRoute.Load() {
		x.route = x.p.matchRoute(x.reqHeaders)
	}

	first, rest2, finish := x.router()
	defer finish()
	rev := slices.Clone(streams)
	slices.Reverse(rev)
	rin := make(chan event, 16)
	go func() {
		send := func(ev event) bool {
			select {
			case rin <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		if !send(first) || first.end || first.local != nil || first.err != nil || rest2 == nil {
			return
		}
		x.pump(rest2, send)
	}()
	if first.local != nil && !first.local.immediate {
		// Router-generated local replies go straight to the client.
		closeStreams(streams)
		x.sendLocal(w, first.local)
		return
	}
	rout, rwg := chain(ctx, rev, dirResponse, rin)
	completed := false
	defer func() {
		if completed {
			rwg.Wait()
			closeStreams(streams)
			return
		}
		go func() {
			// An aborted response: the streams still running are reset
			// once ctx ends; the others close when their goroutines are.
			<-ctx.Done()
			rwg.Wait()
			closeStreams(streams)
		}()
	}()
	completed = x.sink(w, rout)
}

// pump forwards the upstream events after the response headers, enforcing
// the route's idle_timeout.
func (x *exchange) pump(in <-chan event, send func(event) bool) {
	var idle <-chan time.Time
	var t *time.Timer
	if x.route.idleTimeout > 0 {
		t = time.NewTimer(x.route.idleTimeout)
		defer t.Stop()
		idle = t.C
	}
	for {
		select {
		case ev, ok := <-in:
			if !ok || !send(ev) || ev.end || ev.err != nil || ev.local != nil {
				return
			}
			if t != nil {
				t.Reset(x.route.idleTimeout)
			}
		case <-idle:
			x.flags = append(x.flags, "SI")
			send(event{err: errors.New("stream idle timeout")})
			return
		case <-x.ctx.Done():
			send(event{err: x.ctx.Err()})
			return
		}
	}
}

// router runs the route: direct response, or upstream attempts with
// retries. It returns the first response event, the rest of the stream and
// a cleanup function.
func (x *exchange) router() (event, <-chan event, func()) {
	nop := func() {}
	rt := x.route
	e := x.e
	if rt == nil {
		x.flags = append(x.flags, "NR")
		e.count("http."+x.p.statPrefix+".no_route", 1)
		return event{local: &localReply{status: 404, details: "route_not_found", flags: []string{"NR"}}}, nil, nop
	}
	if rt.direct != nil {
		hdrs := &headerMap{}
		hdrs.applyOptions(rt.respHeadersToAdd)
		return event{local: &localReply{status: rt.direct.status, body: rt.direct.body, details: "direct_response", headers: hdrs}}, nil, nop
	}
	name := rt.cluster
	if rt.clusterHeader != "" {
		name = x.reqHeaders.value(strings.ToLower(rt.clusterHeader))
	}
	cl, ok := x.p.clusters[name]
	if !ok {
		x.flags = append(x.flags, "NC")
		return event{local: &localReply{status: rt.notFoundCode, details: "cluster_not_found", flags: []string{"NC"}}}, nil, nop
	}
	x.cluster = cl.name
	if rt.hostRewrite != "" {
		x.reqHeaders.set(":authority", rt.hostRewrite)
	}
	for _, k := range rt.reqHeadersToRemove {
		x.reqHeaders.del(k)
	}
	x.reqHeaders.applyOptions(rt.reqHeadersToAdd)
	if rt.prefixRewrite != "" && rt.prefix != "" {
		p := x.reqHeaders.value(":path")
		x.reqHeaders.set("x-envoy-original-path", p)
		x.reqHeaders.set(":path", rt.prefixRewrite+strings.TrimPrefix(p, rt.prefix))
	}
	if rt.timeout > 0 {
		x.reqHeaders.set("x-envoy-expected-rq-timeout-ms", strconv.FormatInt(rt.timeout.Milliseconds(), 10))
	}
	ctx, cancel := x.ctx, context.CancelFunc(nop)
	if rt.timeout > 0 {
		ctx, cancel = context.WithTimeout(x.ctx, rt.timeout)
	}
	pol := rt.retry
	retriesLeft := 0
	if pol != nil {
		retriesLeft = maxRetries(pol, x.reqHeaders)
	}
	stat := func(s string) { e.count("cluster."+cl.name+"."+s, 1) }
	var tried []int
	excluded := map[int]bool{}
	// retryHeld: a scheduled retry holds the cluster's retry resource until
	// the next retry decision or the end of the request
	// (RetryStateImpl::resetRetry).
	retryHeld := false
	expUsed := 0 // exponential back-offs so far
	done := func() {
		if retryHeld {
			retryHeld = false
			cl.cb.releaseRetry()
		}
		cancel()
	}
	local := func(lr *localReply) (event, <-chan event, func()) {
		x.flags = append(x.flags, lr.flags...)
		return event{local: lr}, nil, done
	}
	// decide is RetryStateImpl::shouldRetry: would says whether the policy
	// retries this outcome; the request's retries left and the cluster's
	// max_retries circuit breaker decide whether it is retried. Refused by
	// the breaker, the outcome passes on with flag UO (router.cc).
	decide := func(would bool) bool {
		if retryHeld {
			retryHeld = false
			cl.cb.releaseRetry()
		}
		switch {
		case !would:
			return false
		case retriesLeft == 0:
			stat("upstream_rq_retry_limit_exceeded")
			x.flags = append(x.flags, "URX")
			return false
		}
		retriesLeft--
		if !cl.cb.takeRetry() {
			stat("upstream_rq_retry_overflow")
			x.flags = append(x.flags, "UO")
			return false
		}
		retryHeld = true
		return true
	}
	for n := 1; ; n++ {
		h := cl.pick(excluded, e)
		if h == nil {
			stat("upstream_cx_none_healthy")
			return local(&localReply{status: 503, body: "no healthy upstream", details: "no_healthy_upstream", flags: []string{"UH"}})
		}
		x.attempts++
		x.hostAddr, x.hostMeta = h.addr, h.metadata
		tried = append(tried, h.priority)
		if pol != nil && pol.prevPriorities > 0 && len(tried)%pol.prevPriorities == 0 {
			for _, p := range tried {
				excluded[p] = true
			}
		}
		actx, acancel := context.WithCancel(ctx)
		release, ok := cl.cb.acquire(actx, stat)
		if !ok {
			// The connection pool refused the stream (reset reason
			// overflow): never retried (RetryStateImpl::wouldRetryFromReset)
			// and not counted as an upstream request.
			acancel()
			if pol != nil {
				decide(false)
			}
			if x.ctx.Err() != nil {
				return local(&localReply{status: 503, details: "downstream_remote_disconnect", flags: []string{"DC"}})
			}
			if ctx.Err() != nil {
				stat("upstream_rq_timeout")
				return local(&localReply{status: 504, body: "upstream request timeout", details: "upstream_response_timeout", flags: []string{"UT"}})
			}
			lr := &localReply{status: 503, body: resetBody(n, "overflow"), details: "upstream_reset_before_response_started{overflow}", flags: []string{"UO"}}
			x.upstreamLog(attemptResult{info: newStreamInfo(), headers: x.reqHeaders}, 0, lr)
			return local(lr)
		}
		context.AfterFunc(actx, release)
		stat("upstream_rq_total")
		res := x.attempt(actx, acancel, cl, rt, h)
		code := 0
		if hd := res.first.headers; hd != nil {
			code, _ = strconv.Atoi(hd.value(":status"))
		}
		// consult: the router asks the retry state (no retry state without
		// a policy; upstream filters' local replies and the global timeout
		// never ask).
		consult, would := pol != nil, false
		var lr *localReply
		switch {
		case res.first.local != nil:
			// Local replies of upstream filters are never retried.
			code = res.first.local.status
			consult = false
		case res.first.headers != nil:
			stat("upstream_rq_" + strconv.Itoa(code))
			cl.record(h, code, false, e)
			would = pol != nil && (pol.retriable(code) || pol.retriableHeaders(res.first.headers))
		case ctx.Err() != nil && x.ctx.Err() == nil:
			stat("upstream_rq_timeout")
			lr = &localReply{status: 504, body: "upstream request timeout", details: "upstream_response_timeout", flags: []string{"UT"}}
			consult = false
		case res.perTry:
			stat("upstream_rq_per_try_timeout")
			cl.record(h, 504, false, e)
			lr = &localReply{status: 504, body: "upstream request timeout", details: "upstream_per_try_timeout", flags: []string{"UT"}}
			would = pol != nil && (pol.on["5xx"] || pol.on["gateway-error"] || pol.on["reset"])
		case res.connFail:
			stat("upstream_cx_connect_fail")
			cl.record(h, 0, true, e)
			lr = &localReply{status: 503, body: resetBody(n, "connection failure"), details: "upstream_reset_before_response_started{connection_failure}", flags: []string{"UF"}}
			would = pol != nil && pol.retriableReset(true)
		default:
			stat("upstream_rq_rx_reset")
			cl.record(h, 0, true, e)
			lr = &localReply{status: 503, body: resetBody(n, "connection termination"), details: "upstream_reset_before_response_started{connection_termination}", flags: []string{"UC"}}
			would = pol != nil && pol.retriableReset(false)
		}
		if consult && decide(would) {
			stat("upstream_rq_retry")
			acancel()
			res.wait()
			x.upstreamLog(res, code, lr)
			wait := pol.backoff(&expUsed, res.first.headers, e, cl.name)
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				if x.ctx.Err() != nil {
					return local(&localReply{status: 503, details: "downstream_remote_disconnect", flags: []string{"DC"}})
				}
				stat("upstream_rq_timeout")
				return local(&localReply{status: 504, body: "upstream request timeout", details: "upstream_response_timeout", flags: []string{"UT"}})
			}
			continue
		}
		if lr != nil {
			acancel()
			x.upstreamLog(res, code, lr)
			return local(lr)
		}
		x.code = code
		finish := func() {
			acancel()
			done()
			x.upstreamLog(res, code, nil)
		}
		if res.first.local != nil {
			// An upstream filter's local reply becomes the upstream response.
			res.first.local.immediate = true
			return res.first, nil, finish
		}
		return res.first, res.rest, finish
	}
}

// resetBody is Envoy's local reply body for an attempt reset before response
// headers (router.cc): "retried and the latest" is added when the attempt was
// a retry.
func resetBody(attempt int, reason string) string {
	retried := ""
	if attempt > 1 {
		retried = "retried and the latest "
	}
	return "upstream connect error or disconnect/reset before headers. " + retried + "reset reason: " + reason
}

func (x *exchange) upstreamLog(res attemptResult, code int, lr *localReply) {
	if len(x.p.upstreamLog) == 0 {
		return
	}
	i := &logInfo{
		start: x.start, end: time.Now(), code: code, reqHeaders: res.headers,
		cluster: x.cluster, upstreamHost: x.hostAddr, attempts: x.attempts,
		// dyn stays empty: upstream_log formats the attempt's own stream info,
		// which filters do not write dynamic metadata to.
		upstreamMeta: res.info.host.metadata,
	}
	if res.first.headers != nil {
		i.respHeaders = res.first.headers
	}
	if lr != nil {
		i.details, i.flags = lr.details, lr.flags
	}
	x.e.log.write(x.p.upstreamLog, i)
}

func (x *exchange) logInfo() *logInfo {
	req := x.reqHeaders
	if req == nil {
		req = x.origin
	}
	return &logInfo{
		start: x.start, end: time.Now(), code: x.code, details: x.details, flags: x.flags,
		reqHeaders: req, respHeaders: x.respHdrs, cluster: x.cluster, upstreamHost: x.hostAddr,
		dyn: x.info.metadata(), bytesIn: x.bytesIn, bytesOut: x.bytesOut, attempts: x.attempts,
		upstreamMeta: x.hostMeta,
	}
}

func (x *exchange) accessLog() {
	if x.code == 0 {
		x.code = 0 // the client went away before a response
	}
	x.e.count(fmt.Sprintf("http.%s.downstream_rq_%dxx", x.p.statPrefix, x.code/100), 1)
	x.e.log.write(x.p.accessLog, x.logInfo())
	if sp := x.info.span; sp != nil && x.origin != nil {
		sp.set(attribute.String("http.method", x.origin.value(":method")), attribute.String("http.url", "http://"+x.origin.value(":authority")+x.origin.value(":path")),
			attribute.String("http.protocol", "HTTP/1.1"), attribute.String("upstream_cluster", x.cluster))
		if id := x.origin.value("x-request-id"); id != "" {
			sp.set(attribute.String("guid:x-request-id", id))
		}
		sp.httpEnded(x.code, x.flags)
	}
}

// sendLocal writes a local reply, applying local_reply_config.
func (x *exchange) sendLocal(w http.ResponseWriter, lr *localReply) {
	for _, f := range lr.flags {
		if !slices.Contains(x.flags, f) {
			x.flags = append(x.flags, f)
		}
	}
	code, body := lr.status, lr.body
	x.code, x.details = code, lr.details
	hdrs := &headerMap{}
	if lr.headers != nil {
		hdrs = lr.headers.clone()
	}
	info := x.logInfo()
	info.localBody = body
	lrc := x.p.localReply
	var f *format
	for _, m := range lrc.mappers {
		if !m.filter(info) {
			continue
		}
		if m.status != 0 {
			code = m.status
		}
		if m.body != nil {
			body = *m.body
		}
		// Router::HeaderParser formats each value with the request's
		// headers and stream info and leaves out a header whose value is
		// empty (source/common/local_reply/local_reply.cc, ResponseMapper::rewrite;
		// source/common/router/header_parser.cc).
		for i, h := range m.headers {
			v := m.values[i].renderHeader(info)
			switch {
			case v == "":
			case m.appendHdr[i]:
				hdrs.add(h.key, v)
			default:
				hdrs.set(h.key, v)
			}
		}
		f = m.format
		break
	}
	if f == nil {
		f = lrc.bodyFormat
	}
	contentType := "text/plain"
	rewritten := body != lr.body
	if f != nil {
		info.code, info.localBody = code, body
		body = f.render(info)
		contentType = f.contentType
		rewritten = true
	}
	x.code = code
	if body != "" {
		if _, ok := hdrs.get("content-type"); !ok || rewritten {
			hdrs.set("content-type", contentType)
		}
	}
	hdrs.set("content-length", strconv.Itoa(len(body)))
	hdrs.del(":status")
	for k, v := range hdrs.httpHeader() {
		w.Header()[k] = v
	}
	if _, ok := hdrs.get("content-type"); !ok {
		w.Header()["Content-Type"] = nil
	}
	x.respHdrs = hdrs
	x.respHdrs.add(":status", strconv.Itoa(code))
	w.WriteHeader(code)
	n, _ := io.WriteString(w, body)
	x.bytesOut += n
}

// sink writes response events to the client. A failure after the response
// started aborts the connection, as Envoy resets the downstream stream. It
// reports whether the response completed.
func (x *exchange) sink(w http.ResponseWriter, out <-chan event) (completed bool) {
	started := false
	fl, _ := w.(http.Flusher)
	for {
		var ev event
		select {
		case ev = <-out:
		case <-x.ctx.Done():
			if started {
				panic(http.ErrAbortHandler)
			}
			return
		}
		switch {
		case ev.local != nil:
			if started {
				x.flags = append(x.flags, "LR")
				panic(http.ErrAbortHandler)
			}
			x.sendLocal(w, ev.local)
			return
		case ev.err != nil:
			if started {
				x.flags = append(x.flags, "UPE")
				panic(http.ErrAbortHandler)
			}
			x.sendLocal(w, &localReply{status: 503, body: "upstream reset", details: "upstream_reset_after_response_started", flags: []string{"UR"}})
			return
		case ev.headers != nil:
			started = true
			if x.route != nil {
				// finalizeResponseHeaders, after the retry decision
				// (Filter::onUpstreamHeaders, source/common/router/router.cc):
				// removals before additions.
				for _, k := range x.route.respHeadersToRemove {
					ev.headers.del(k)
				}
				ev.headers.applyOptions(x.route.respHeadersToAdd)
			}
			code, err := strconv.Atoi(ev.headers.value(":status"))
			if err != nil {
				code = 200
			}
			x.code, x.respHdrs = code, ev.headers
			if x.details == "" {
				x.details = "via_upstream"
			}
			for k, v := range ev.headers.httpHeader() {
				w.Header()[k] = v
			}
			if _, ok := ev.headers.get("content-type"); !ok {
				w.Header()["Content-Type"] = nil
			}
			w.WriteHeader(code)
			if fl != nil {
				fl.Flush()
			}
		default:
			if len(ev.data) > 0 {
				n, err := w.Write(ev.data)
				x.bytesOut += n
				if err != nil {
					x.flags = append(x.flags, "DC")
					return
				}
				if fl != nil {
					fl.Flush()
				}
			}
		}
		if ev.end {
			return true
		}
	}
}
