package extproc

import (
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/config"
)

const rulesConfig = `
identity: {allow_client_tenant: true} # the tenant header as sent: a test
limits: {max_request_bytes: 1048576}
backends:
  - {name: primary, schema: openai, url: "http://127.0.0.1:1", credential: {env: KEY_A}}
  - {name: claude, schema: anthropic, url: "http://127.0.0.1:3", credential: {env: KEY_B}}
models:
  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60}}
  - {name: claude-sonnet-4-5, pool: code, price: {input: 3, output: 15}}
pools:
  - {name: cheap, backends: [{backend: primary}]}
  - {name: code, backends: [{backend: claude}]}
routing:
  tenant_header: x-tenant
  headers: [x-team]
routes:
  - name: blocked
    match: {when: 'tenant == "blocked"'}
    deny: This tenant is suspended.
  - name: code
    match: {model: auto, when: 'class == "code"'}
    model: claude-sonnet-4-5
  - name: team-beta
    match: {model: auto, when: 'headers["x-team"] == "beta"'}
    pool: code
  - name: small
    match: {model: auto, when: 'input_tokens < 1000'}
    pool: cheap
`

func rulesRuntime(tb testing.TB) *config.Runtime { return compileTest(tb, rulesConfig) }

func TestRouterRules(t *testing.T) {
	h := newHarnessFor(t, rulesRuntime(t), nil)
	code := "Why does this panic?\n```go\nfunc main() { var m map[string]int; m[\"a\"] = 1 }\n```"
	long := strings.Repeat("Tell me about the weather. ", 200)
	tests := []struct {
		name    string
		headers []string
		model   string
		content string
		// want is either "pool route class target" or "status code".
		want string
	}{
		{"code goes to the code model", nil, "auto", code, "code code code claude-sonnet-4-5"},
		{"chat from team beta", []string{"x-team", "beta"}, "auto", "hello there", "code team-beta chat "},
		{"short chat", nil, "auto", "hello there", "cheap small chat "},
		{"long chat matches no rule", nil, "auto", long, "400 no_route"},
		{"explicit model is honoured", nil, "gpt-4o-mini", code, "cheap model code "},
		{"deny applies to explicit models too", []string{"x-tenant", "blocked"}, "gpt-4o-mini", "hi", "403 request_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := h.stream(RoleRouter)
			kv := append([]string{":method", "POST", ":path", "/v1/chat/completions"}, tt.headers...)
			roundTrip(t, s, reqHeaders(hdrs(false, kv...), nil))
			body := `{"model":"` + tt.model + `","messages":[{"role":"user","content":` + strconv.Quote(tt.content) + `}]}`
			resp := roundTrip(t, s, reqBody(body))
			var got string
			if ir := resp.GetImmediateResponse(); ir != nil {
				got = strconv.Itoa(int(ir.Status.Code)) + " " + gjson.GetBytes(ir.Body, "error.code").String()
			} else {
				d := decided(resp)
				got = d[KeyPool] + " " + d[KeyRoute] + " " + d[KeyClass] + " " + d[KeyTarget]
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
