package e2e

import (
	"fmt"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"github.com/tidwall/gjson"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
	"github.com/llmproc/llmproc/e2e/stack"
	"github.com/llmproc/llmproc/envoy"
)

// TestRetryOverflow: when pool cheap's circuit breaker has no room for a
// retry (max_retries 0 here; under load, more retries in flight than
// envoy.max_concurrent_requests), Envoy does not fail over: the first
// backend's 503 goes to the client with flag UO and
// upstream_rq_retry_overflow counts it (RetryStateImpl::shouldRetry,
// retry_state_impl.cc; Filter::onUpstreamHeaders, router.cc). That is no
// local reply, so the upstream role says it: pool_exhausted, the retry
// refused by the circuit breaker, Anthropic-shaped for /v1/messages.
func TestRetryOverflow(t *testing.T) {
	primary, secondary := fakeopenai.New(fakeopenai.Options{}), fakeopenai.New(fakeopenai.Options{})
	t.Cleanup(func() { primary.Close(); secondary.Close() })
	primary.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Status: 503, ErrorMessage: "overloaded"}
	})
	full := func(bs *bootstrapv3.Bootstrap) {
		for _, c := range bs.GetStaticResources().GetClusters() {
			if c.GetName() == envoy.PoolClusterName("cheap") {
				c.GetCircuitBreakers().GetThresholds()[0].MaxRetries = wrapperspb.UInt32(0)
			}
		}
	}
	st, accessLog, _ := startStack(t, fmt.Sprintf(configTemplate, primary.URL(), secondary.URL()),
		map[string]string{"PRIMARY_KEY": "sk-primary", "SECONDARY_KEY": "sk-secondary"},
		func(o *stack.Options) { o.EditBootstrap = full })
	e := &env{Stack: st, primary: primary, secondary: secondary}

	r := e.post(t, chat("gpt-4o-mini", false, ""))
	wantOpenAIError(t, r, 503, "pool_exhausted")
	msg := gjson.GetBytes(r.body, "error.message").String()
	if !strings.HasPrefix(msg, `Pool "cheap" gave up after 1 attempt: Envoy's circuit breaker refused the retry`) || !strings.HasSuffix(msg, "answered 503: overloaded") {
		t.Errorf("message %q", msg)
	}
	amsg := wantAnthropicError(t, postMessages(t, e.URL(), messagesBody), 503, "overloaded_error")
	if !strings.Contains(amsg, "circuit breaker refused the retry") {
		t.Errorf("Anthropic message %q", amsg)
	}
	if n := len(secondary.Requests()); n != 0 {
		t.Errorf("the second backend got %d requests: the retry was made", n)
	}
	if got := e.Proxy.Counters()["cluster.pool/cheap.upstream_rq_retry_overflow"]; got != 2 {
		t.Errorf("upstream_rq_retry_overflow %d, want 2", got)
	}
	if !strings.Contains(accessLog.String(), `"response_flags":"UO"`) {
		t.Errorf("access log has no UO:\n%s", accessLog)
	}
}
