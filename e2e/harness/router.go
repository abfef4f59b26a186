package harness

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// cluster is an upstream cluster, static or from CDS.
type cluster struct {
	name           string
	src            *clusterv3.Cluster // what it was compiled from
	connectTimeout time.Duration
	http2          bool
	hosts          []*host // sorted by priority
	filters        []*procConfig
	outlier        *outlierConfig
	cb             *breakers
	windowStart    time.Time // the outlier detection interval's start (cluster.mu)
	ready          bool      // transports and ext_proc clients set (Envoy.install)

	mu sync.Mutex
	rr int
}

// host is one endpoint, with its outlier state (guarded by cluster.mu).
type host struct {
	addr      string
	hostname  string // for auto_host_rewrite
	priority  int
	metadata  *corev3.Metadata
	healthy   bool
	tls       *tls.Config
	transport *http.Transport

	consec5xx, consecGw int
	ejections           int
	ejectedUntil        time.Time
	window              outlierWindow
}

// outlierConfig is the simplified outlier detection: consecutive 5xx and
// consecutive gateway failures (connect failures count as both), ejection
// for base_ejection_time × times ejected (capped at max_ejection_time),
// limited by max_ejection_percent; hosts return lazily when their time is
// up rather than on an interval timer.
type outlierConfig struct {
	consec5xx, enforce5xx int
	consecGw, enforceGw   int
	enforceSR, enforceFP  int // enforcing_success_rate, enforcing_failure_percentage
	maxPercent            int
	interval              time.Duration
	base, maxEjection     time.Duration
}

func (c *cluster) newTransports() {
	for _, h := range c.hosts {
		t := &http.Transport{
			DialContext:         (&net.Dialer{Timeout: c.connectTimeout}).DialContext,
			TLSClientConfig:     h.tls,
			DisableCompression:  true,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
		}
		if c.http2 {
			p := new(http.Protocols)
			if h.tls != nil {
				p.SetHTTP2(true)
			} else {
				p.SetUnencryptedHTTP2(true)
			}
			t.Protocols = p
		}
		h.transport = t
	}
}

// closeIdle closes the hosts' idle upstream connections.
func (c *cluster) closeIdle() {
	for _, h := range c.hosts {
		if h.transport != nil {
			h.transport.CloseIdleConnections()
		}
	}
}

// pick chooses a host: the first priority level, not excluded, with a
// healthy (and not ejected) host, round-robin within it. With no healthy
// host anywhere it panics like Envoy: any host of the first level.
func (c *cluster) pick(excluded map[int]bool, e *Envoy) *host {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.hosts) == 0 {
		return nil
	}
	now := time.Now()
	try := func(excl map[int]bool) *host {
		var level []*host
		cur := -1
		for _, h := range c.hosts {
			if excl[h.priority] {
				continue
			}
			if cur >= 0 && h.priority != cur && len(level) > 0 {
				break
			}
			if h.healthy && !now.Before(h.ejectedUntil) {
				cur = h.priority
				level = append(level, h)
			}
		}
		if len(level) == 0 {
			return nil
		}
		c.rr++
		return level[c.rr%len(level)]
	}
	if h := try(excluded); h != nil {
		return h
	}
	if len(excluded) > 0 {
		if h := try(nil); h != nil {
			return h
		}
	}
	e.count("cluster."+c.name+".lb_healthy_panic", 1)
	var level []*host
	for _, h := range c.hosts {
		if h.priority == c.hosts[0].priority {
			level = append(level, h)
		}
	}
	c.rr++
	return level[c.rr%len(level)]
}

// record feeds one attempt's outcome to outlier detection.
func (c *cluster) record(h *host, code int, connFail bool, e *Envoy) {
	o := c.outlier
	if o == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tally(h, connFail || code >= 500, e)
	if !connFail && code < 500 {
		h.consec5xx, h.consecGw = 0, 0
		return
	}
	h.consec5xx++
	if connFail || code == 502 || code == 503 || code == 504 {
		h.consecGw++
	} else {
		h.consecGw = 0
	}
	switch {
	case h.consec5xx >= o.consec5xx && enforced(o.enforce5xx):
	case h.consecGw >= o.consecGw && enforced(o.enforceGw):
	default:
		return
	}
	c.eject(h, time.Now(), "consecutive", e)
}

// matchRoute finds the first matching route of the matching virtual host.
func (p *plan) matchRoute(h *headerMap) *route {
	authority := strings.ToLower(h.value(":authority"))
	vh := p.vhostFor(authority)
	if vh == nil {
		if host, _, err := net.SplitHostPort(authority); err == nil {
			vh = p.vhostFor(host)
		}
	}
	if vh == nil {
		return nil
	}
	path := h.value(":path")
	pathOnly, _, _ := strings.Cut(path, "?")
	for _, r := range vh.routes {
		if r.matches(h, path, pathOnly) {
			return r
		}
	}
	return nil
}

func (p *plan) vhostFor(authority string) *vhost {
	var best *vhost
	bestRank, bestLen := 0, -1
	for _, v := range p.routes {
		for _, d := range v.domains {
			d = strings.ToLower(d)
			rank, l := 0, len(d)
			switch {
			case d == authority:
				rank = 4
			case d == "*":
				rank, l = 1, 0
			case strings.HasPrefix(d, "*") && strings.HasSuffix(authority, d[1:]) && len(authority) > len(d)-1:
				rank = 3
			case strings.HasSuffix(d, "*") && strings.HasPrefix(authority, d[:len(d)-1]) && len(authority) > len(d)-1:
				rank = 2
			default:
				continue
			}
			if rank > bestRank || (rank == bestRank && l > bestLen) {
				best, bestRank, bestLen = v, rank, l
			}
		}
	}
	return best
}

func (r *route) matches(h *headerMap, path, pathOnly string) bool {
	norm := func(s string) string {
		if r.caseInsensitive {
			return strings.ToLower(s)
		}
		return s
	}
	switch {
	case r.regex != nil:
		if !r.regex.MatchString(pathOnly) {
			return false
		}
	case r.path != "":
		if norm(pathOnly) != norm(r.path) {
			return false
		}
	default:
		if !strings.HasPrefix(norm(path), norm(r.prefix)) {
			return false
		}
	}
	for _, hm := range r.headers {
		v, ok := h.joined(hm.name)
		if hm.match(v, ok) == hm.invert {
			return false
		}
	}
	return true
}

// attemptResult is what one upstream attempt produced before the router's
// retry decision.
type attemptResult struct {
	first    event        // response headers, or a local reply from an upstream filter
	rest     <-chan event // the response events after first
	connFail bool         // connection to the host failed
	reset    bool         // reset before response headers
	perTry   bool         // per_try_timeout expired
	info     *streamInfo
	headers  *headerMap // the request as sent upstream
	// wait returns once the attempt's response-path filters have stopped
	// (after its context ends), so the next attempt has the shared request
	// headers to itself.
	wait func()
}

var errPerTry = errors.New("per-try timeout")

// attempt runs the upstream filter chain and one upstream HTTP request.
//
// The per-try timer runs from the attempt's start, as Envoy's starts when
// the connection pool has a connection for the stream (onPoolReady, in
// parallel with the upstream filters: source/common/router/upstream_request.cc),
// until the response headers leave the attempt.
func (x *exchange) attempt(ctx context.Context, cancel context.CancelFunc, cl *cluster, rt *route, h *host) (res attemptResult) {
	if rt.retry != nil && rt.retry.perTry > 0 {
		var fired atomic.Bool
		t := time.AfterFunc(rt.retry.perTry, func() {
			fired.Store(true)
			cancel()
		})
		defer func() {
			t.Stop()
			if fired.Load() && res.first.headers == nil && res.first.local == nil {
				res.perTry, res.connFail, res.reset = true, false, false
				res.first = event{err: errPerTry}
			}
		}()
	}
	ui := newStreamInfo()
	// Every attempt's filter chain decodes the one downstream header map
	// (UpstreamRequest: filter_manager_->decodeHeaders(*parent_.downstreamHeaders())),
	// so what an earlier attempt's upstream filters set or removed is still
	// there; the body is a fresh copy of the router's buffered one.
	hdrs := x.reqHeaders
	if rt.attemptCount {
		hdrs.set("x-envoy-attempt-count", strconv.Itoa(x.attempts))
	}
	ui.reqHeaders, ui.cluster, ui.host, ui.routeName = hdrs, cl.name, h, rt.name
	ui.dynOwner = x.info
	// An upstream filter's active span is the downstream request's; with
	// spawn_upstream_span the attempt has its own span beside (tracing.go).
	ui.span = x.info.span
	as := upstreamSpan(x.info.span, cl.name, x.attempts)
	defer func() {
		code := 0
		if res.first.headers != nil {
			code, _ = strconv.Atoi(res.first.headers.value(":status"))
		} else if res.first.local != nil {
			code = res.first.local.status
		}
		as.httpEnded(code, nil)
	}()
	res = attemptResult{info: ui, headers: hdrs, wait: func() {}}
	streams := make([]*procStream, len(cl.filters))
	for i, f := range cl.filters {
		streams[i] = newProcStream(x.e, f, ui, nil, x.p.bufferLimit)
	}
	in := make(chan event, 2)
	in <- event{headers: hdrs, end: len(x.body) == 0}
	if len(x.body) > 0 {
		in <- event{data: slices.Clone(x.body), end: true}
	}
	out, wg := chain(ctx, streams, dirRequest, in)
	var body []byte
	var final *headerMap
collect:
	for {
		select {
		case ev := <-out:
			switch {
			case ev.local != nil && x.p.version.before(envoyVersion{1, 37}):
				// Before Envoy 1.37 an upstream ext_proc filter cannot send
				// a local reply (envoyproxy/envoy#41231): the attempt
				// stalls until a timeout ends it.
				<-ctx.Done()
				wg.Wait()
				res.first = event{err: ctx.Err()}
				return res
			case ev.local != nil || ev.err != nil:
				wg.Wait()
				res.first = ev
				return res
			case ev.headers != nil:
				final = ev.headers
			default:
				body = append(body, ev.data...)
			}
			if ev.end {
				break collect
			}
		case <-ctx.Done():
			res.first = event{err: ctx.Err()}
			return res
		}
	}
	wg.Wait()
	if rt.autoHostRewrite && h.hostname != "" {
		// Envoy rewrites :authority in onPoolReady, which for a new
		// connection comes after the upstream filters saw the headers and
		// overrides what they set (source/common/router/upstream_request.cc).
		final.set(":authority", h.hostname)
	}
	res.headers = final
	ui.mu.Lock()
	ui.reqHeaders = final
	ui.mu.Unlock()

	scheme := "http"
	if h.tls != nil {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, final.value(":method"), scheme+"://"+h.addr+final.value(":path"), nil)
	if err != nil {
		res.first = event{local: &localReply{status: 400, body: "bad request", details: "harness_bad_upstream_request"}}
		return res
	}
	req.Header = final.httpHeader()
	req.Host = final.value(":authority")
	if len(body) > 0 {
		req.Body, req.ContentLength = wireBody(ctx, body, final.value("content-length"))
		req.GetBody = nil
	} else if final.value("content-length") != "" {
		req.ContentLength = 0
	}
	req.Header.Del("Content-Length")

	type rtResult struct {
		resp *http.Response
		err  error
	}
	done := make(chan rtResult, 1)
	go func() {
		resp, err := h.transport.RoundTrip(req)
		done <- rtResult{resp, err}
	}()
	r := <-done
	if r.err != nil {
		destroy(streams)
		var op *net.OpError
		if errors.As(r.err, &op) && op.Op == "dial" {
			res.connFail = true
		} else {
			res.reset = true
		}
		res.first = event{err: r.err}
		return res
	}
	resp := r.resp
	rh := &headerMap{}
	rh.add(":status", strconv.Itoa(resp.StatusCode))
	hm := fromHTTPHeader(resp.Header)
	slices.SortStableFunc(hm.kv, func(a, b header) int { return strings.Compare(a.key, b.key) })
	rh.kv = append(rh.kv, hm.kv...)
	ui.mu.Lock()
	ui.respCode = resp.StatusCode
	ui.mu.Unlock()

	rin := make(chan event, 16)
	noBody := resp.ContentLength == 0 || x.reqHeaders.value(":method") == http.MethodHead
	rin <- event{headers: rh, end: noBody}
	go func() {
		defer resp.Body.Close()
		if noBody {
			return
		}
		send := func(ev event) bool {
			select {
			case rin <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		var n int64
		buf := make([]byte, 32<<10)
		for {
			k, err := resp.Body.Read(buf)
			n += int64(k)
			last := err == io.EOF || (resp.ContentLength > 0 && n >= resp.ContentLength)
			if k > 0 || last {
				if !send(event{data: slices.Clone(buf[:k]), end: last}) {
					return
				}
			}
			if last {
				return
			}
			if err != nil {
				send(event{err: err})
				return
			}
		}
	}()
	rev := slices.Clone(streams)
	slices.Reverse(rev)
	rout, rwg := chain(ctx, rev, dirResponse, rin)
	res.wait = rwg.Wait
	select {
	case res.first = <-rout:
	case <-ctx.Done():
		res.first = event{err: ctx.Err()}
	}
	if res.first.local != nil && x.p.version.before(envoyVersion{1, 37}) {
		<-ctx.Done() // a dropped local reply, as on the request path
		res.first = event{err: ctx.Err()}
	}
	res.rest = rout
	return res
}

// destroy ends an attempt's upstream ext_proc streams when the attempt
// fails before response headers (connect failure, reset, per-try timeout):
// Envoy destroys the upstream filter chain with the upstream request
// (source/common/router/upstream_request.cc, UpstreamRequest::resetStream
// and the filter manager's destruction), and the ext_proc filter's
// onDestroy closes its gRPC stream
// (source/extensions/filters/http/ext_proc/ext_proc.cc, Filter::onDestroy).
func destroy(streams []*procStream) {
	for _, s := range streams {
		s.abort()
	}
}

// wireBody is the request body as an HTTP/1 upstream reads it under the
// content-length header the filters left: Envoy's codec sends that header and
// the body as they are (source/common/http/http1/codec_impl.cc frames the
// body by content-length, chunked only without one). A shorter header makes
// the upstream read a truncated body; a longer one makes it wait for bytes
// that never come, until a timeout or the client gives up.
func wireBody(ctx context.Context, body []byte, contentLength string) (io.ReadCloser, int64) {
	cl, err := strconv.Atoi(contentLength)
	switch {
	case err != nil || cl < 0:
		return io.NopCloser(bytes.NewReader(body)), -1
	case cl <= len(body):
		return io.NopCloser(bytes.NewReader(body[:cl])), int64(cl)
	}
	return io.NopCloser(io.MultiReader(bytes.NewReader(body), stalled{ctx})), int64(cl)
}

// stalled blocks until ctx ends: the missing tail of a body.
type stalled struct{ ctx context.Context }

func (s stalled) Read([]byte) (int, error) {
	<-s.ctx.Done()
	return 0, s.ctx.Err()
}

// retriable reports whether a response code is retried by pol.
func (pol *retryPolicy) retriable(code int) bool {
	switch {
	case pol.on["5xx"] && code >= 500:
		return true
	case pol.on["gateway-error"] && (code == 502 || code == 503 || code == 504):
		return true
	case pol.on["retriable-4xx"] && code == 409:
		return true
	case pol.on["retriable-status-codes"] && pol.codes[code]:
		return true
	}
	return false
}

// retriableHeaders reports whether a response's headers match one of
// retriable_headers under retry_on retriable-headers
// (RetryStateImpl::wouldRetryFromHeaders, source/common/router/retry_state_impl.cc).
func (pol *retryPolicy) retriableHeaders(h *headerMap) bool {
	if !pol.on["retriable-headers"] {
		return false
	}
	for _, hm := range pol.headers {
		v, ok := h.joined(hm.name)
		if hm.match(v, ok) != hm.invert {
			return true
		}
	}
	return false
}

func (pol *retryPolicy) retriableReset(connFail bool) bool {
	if pol.on["5xx"] || pol.on["gateway-error"] || pol.on["reset"] {
		return true
	}
	return connFail && (pol.on["connect-failure"] || pol.on["reset-before-request"])
}

// backoff returns the wait before a retry (RetryStateImpl::
// shouldRetryHeaders and enableBackoffTimer in source/common/router/
// retry_state_impl.cc, source/common/common/backoff_strategy.cc): a
// rate-limited reset header above 1 ms and not above max_interval gives a
// wait jittered between 1× and 1.5× of it; otherwise full-jitter
// exponential back-off, whose interval doubles each time it is used (*exp
// counts the uses).
func (pol *retryPolicy) backoff(exp *int, resp *headerMap, e *Envoy, clusterName string) time.Duration {
	if resp != nil {
		for _, name := range pol.rlHeaders {
			v, ok := resp.get(name)
			if !ok {
				continue
			}
			secs, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || secs < 0 {
				continue
			}
			d := time.Duration(secs) * time.Second
			if d > pol.rlMax || d <= time.Millisecond {
				continue
			}
			e.count("cluster."+clusterName+".upstream_rq_retry_backoff_ratelimited", 1)
			ms := d.Milliseconds()
			return time.Duration(ms+rand.Int64N(ms>>1)) * time.Millisecond
		}
	}
	e.count("cluster."+clusterName+".upstream_rq_retry_backoff_exponential", 1)
	ceil := pol.base << *exp
	*exp++
	if ceil > pol.max || ceil <= 0 {
		ceil = pol.max
	}
	if ceil <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(ceil)))
}
