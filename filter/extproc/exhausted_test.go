package extproc

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/metrics"
)

// attempt is one upstream attempt driven straight through the processor.
type attempt struct {
	numRetries int    // envoy.num_retries of the runtime
	count      int    // x-envoy-attempt-count; 0 leaves it out
	client     string // x-llmproc-client
	stream     bool
	status     int
	retryAfter string
	chunks     []string // the answer's body; none: headers with end_of_stream
}

// answer is what the client would see from that attempt.
type answer struct {
	status      string // :status set by llmproc, "" when unchanged
	contentType string
	body        string
	replaced    bool // CONTINUE_AND_REPLACE on response headers
	exhausted   float64
}

func runAttempt(t *testing.T, a attempt) answer {
	t.Helper()
	cfg, err := config.Parse(fmt.Appendf(nil, "envoy: {num_retries: %d}\n"+testConfig, a.numRetries, 4096))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := config.Compile(cfg, func(k string) string { return "sk-" + strings.ToLower(k) })
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	u := &upstream{s: New(Options{Config: fixedRuntime{rt}, Metrics: metrics.New(reg)}), rt: rt}

	kv := []string{":method", "POST", ":path", "/v1/chat/completions", HeaderPool, "cheap"}
	dec := map[string]string{KeyPool: "cheap"}
	if a.count > 0 {
		kv = append(kv, "x-envoy-attempt-count", strconv.Itoa(a.count))
	}
	body := fmt.Sprintf(`{"model":"gpt-4o-mini","stream":%v,"messages":[{"role":"user","content":"hi"}]}`, a.stream)
	if a.client == clientAnthropic {
		dec[KeyClient] = clientAnthropic
		body = fmt.Sprintf(`{"model":"gpt-4o-mini","max_tokens":32,"stream":%v,"messages":[{"role":"user","content":"hi"}]}`, a.stream)
	}
	req := withDecisions(reqHeaders(hdrs(false, kv...), attrsPrimary), dec)
	if _, err := u.requestHeaders(req, req.GetRequestHeaders()); err != nil {
		t.Fatal(err)
	}
	if _, err := u.requestBody(&extprocv3.HttpBody{Body: []byte(body), EndOfStream: true}); err != nil {
		t.Fatal(err)
	}
	rh := []string{":status", strconv.Itoa(a.status), "content-type", "application/json"}
	if a.retryAfter != "" {
		rh = append(rh, "retry-after", a.retryAfter)
	}
	resp, err := u.responseHeaders(hdrs(len(a.chunks) == 0, rh...))
	if err != nil {
		t.Fatal(err)
	}
	c := resp.GetResponseHeaders().GetResponse()
	set := setHeaders(c)
	if _, ok := set["retry-after"]; ok {
		t.Errorf("retry-after rewritten: %v", set)
	}
	var ans answer
	ans.status, ans.contentType = set[":status"], set["content-type"]
	if c.GetStatus() == extprocv3.CommonResponse_CONTINUE_AND_REPLACE {
		ans.replaced, ans.body = true, string(c.GetBodyMutation().GetBody())
	}
	var out strings.Builder
	for i, chunk := range a.chunks {
		resp, err := u.responseBody(&extprocv3.HttpBody{Body: []byte(chunk), EndOfStream: i == len(a.chunks)-1})
		if err != nil {
			t.Fatal(err)
		}
		if bm := resp.GetResponseBody().GetResponse().GetBodyMutation(); bm != nil {
			out.Write(bm.GetBody())
		} else {
			out.WriteString(chunk)
		}
	}
	if len(a.chunks) > 0 {
		ans.body = out.String()
	}
	ans.exhausted = counter(t, reg, "llmproc_pool_exhausted_total", map[string]string{"pool": "cheap"})
	return ans
}

func TestPoolExhausted(t *testing.T) {
	openAIErr := func(msg, typ, code string) string {
		return fmt.Sprintf(`{"error":{"message":%q,"type":%q,"param":null,"code":%q}}`, msg, typ, code)
	}
	overloaded := openAIErr("overloaded", "server_error", "")
	tests := []struct {
		name string
		a    attempt
		// want: status and error.type/code/message of the OpenAI answer
		// (Anthropic clients: the type alone, from Anthropic's shape); a
		// message ending in "…" is a prefix.
		wantStatus, wantType, wantCode, wantMsg string
		exhausted                               bool
		// uncounted: rewritten, not counted (an earlier try; Envoy counts
		// the retries it refused, upstream_rq_retry_overflow)
		uncounted bool
	}{
		{name: "last attempt, 503", a: attempt{numRetries: 2, count: 3, status: 503, chunks: []string{overloaded}},
			wantType: "server_error", wantCode: "pool_exhausted", exhausted: true,
			wantMsg: `All backends of pool "cheap" failed (3 attempts); the last, backend "primary", answered 503: overloaded`},
		// An earlier try's answer reaches the client only when Envoy's
		// circuit breaker refused the retry (UO): it says so.
		{name: "not the last attempt, 503: the retry was refused", a: attempt{numRetries: 2, count: 2, status: 503, chunks: []string{overloaded}},
			wantType: "server_error", wantCode: "pool_exhausted", exhausted: true, uncounted: true,
			wantMsg: `Pool "cheap" gave up after 2 attempts: Envoy's circuit breaker refused the retry the policy allowed (retry overflow: more retries in flight on cluster "pool/cheap" than its max_retries; raise envoy.max_concurrent_requests); the last, backend "primary", answered 503: overloaded`},
		{name: "not the last attempt, headers only", a: attempt{numRetries: 2, count: 1, status: 429},
			wantType: "rate_limit_error", wantCode: "pool_exhausted", exhausted: true, uncounted: true,
			wantMsg: `Pool "cheap" gave up after 1 attempt: Envoy's circuit breaker refused the retry …`},
		{name: "attempt count unknown", a: attempt{numRetries: 2, status: 503, chunks: []string{overloaded}},
			wantType: "server_error", wantMsg: "overloaded"},
		{name: "last attempt, 429 keeps the rate-limit type and names the provider code",
			a:        attempt{numRetries: 2, count: 3, status: 429, retryAfter: "7", chunks: []string{openAIErr("slow down", "requests", "rate_limit_exceeded")}},
			wantType: "rate_limit_error", wantCode: "pool_exhausted", exhausted: true,
			wantMsg: `All backends of pool "cheap" failed (3 attempts); the last, backend "primary", answered 429 (rate_limit_exceeded): slow down`},
		{name: "last attempt, 500", a: attempt{numRetries: 2, count: 3, status: 500, chunks: []string{overloaded}},
			wantType: "server_error", wantCode: "pool_exhausted", exhausted: true, wantMsg: `All backends of pool "cheap" failed (3 attempts); …`},
		{name: "last attempt, 502", a: attempt{numRetries: 2, count: 3, status: 502, chunks: []string{overloaded}},
			wantType: "server_error", wantCode: "pool_exhausted", exhausted: true, wantMsg: `All backends of pool "cheap" failed (3 attempts); …`},
		{name: "last attempt, 504", a: attempt{numRetries: 2, count: 3, status: 504, chunks: []string{overloaded}},
			wantType: "server_error", wantCode: "pool_exhausted", exhausted: true, wantMsg: `All backends of pool "cheap" failed (3 attempts); …`},
		{name: "last attempt, 501 is not retried", a: attempt{numRetries: 2, count: 3, status: 501, chunks: []string{overloaded}},
			wantType: "server_error", wantMsg: "overloaded"},
		{name: "last attempt, 400 is the client's", a: attempt{numRetries: 2, count: 3, status: 400, chunks: []string{openAIErr("bad", "invalid_request_error", "")}},
			wantType: "invalid_request_error", wantMsg: "bad"},
		{name: "fewer attempts than backends", a: attempt{numRetries: 0, count: 1, status: 503, chunks: []string{overloaded}},
			wantType: "server_error", wantCode: "pool_exhausted", exhausted: true,
			wantMsg: `Pool "cheap" gave up after 1 attempt, the retry limit, before trying all of its 2 backends; the last, backend "primary", answered 503: overloaded`},
		{name: "plain-text error split in chunks", a: attempt{numRetries: 1, count: 2, status: 502, chunks: []string{"bad ", "gate", "way"}},
			wantType: "server_error", wantCode: "pool_exhausted", exhausted: true,
			wantMsg: `All backends of pool "cheap" failed (2 attempts); the last, backend "primary", answered 502: bad gateway`},
		{name: "streaming request with an error status", a: attempt{numRetries: 2, count: 3, stream: true, status: 503, chunks: []string{overloaded[:10], overloaded[10:]}},
			wantType: "server_error", wantCode: "pool_exhausted", exhausted: true,
			wantMsg: `All backends of pool "cheap" failed (3 attempts); the last, backend "primary", answered 503: overloaded`},
		{name: "headers only", a: attempt{numRetries: 2, count: 3, status: 503},
			wantType: "server_error", wantCode: "pool_exhausted", exhausted: true,
			wantMsg: `All backends of pool "cheap" failed (3 attempts); the last, backend "primary", answered 503: upstream returned Service Unavailable`},
		{name: "Anthropic client", a: attempt{numRetries: 2, count: 3, client: clientAnthropic, status: 503, chunks: []string{overloaded}},
			wantType: "overloaded_error", exhausted: true,
			wantMsg: `All backends of pool "cheap" failed (3 attempts); the last, backend "primary", answered 503: overloaded`},
		{name: "Anthropic client, streaming, 429", a: attempt{numRetries: 2, count: 3, client: clientAnthropic, stream: true, status: 429, chunks: []string{overloaded}},
			wantType: "rate_limit_error", exhausted: true, wantMsg: `All backends of pool "cheap" failed (3 attempts); …`},
		{name: "Anthropic client, headers only", a: attempt{numRetries: 2, count: 3, client: clientAnthropic, status: 504},
			wantType: "api_error", exhausted: true,
			wantMsg: `All backends of pool "cheap" failed (3 attempts); the last, backend "primary", answered 504: upstream returned Gateway Timeout`},
		{name: "Anthropic client, not the last attempt", a: attempt{numRetries: 2, count: 1, client: clientAnthropic, status: 503, chunks: []string{overloaded}},
			wantType: "overloaded_error", exhausted: true, uncounted: true, wantMsg: `Pool "cheap" gave up after 1 attempt: Envoy's circuit breaker refused the retry …`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runAttempt(t, tt.a)
			if got.status != "" {
				t.Errorf(":status rewritten to %s", got.status)
			}
			if got.replaced != (len(tt.a.chunks) == 0 && tt.exhausted) {
				t.Errorf("CONTINUE_AND_REPLACE %v", got.replaced)
			}
			if !gjson.Valid(got.body) {
				t.Fatalf("body is not JSON: %q", got.body)
			}
			var typ, code, msg string
			if tt.a.client == clientAnthropic {
				if gjson.Get(got.body, "type").String() != "error" {
					t.Errorf("not an Anthropic error: %s", got.body)
				}
				typ, msg = gjson.Get(got.body, "error.type").String(), gjson.Get(got.body, "error.message").String()
			} else {
				typ, code, msg = gjson.Get(got.body, "error.type").String(), gjson.Get(got.body, "error.code").String(), gjson.Get(got.body, "error.message").String()
			}
			if typ != tt.wantType || code != tt.wantCode {
				t.Errorf("type %q code %q, want %q %q in %s", typ, code, tt.wantType, tt.wantCode, got.body)
			}
			if prefix, ok := strings.CutSuffix(tt.wantMsg, "…"); ok {
				if !strings.HasPrefix(msg, prefix) {
					t.Errorf("message %q, want it to start with %q", msg, prefix)
				}
			} else if msg != tt.wantMsg {
				t.Errorf("message %q\nwant    %q", msg, tt.wantMsg)
			}
			if want := map[bool]float64{true: 1}[tt.exhausted && !tt.uncounted]; got.exhausted != want {
				t.Errorf("llmproc_pool_exhausted_total %v, want %v", got.exhausted, want)
			}
		})
	}
}

func TestExhaustionMessageBounded(t *testing.T) {
	long := strings.Repeat("é", maxProviderMessage) // 2 bytes a rune
	e := exhaustion{pool: `we"ird`, backends: 2, attempts: 3, backend: "b", status: 503}.
		error([]byte(`{"error":{"message":"` + long + `","code":"` + strings.Repeat("x", 65) + `"}}`))
	if e.Code != CodePoolExhausted || e.Status != 503 || e.Type != "server_error" {
		t.Errorf("error %+v", e)
	}
	if !strings.HasPrefix(e.Message, `All backends of pool "we'ird" failed (3 attempts); the last, backend "b", answered 503: éé`) {
		t.Errorf("message %q", e.Message[:80])
	}
	if strings.Contains(e.Message, "xxx") {
		t.Error("an oversized provider code was quoted")
	}
	quoted := e.Message[strings.Index(e.Message, ": é")+2:]
	if len(quoted) > maxProviderMessage+len("…") || !strings.HasSuffix(quoted, "é…") {
		t.Errorf("provider message not cut on a rune boundary: %d bytes, ends %q", len(quoted), quoted[len(quoted)-8:])
	}
	if !gjson.ValidBytes(e.JSON()) {
		t.Error("invalid JSON")
	}
}
