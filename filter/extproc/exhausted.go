package extproc

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/translate"
)

// RetriableStatusCodes are the provider answers Envoy's retry policy tries
// again on the pool's next backend (retry_on retriable-status-codes): the
// envoy package renders them into every pool route, and the upstream role
// takes one of them on the last attempt Envoy may make as the pool being
// exhausted. Read-only.
var RetriableStatusCodes = []uint32{429, 500, 502, 503, 504}

// CodePoolExhausted is the OpenAI error code of a request that every attempt
// Envoy was allowed to make failed: the upstream role writes it over the last
// provider error, and the rendered local_reply_config over Envoy's own
// failures (connect failures, resets, timeouts, no healthy upstream).
const CodePoolExhausted = "pool_exhausted"

// maxExhaustedBody bounds the last attempt's error answer that is read for
// its message.
const maxExhaustedBody = 1 << 20

// maxProviderMessage bounds the provider's message quoted in the
// pool_exhausted error.
const maxProviderMessage = 1024

func retriableStatus(status int) bool {
	return status > 0 && slices.Contains(RetriableStatusCodes, uint32(status))
}

// exhausted reports whether this attempt's answer, should it reach the
// client, ends the request as a failure of the whole pool: a status Envoy
// retries. On the last try Envoy may make (x-envoy-attempt-count =
// envoy.num_retries + 1) it always reaches the client. On an earlier try it
// reaches the client only when Envoy did not retry although the policy
// allowed it: the cluster's circuit breaker refused the retry (retry
// overflow, response flag UO; RetryStateImpl::shouldRetry in
// source/common/router/retry_state_impl.cc), and the router passes the
// upstream answer on instead (Filter::onUpstreamHeaders in
// source/common/router/router.cc). No local reply is made then, so
// local_reply_config never sees it: only this role can say so. When Envoy
// does retry, it resets the attempt and the rewritten body is never read.
// Without an attempt count (not the rendered config) nothing is assumed.
func (u *upstream) exhausted() bool {
	return retriableStatus(u.status) && u.attempt > 0
}

// exhaust makes the answer's body the pool_exhausted error when this attempt
// failed with a status Envoy retries. Only a last try is counted: whether an
// earlier one reaches the client is decided by Envoy after llmproc has seen
// its headers, and often its body too (ext_proc sends the body that arrived
// while it waited for the headers reply before it lets the headers on to the
// router; ProcessorState::sendBufferedDataInStreamedMode in
// source/extensions/filters/http/ext_proc/processor_state.cc), so
// Envoy's upstream_rq_retry_overflow counts refused retries, not llmproc.
// It runs once the status is known and u.body is the translator's error
// body.
func (u *upstream) exhaust() bool {
	if u.body == nil || !u.exhausted() {
		return false
	}
	x := exhaustion{
		pool: u.pool.Name, backends: len(u.pool.Members), attempts: u.attempt,
		backend: u.member.Backend.Name, status: u.status, refused: !u.lastAttempt(),
	}
	u.body = &exhaustedBody{inner: u.body, x: x}
	if u.s.metrics != nil && !x.refused {
		u.s.metrics.PoolExhausted(u.pool.Name)
	}
	return true
}

// replaceHeadersOnly gives a bodiless last failure (response headers with
// end_of_stream) the pool_exhausted body: CONTINUE_AND_REPLACE adds a body
// to a message that had none.
func (u *upstream) replaceHeadersOnly(c *extprocv3.CommonResponse) {
	out, _ := u.body.Chunk(nil, true)
	if u.conv != nil {
		out, _ = u.conv.Chunk(out, true)
	}
	c.Status = extprocv3.CommonResponse_CONTINUE_AND_REPLACE
	c.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: out}}
}

// exhaustion is what the pool_exhausted error says about the request.
type exhaustion struct {
	pool     string
	backends int // members of the pool
	attempts int // x-envoy-attempt-count of the last attempt
	backend  string
	status   int
	// refused: an earlier try than the last, so retries were left and
	// the circuit breaker refused the next one.
	refused bool
}

// exhaustedBody reads the last attempt's error answer (OpenAI error JSON once
// inner, the translator's body, is done with it) and emits the
// pool_exhausted error in its place at the end.
type exhaustedBody struct {
	inner translate.Body
	x     exhaustion
	buf   []byte
}

func (e *exhaustedBody) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	out, pass := e.inner.Chunk(chunk, eos)
	if pass {
		out = chunk
	}
	if len(e.buf)+len(out) <= maxExhaustedBody {
		e.buf = append(e.buf, out...)
	}
	if !eos {
		return nil, false
	}
	return e.x.error(e.buf).JSON(), false
}

// error is the pool_exhausted error built over the last attempt's OpenAI
// error JSON. Status and type follow the last answer (429 stays a
// rate_limit_error, so clients keep backing off; 5xx is a server_error); the
// message names the pool, the attempts made, the last backend and what it
// said. It claims every backend failed only when there were at least as many
// attempts as backends.
func (x exhaustion) error(last []byte) *apierr.Error {
	msg, code := gjson.GetBytes(last, "error.message"), gjson.GetBytes(last, "error.code")
	said := strings.TrimSpace(msg.String())
	if msg.Type != gjson.String || said == "" {
		said = "upstream returned " + http.StatusText(x.status)
	}
	var b strings.Builder
	if x.refused {
		b.WriteString("Pool " + quote(x.pool) + " gave up after " + attempts(x.attempts) +
			": Envoy's circuit breaker refused the retry the policy allowed (retry overflow: more retries in flight on cluster " +
			quote(PoolClusterPrefix+x.pool) + " than its max_retries; raise envoy.max_concurrent_requests)")
	} else if x.attempts >= x.backends {
		b.WriteString("All backends of pool " + quote(x.pool) + " failed (" + attempts(x.attempts) + ")")
	} else {
		b.WriteString("Pool " + quote(x.pool) + " gave up after " + attempts(x.attempts) +
			", the retry limit, before trying all of its " + strconv.Itoa(x.backends) + " backends")
	}
	b.WriteString("; the last, backend " + quote(x.backend) + ", answered " + strconv.Itoa(x.status))
	if code.Type == gjson.String && code.Str != "" && code.Str != "upstream_error" && len(code.Str) <= 64 {
		b.WriteString(" (" + code.Str + ")")
	}
	b.WriteString(": " + truncate(said, maxProviderMessage))
	return &apierr.Error{Status: x.status, Type: apierr.TypeForStatus(x.status), Code: CodePoolExhausted, Message: b.String()}
}

func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return strconv.Itoa(n) + " attempts"
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
