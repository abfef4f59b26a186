package extproc

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/budget"
	"github.com/llmproc/llmproc/filter/identity"
)

const keyAccessConfig = `
limits: {max_request_bytes: 1048576}
identity:
  source: client_keys
  keys_file: %s
  tenants:
    - {name: a, models: ["gpt-*", "claude-*"], tools: ["get_*", "send_*"], apis: [chat, messages, embeddings]}
backends:
  - {name: primary, schema: openai, url: "http://127.0.0.1:1", credential: {env: KEY_A}}
models:
  - {name: gpt-4o-mini, aliases: [mini], pool: cheap, price: {input: 0.15, output: 0.60}}
  - {name: gpt-4o, pool: cheap, price: {input: 2.5, output: 10}}
  - {name: claude-sonnet-4-5, pool: cheap, price: {input: 3, output: 15}}
  - {name: o3, pool: cheap, price: {input: 2, output: 8}}
pools:
  - {name: cheap, backends: [{backend: primary}]}
`

// A client key's own lists narrow its tenant's: what the tenant refuses is
// refused naming the tenant, what only the key refuses names the key (its
// id) and says it is the key's own limit.
func TestKeyAccessNarrowsTenant(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "keys.json")
	narrow, kn, err := identity.Create(path, identity.Key{Tenant: "a", Models: []string{"gpt-4o*", "o3"}, APIs: []string{"chat"},
		Tools: []string{"get_*"}, MaxRequestBytes: 300}, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	wide, _, _ := identity.Create(path, identity.Key{Tenant: "a"}, now, nil)
	h := newHarnessOpts(t, Options{Config: fixedRuntime{compileTest(t, fmt.Sprintf(keyAccessConfig, path))}, Now: func() time.Time { return now }})
	chat := func(model, extra string) string {
		return `{"model":"` + model + `","max_tokens":8` + extra + `,"messages":[{"role":"user","content":"hi"}]}`
	}
	tool := func(name string) string { return `,"tools":[{"type":"function","function":{"name":"` + name + `"}}]` }
	byKey := "API key `" + kn.ID + "` (the key's own limit)"
	tests := []struct {
		name, key, path, body string
		status                int
		code, names           string // error.code (OpenAI) or error.type (Anthropic); what the message names
	}{
		{"key's model", narrow, "/v1/chat/completions", chat("gpt-4o-mini", ""), 0, "", ""},
		{"key's model by alias", narrow, "/v1/chat/completions", chat("mini", ""), 0, "", ""},
		{"tenant refuses, named", narrow, "/v1/chat/completions", chat("o3", ""), 403, "model_not_allowed", "tenant `a`"},
		{"key refuses a model its tenant allows", narrow, "/v1/chat/completions", chat("claude-sonnet-4-5", ""), 403, "model_not_allowed", byKey},
		{"the tenant's other key may", wide, "/v1/chat/completions", chat("claude-sonnet-4-5", ""), 0, "", ""},
		{"key refuses an API its tenant allows", narrow, "/v1/messages", chat("gpt-4o-mini", ""), 403, "permission_error", byKey},
		{"tenant refuses an API", wide, "/v1/responses", `{"model":"gpt-4o-mini","input":"hi"}`, 403, "api_not_allowed", "tenant `a`"},
		{"key's tool", narrow, "/v1/chat/completions", chat("gpt-4o", tool("get_weather")), 0, "", ""},
		{"key refuses a tool its tenant allows", narrow, "/v1/chat/completions", chat("gpt-4o", tool("send_mail")), 403, "tool_not_allowed", byKey},
		{"tenant refuses a tool", narrow, "/v1/chat/completions", chat("gpt-4o", tool("rm_rf")), 403, "tool_not_allowed", "tenant `a`"},
		{"the other key may offer it", wide, "/v1/chat/completions", chat("gpt-4o", tool("send_mail")), 0, "", ""},
		{"key's body limit", narrow, "/v1/chat/completions", chat("gpt-4o", `,"user":"`+strings.Repeat("x", 300)+`"`), 413, "request_too_large", byKey},
		{"the tenant's body limit for the other key", wide, "/v1/chat/completions", chat("gpt-4o", `,"user":"`+strings.Repeat("x", 300)+`"`), 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, clen := range []bool{false, true} { // the 413 on content-length and on the body
				s := h.stream(RoleRouter)
				kv := []string{":method", "POST", ":path", tt.path, "authorization", "Bearer " + tt.key}
				if clen {
					kv = append(kv, "content-length", strconv.Itoa(len(tt.body)))
				}
				resp := roundTrip(t, s, reqHeaders(hdrs(false, kv...), nil))
				if resp.GetImmediateResponse() == nil {
					resp = roundTrip(t, s, reqBody(tt.body))
				}
				ir := resp.GetImmediateResponse()
				if tt.status == 0 {
					if ir != nil {
						t.Fatalf("refused: %d %s", ir.Status.Code, ir.Body)
					}
					continue
				}
				if ir == nil {
					t.Fatalf("routed, want %d", tt.status)
				}
				code := gjson.GetBytes(ir.Body, "error.code").String()
				if tt.path == "/v1/messages" {
					code = gjson.GetBytes(ir.Body, "error.type").String()
				}
				msg := gjson.GetBytes(ir.Body, "error.message").String()
				if int(ir.Status.Code) != tt.status || code != tt.code || !strings.Contains(msg, tt.names) {
					t.Fatalf("got %d %s, want %d %s naming %s", ir.Status.Code, ir.Body, tt.status, tt.code, tt.names)
				}
				if strings.Contains(string(ir.Body), tt.key) {
					t.Fatalf("the refusal carries the key: %s", ir.Body)
				}
			}
		})
	}
}

// A key's own budget and rate limit are charged on top of its tenant's: the
// key is refused 429 naming its id once its budget is held, while another
// key of the same tenant goes on; the tenant's budget counts both keys.
func TestKeyBudgets(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "keys.json")
	// A request's worst case: about 20 tokens in (80 bytes / 4) and 8 out,
	// at gpt-4o's prices, 50 + 80 = 130 µ$: two fit in 300 µ$, not three.
	capped, kc, err := identity.Create(path, identity.Key{Tenant: "a", Budget: &identity.Budget{Window: "day", LimitUSD: "0.0003"}}, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	rpm, kr, _ := identity.Create(path, identity.Key{Tenant: "a", RateLimit: &identity.RateLimit{RPM: 1}}, now, nil)
	free, _, _ := identity.Create(path, identity.Key{Tenant: "a"}, now, nil)
	rt := compileTest(t, fmt.Sprintf(keyAccessConfig, path)+`
budgets: [{name: tenant-day, scope: tenant, window: day, limit_usd: "0.0012"}]
`)
	mem := budget.NewMemory(func() time.Time { return now })
	eng, err := budget.NewEngine(budget.Options{Store: mem, Budgets: rt.Source.Budgets, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessOpts(t, Options{Config: fixedRuntime{rt}, Budgets: &Budgets{Engine: eng, DefaultMaxTokens: 8}, Now: func() time.Time { return now }})
	const body = `{"model":"gpt-4o","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`
	send := func(key string) (int, string, map[string]string) {
		t.Helper()
		s := h.stream(RoleRouter)
		resp := roundTrip(t, s, reqHeaders(hdrs(false, ":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer "+key), nil))
		if resp.GetImmediateResponse() == nil {
			resp = roundTrip(t, s, reqBody(body))
		}
		if ir := resp.GetImmediateResponse(); ir != nil {
			if strings.Contains(string(ir.Body), key) {
				t.Fatalf("the refusal carries the key: %s", ir.Body)
			}
			return int(ir.Status.Code), string(ir.Body), nil
		}
		return 0, "", decided(resp)
	}
	for i := range 2 {
		if st, b, d := send(capped); st != 0 || d[KeyReservation] == "" {
			t.Fatalf("capped key, request %d: %d %s", i, st, b)
		}
	}
	st, b, _ := send(capped)
	if st != 429 || gjson.Get(b, "error.code").String() != "budget_exceeded" || !strings.Contains(gjson.Get(b, "error.message").String(), "API key `"+kc.ID+"`") {
		t.Fatalf("capped key, third request: %d %s; want 429 budget_exceeded naming key %s", st, b, kc.ID)
	}
	if st, b, _ := send(free); st != 0 {
		t.Fatalf("the tenant's other key: %d %s", st, b)
	}
	if st, b, _ := send(rpm); st != 0 {
		t.Fatalf("rpm key, first request: %d %s", st, b)
	}
	st, b, _ = send(rpm)
	if st != 429 || gjson.Get(b, "error.code").String() != "rate_limit_exceeded" || !strings.Contains(gjson.Get(b, "error.message").String(), "API key `"+kr.ID+"`") {
		t.Fatalf("rpm key, second request: %d %s; want 429 rate_limit_exceeded naming key %s", st, b, kr.ID)
	}
	// The tenant's 1200 µ$ has held 4 × 130: five more fit, whichever key.
	refused := 0
	for range 6 {
		if st, b, _ := send(free); st == 429 {
			if !strings.Contains(b, `\"tenant-day\"`) && !strings.Contains(b, "tenant-day") {
				t.Fatalf("refused by another budget: %s", b)
			}
			refused++
		}
	}
	if refused != 1 {
		t.Fatalf("the tenant budget refused %d of 6 requests after 4 held, want 1 (it counts every key)", refused)
	}
}
