package harness

import (
	"context"
	"fmt"
	"sync"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// breakers are a cluster's circuit breakers for the DEFAULT routing
// priority, the only one the harness's routes use (RouteAction.priority is
// not accepted). They follow Envoy's ResourceManagerImpl
// (source/common/upstream/resource_manager_impl.h) with the defaults of
// ClusterInfoImpl (source/common/upstream/upstream_impl.cc): 1024
// connections, pending requests and requests, 3 retries.
type breakers struct {
	maxConnections, maxPending, maxRequests, maxRetries int
	// budget replaces max_retries when the thresholds set retry_budget:
	// max(budgetPercent% of active and pending requests, minRetryConc).
	budget        bool
	budgetPercent float64
	minRetryConc  int
	// multiplexed: HTTP/2 upstream, where streams share connections and
	// max_connections does not queue requests.
	multiplexed bool

	mu       sync.Mutex
	requests int           // upstream streams open
	pending  int           // requests waiting for a connection
	retries  int           // retries scheduled and not yet resolved
	freed    chan struct{} // closed and replaced when a request ends
}

func newBreakers(multiplexed bool) *breakers {
	return &breakers{maxConnections: 1024, maxPending: 1024, maxRequests: 1024, maxRetries: 3, multiplexed: multiplexed, freed: make(chan struct{})}
}

// compileBreakers reads circuit_breakers. Thresholds for HIGH priority are
// accepted as Envoy does and never used, since every harness route has
// DEFAULT priority.
func compileBreakers(cb *clusterv3.CircuitBreakers, multiplexed bool, path string) (*breakers, error) {
	b := newBreakers(multiplexed)
	if cb == nil {
		return b, nil
	}
	if err := checkFields(cb, path); err != nil {
		return nil, err
	}
	seen := false
	for i, t := range cb.GetThresholds() {
		tp := fmt.Sprintf("%s.thresholds[%d]", path, i)
		if err := checkFields(t, tp); err != nil {
			return nil, err
		}
		if t.GetPriority() != corev3.RoutingPriority_DEFAULT {
			continue
		}
		if seen {
			return nil, fmt.Errorf("%s: a second DEFAULT priority threshold is unsupported by the harness", tp)
		}
		seen = true
		for _, f := range []struct {
			dst *int
			v   *wrapperspb.UInt32Value
		}{{&b.maxConnections, t.GetMaxConnections()}, {&b.maxPending, t.GetMaxPendingRequests()}, {&b.maxRequests, t.GetMaxRequests()}, {&b.maxRetries, t.GetMaxRetries()}} {
			if f.v != nil {
				*f.dst = int(f.v.GetValue())
			}
		}
		if rb := t.GetRetryBudget(); rb != nil {
			if err := checkFields(rb, tp+".retry_budget"); err != nil {
				return nil, err
			}
			b.budget, b.budgetPercent, b.minRetryConc = true, 20, 3
			if p := rb.GetBudgetPercent(); p != nil {
				b.budgetPercent = p.GetValue()
			}
			if m := rb.GetMinRetryConcurrency(); m != nil {
				b.minRetryConc = int(m.GetValue())
			}
		}
	}
	if len(cb.GetPerHostThresholds()) > 0 {
		return nil, fmt.Errorf("%s.per_host_thresholds: unsupported by the harness", path)
	}
	return b, nil
}

// acquire takes a request slot for one upstream stream, the way Envoy's
// connection pool does (source/common/conn_pool/conn_pool_base.cc): over
// HTTP/1 a request beyond max_connections waits for a connection as a
// pending request, refused once max_pending_requests wait; a stream
// beyond max_requests is refused. Refusals count
// upstream_rq_pending_overflow. The returned release ends the stream; ok
// is false on overflow (or when ctx ends while pending).
func (b *breakers) acquire(ctx context.Context, count func(string)) (release func(), ok bool) {
	b.mu.Lock()
	if !b.multiplexed && b.requests >= b.maxConnections {
		if b.pending >= b.maxPending {
			b.mu.Unlock()
			count("upstream_rq_pending_overflow")
			return nil, false
		}
		b.pending++
		for b.requests >= b.maxConnections {
			freed := b.freed
			b.mu.Unlock()
			select {
			case <-freed:
			case <-ctx.Done():
				b.mu.Lock()
				b.pending--
				b.mu.Unlock()
				return nil, false
			}
			b.mu.Lock()
		}
		b.pending--
	}
	if b.requests >= b.maxRequests {
		b.mu.Unlock()
		count("upstream_rq_pending_overflow")
		return nil, false
	}
	b.requests++
	b.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			b.requests--
			close(b.freed)
			b.freed = make(chan struct{})
			b.mu.Unlock()
		})
	}, true
}

// takeRetry reserves a concurrent retry (RetryStateImpl::shouldRetry in
// source/common/router/retry_state_impl.cc); false means overflow.
func (b *breakers) takeRetry() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	limit := b.maxRetries
	if b.budget {
		limit = max(int(b.budgetPercent/100*float64(b.requests+b.pending)), b.minRetryConc)
	}
	if b.retries >= limit {
		return false
	}
	b.retries++
	return true
}

func (b *breakers) releaseRetry() {
	b.mu.Lock()
	b.retries--
	b.mu.Unlock()
}
