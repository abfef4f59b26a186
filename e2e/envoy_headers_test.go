package e2e

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

// TestClientCannotSetTries: a client's x-envoy-max-retries (and
// x-envoy-retry-on) must not change how many tries Envoy makes, or the
// upstream role's "last try" (x-envoy-attempt-count = num_retries + 1), and
// with it pool_exhausted and the budget release, would be wrong. The
// rendered HCM treats every client as external, so Envoy strips them
// (cleanInternalHeaders, source/common/http/conn_manager_utility.cc; the
// harness models it), and each pool route removes the retry headers again.
func TestClientCannotSetTries(t *testing.T) {
	e := start(t)
	down := func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Status: 503, ErrorMessage: "overloaded"}
	}
	e.primary.Script(down)
	e.secondary.Script(down)
	for _, h := range [][]string{
		{"x-envoy-max-retries", "0"},
		{"x-envoy-max-retries", "7", "x-envoy-retry-on", "5xx"},
	} {
		before := len(e.primary.Requests()) + len(e.secondary.Requests())
		r := e.post(t, chat("gpt-4o-mini", false, ""), h...)
		wantOpenAIError(t, r, 503, "pool_exhausted")
		if msg := gjson.GetBytes(r.body, "error.message").String(); !strings.HasPrefix(msg, `All backends of pool "cheap" failed (3 attempts)`) {
			t.Errorf("%v: message %q", h, msg)
		}
		if n := len(e.primary.Requests()) + len(e.secondary.Requests()) - before; n != 3 {
			t.Errorf("%v: %d tries, want num_retries + 1 = 3", h, n)
		}
	}
	for _, req := range append(e.primary.Requests(), e.secondary.Requests()...) {
		for k := range req.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-envoy-max-retries") || strings.HasPrefix(strings.ToLower(k), "x-envoy-retry-on") {
				t.Errorf("provider received %s", k)
			}
		}
	}
}
