package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeopenai"
	"github.com/llmproc/llmproc/e2e/redisserver"
	"github.com/llmproc/llmproc/e2e/stack"
)

const budgetConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 0}
backends:
  - {name: primary, schema: openai, url: "%s", credential: {env: PRIMARY_KEY}}
models:
  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60, cached_input: 0.075}}
pools:
  - {name: cheap, backends: [{backend: primary}]}
cache: {mode: "off"}
%s`

func startBudget(t *testing.T, provider *fakeopenai.Server, rules string) *env {
	t.Helper()
	st, accessLog, log := startStack(t, fmt.Sprintf(budgetConfig, provider.URL(), rules), map[string]string{"PRIMARY_KEY": "sk-primary"})
	return &env{Stack: st, accessLog: accessLog, log: log}
}

func budgetReq(stream bool) string {
	return fmt.Sprintf(`{"model":"gpt-4o-mini","max_tokens":100,"stream":%v,"messages":[{"role":"user","content":"Count to three."}]}`, stream)
}

func TestBudgetAndRateLimit(t *testing.T) {
	provider := fakeopenai.New(fakeopenai.Options{Default: fakeopenai.Behaviour{Usage: fakeopenai.Usage{Prompt: 1000, Completion: 100}}})
	t.Cleanup(func() { provider.Close() })
	// One request costs 1000×0.15 + 100×0.60 = 210 µ$; its worst case (about
	// 30 input tokens + 100 output) is about 65 µ$. A 500 µ$ daily budget
	// lets requests through while spend is under it.
	e := startBudget(t, provider, `
identity: {allow_client_tenant: true} # the tenant header as sent: a test
budgets:
  - {name: daily, scope: tenant, window: day, limit_usd: "0.0005"}
rate_limits:
  - {name: team-b-rpm, tenants: [team-b], rpm: 2}
budget_store: {tenant_header: x-tenant}
metrics: {tenants: [team-a]}
`)
	codes := map[int]int{}
	var last result
	for range 4 {
		last = e.post(t, budgetReq(false), "x-tenant", "team-a")
		codes[last.status]++
	}
	if codes[200] != 3 || codes[429] != 1 {
		t.Fatalf("statuses %v, want three 200 then a 429", codes)
	}
	wantOpenAIError(t, last, 429, "budget_exceeded")
	if ra, err := strconv.Atoi(last.header.Get("retry-after")); err != nil || ra <= 0 {
		t.Errorf("retry-after %q", last.header.Get("retry-after"))
	}
	if len(provider.Requests()) != 3 {
		t.Errorf("provider saw %d requests", len(provider.Requests()))
	}
	// A client error is never retried, so its reservation is given back:
	// ten 400s in a row do not use up team-c's budget.
	provider.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Status: 400, ErrorMessage: "bad request"}
	})
	for i := range 10 {
		if r := e.post(t, budgetReq(false), "x-tenant", "team-c"); r.status != 400 {
			t.Fatalf("team-c request %d: %d %s", i, r.status, r.body)
		}
	}
	// A 503 on the last try Envoy makes (num_retries is 0 here, and Envoy
	// sends x-envoy-attempt-count) ends the request: released too.
	provider.Script(func(fakeopenai.Request) fakeopenai.Behaviour {
		return fakeopenai.Behaviour{Status: 503, ErrorMessage: "overloaded"}
	})
	for i := range 10 {
		if r := e.post(t, budgetReq(false), "x-tenant", "team-c"); r.status != 503 {
			t.Fatalf("team-c 503 request %d: %d %s", i, r.status, r.body)
		}
	}
	provider.Script(nil)
	if r := e.post(t, budgetReq(false), "x-tenant", "team-c"); r.status != 200 {
		t.Fatalf("after released reservations: %d %s", r.status, r.body)
	}
	// Another tenant has its own budget; its rate limit (2 a minute) binds first.
	for i := range 2 {
		if r := e.post(t, budgetReq(false), "x-tenant", "team-b"); r.status != 200 {
			t.Fatalf("team-b request %d: %d %s", i, r.status, r.body)
		}
	}
	r := e.post(t, budgetReq(false), "x-tenant", "team-b")
	wantOpenAIError(t, r, 429, "rate_limit_exceeded")
	// Cost is labelled by tenant, bounded: listed tenants by name, the rest "other".
	m := e.metrics(t)
	if a := sum(m["llmproc_cost_usd_total"], map[string]string{"tenant": "team-a"}); a != float64(3*210_000_000)/1e12 {
		t.Errorf("team-a cost %v", a)
	}
	if o := sum(m["llmproc_cost_usd_total"], map[string]string{"tenant": "other"}); o == 0 {
		t.Error("no cost labelled other")
	}
	if gjson.GetBytes(r.body, "error.message").String() == "" || r.header.Get("retry-after") == "" {
		t.Errorf("rate limit answer %s, retry-after %q", r.body, r.header.Get("retry-after"))
	}
}

// TestBudgetSharedAcrossReplicas is the proof: three llmproc processes share
// one Redis and one budget under concurrent streaming load; the settled
// spend never exceeds the limit by more than one request's reservation, and
// the summed cost equals provider usage times prices exactly.
func TestBudgetSharedAcrossReplicas(t *testing.T) {
	redis := redisserver.Start(t)
	// Usage within the worst case llmproc reserves (about 30 input tokens
	// estimated from the body, max_tokens 100 output).
	provider := fakeopenai.New(fakeopenai.Options{Default: fakeopenai.Behaviour{Usage: fakeopenai.Usage{Prompt: 20, Completion: 100}}})
	t.Cleanup(func() { provider.Close() })
	rules := fmt.Sprintf(`
budgets:
  - {name: shared, scope: global, window: day, limit_usd: "0.001"}
budget_store: {redis: {addr: %q, timeout: 500ms}, on_error: closed}
`, redis.Addr())
	// Three llmproc processes (the binary, started as children), each with
	// Envoy in front, sharing the one Redis.
	bin := buildLLMProc(t)
	var replicas []*env
	for range 3 {
		cfg := strings.Replace(fmt.Sprintf(budgetConfig, provider.URL(), rules),
			`listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}`,
			fmt.Sprintf(`listen: {grpc: %q, http: %q}`, freeAddr(t), freeAddr(t)), 1)
		path := filepath.Join(t.TempDir(), "llmproc.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		log, accessLog := &syncBuffer{}, &syncBuffer{}
		st, err := stack.Start(context.Background(), stack.Options{ConfigPath: path, LLMProcBin: bin,
			LLMProcEnv: append(os.Environ(), "PRIMARY_KEY=sk-primary"), LLMProcLog: log, AccessLog: accessLog})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := st.Close(); err != nil {
				t.Errorf("stack close: %v", err)
			}
			if t.Failed() {
				t.Logf("llmproc log:\n%s", log.String())
			}
		})
		replicas = append(replicas, &env{Stack: st, accessLog: accessLog, log: log})
	}

	const perRequestPico = 20*150_000 + 100*600_000 // 63,000,000 pico-dollars
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := replicas[i%3].post(t, budgetReq(true))
			switch r.status {
			case http.StatusOK:
				ok.Add(1)
			case http.StatusTooManyRequests:
				refused.Add(1)
			default:
				t.Errorf("status %d: %s", r.status, r.body)
			}
		}()
	}
	wg.Wait()
	if ok.Load() == 0 || refused.Load() == 0 {
		t.Fatalf("ok %d, refused %d: the budget did not bind", ok.Load(), refused.Load())
	}
	spent := ok.Load() * perRequestPico
	if limit := int64(1_000_000_000); spent > limit+perRequestPico {
		t.Errorf("settled spend %d pico-dollars exceeds the limit %d by more than one request", spent, limit)
	}
	// The gauges read the shared counter: every replica reports the same.
	for _, r := range replicas {
		m := r.metrics(t)
		spentUSD := sum(m["llmproc_budget_spent_usd"], map[string]string{"budget": "shared"})
		if lim := sum(m["llmproc_budget_limit_usd"], map[string]string{"budget": "shared"}); lim != 0.001 {
			t.Errorf("llmproc_budget_limit_usd = %v", lim)
		}
		if spentUSD != float64(spent)/1e12 {
			t.Errorf("llmproc_budget_spent_usd = %v, want %v", spentUSD, float64(spent)/1e12)
		}
	}
	var total float64
	for _, r := range replicas {
		m := r.metricsWhen(t, func(map[string][]sample) bool { return true })
		total += sum(m["llmproc_cost_usd_total"], nil)
	}
	if want := float64(spent) / 1e12; fmt.Sprintf("%.12f", total) != fmt.Sprintf("%.12f", want) {
		t.Errorf("llmproc_cost_usd_total across replicas = %.12f, want %.12f (%d answers)", total, want, ok.Load())
	}
}

// buildLLMProc builds the llmproc binary once per test binary.
var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "llmproc-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "llmproc")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/llmproc").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func buildLLMProc(t *testing.T) string {
	t.Helper()
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// freeAddr is a free loopback address for a child process to listen on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// faultConfig is one pool of one backend at url, tried twice (num_retries 1)
// with a short per-try timeout, under a global budget that holds one
// request's worst case (about 64.5 µ$) but not two.
const faultConfig = `
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 1, per_try_timeout: 300ms}
backends:
  - {name: primary, schema: openai, url: "%s", credential: {env: PRIMARY_KEY}}
models:
  - {name: gpt-4o-mini, aliases: [mini], pool: cheap, price: {input: 0.15, output: 0.60}}
pools:
  - {name: cheap, backends: [{backend: primary}]}
cache: {mode: "off"}
budgets:
  - {name: global, scope: global, window: month, limit_usd: "0.0001"}
`

// faultyProvider listens on loopback and treats every connection with
// fault: "reset" closes it with an RST as soon as the request arrives
// (reset before response headers), "stall" reads the request and never
// answers (the per-try timeout fires).
func faultyProvider(t *testing.T, fault string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				buf := make([]byte, 4096)
				_, _ = c.Read(buf)
				if fault == "reset" {
					_ = c.(*net.TCPConn).SetLinger(0)
					_ = c.Close()
					return
				}
				_, _ = io.Copy(io.Discard, c) // stall until llmproc's side gives up
				_ = c.Close()
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// TestBudgetReleasedWhenNoProviderAnswers: connect failures, resets before
// response headers and per-try timeouts end with no provider having served
// the request; on the last try the config allows, the reservation is given
// back. Before, it stayed held for the window (a month here): the second
// failing request already got 429 and the budget stayed spent.
func TestBudgetReleasedWhenNoProviderAnswers(t *testing.T) {
	for _, fault := range []string{"connect", "reset", "stall"} {
		t.Run(fault, func(t *testing.T) {
			url := "http://" + freeAddr(t) // nothing listens: connect failure
			if fault != "connect" {
				url = faultyProvider(t, fault)
			}
			cfg := fmt.Sprintf(faultConfig, url)
			if fault != "stall" {
				// Only the stall needs the per-try timeout. Under load a
				// short one can fire before a retry's upstream stream
				// reaches llmproc (Envoy's per-try timer runs alongside the
				// upstream filters); then that attempt cannot end the
				// reservation, and the first attempt's grace (longer than
				// this test waits) releases it.
				cfg = strings.Replace(cfg, "per_try_timeout: 300ms", "per_try_timeout: 10s", 1)
			}
			st, accessLog, log := startStack(t, cfg, map[string]string{"PRIMARY_KEY": "sk-primary"})
			e := &env{Stack: st, accessLog: accessLog, log: log}
			const requests = 4
			ended := func(m map[string][]sample, result string) float64 {
				return sum(m["llmproc_budget_requests_total"], map[string]string{"result": result})
			}
			for i := range requests {
				r := e.post(t, budgetReq(false))
				if r.status < 500 {
					t.Fatalf("request %d: %d %s, want a 5xx (no provider answered); budget results %v", i, r.status, r.body, e.metrics(t)["llmproc_budget_requests_total"])
				}
				// The last attempt's stream ends just after the client has
				// its answer (Envoy closes it when the attempt is destroyed),
				// and the first attempt's may end after it.
				e.metricsWhen(t, func(m map[string][]sample) bool {
					return ended(m, "released") == float64(i+1) && ended(m, "awaiting_retry") == float64(i+1)
				})
			}
			// A scrape collects its metrics concurrently (the Prometheus
			// registry's Gather), so one scrape may read the spent gauge
			// before a release and its counter after it. llmproc counts a
			// step once the store has it: a scrape begun after the one
			// that counted every release reads the store after them.
			m := e.metrics(t)
			if n := ended(m, "released"); n != requests {
				t.Errorf("%v reservations released, want %d", n, requests)
			}
			if n := ended(m, "awaiting_retry"); n != requests {
				t.Errorf("%v first tries awaiting their retry, want %d", n, requests)
			}
			if spent := sum(m["llmproc_budget_spent_usd"], map[string]string{"budget": "global"}); spent != 0 {
				t.Errorf("global budget spent %v USD after requests no provider answered", spent)
			}
		})
	}
}

// TestBudgetNoUsageSettlesAtEstimate: a 2xx answer without usage is settled
// at the token estimate (request bytes and answer text, four bytes a token)
// and marked; before, its worst case stayed counted for the window.
func TestBudgetNoUsageSettlesAtEstimate(t *testing.T) {
	provider := fakeopenai.New(fakeopenai.Options{Default: fakeopenai.Behaviour{
		Body: []byte(`{"id":"x","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"one two three"},"finish_reason":"stop"}]}`),
	}})
	t.Cleanup(func() { provider.Close() })
	st, accessLog, log := startStack(t, fmt.Sprintf(faultConfig, provider.URL()), map[string]string{"PRIMARY_KEY": "sk-primary"})
	e := &env{Stack: st, accessLog: accessLog, log: log}
	// The alias counts against the model's budget like the model's name.
	body := strings.Replace(budgetReq(false), `"gpt-4o-mini"`, `"mini"`, 1)
	const requests = 5
	for i := range requests {
		if r := e.post(t, body); r.status != 200 {
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
	}
	m := e.metrics(t)
	if n := sum(m["llmproc_budget_requests_total"], map[string]string{"result": "estimated"}); n != requests {
		t.Errorf("%v answers settled at the estimate, want %d", n, requests)
	}
	// Input: the body's bytes / 4; output: "one two three" (13 chars) → 4.
	in := int64((len(body) + 3) / 4)
	wantPico := requests * (in*150_000 + 4*600_000)
	if spent := sum(m["llmproc_budget_spent_usd"], map[string]string{"budget": "global"}); fmt.Sprintf("%.12f", spent) != fmt.Sprintf("%.12f", float64(wantPico)/1e12) {
		t.Errorf("global budget spent %.12f USD, want the estimates' %.12f", spent, float64(wantPico)/1e12)
	}
	if !strings.Contains(accessLog.String(), `"budget":"estimated"`) {
		t.Errorf("no access-log line marks the estimate:\n%s", accessLog.String())
	}
}

// TestBudgetRefusesOverflowingWorstCase: max_tokens 4611686018428 at $0.60/M
// is beyond int64 pico-dollars; it used to wrap to a small number and pass.
func TestBudgetRefusesOverflowingWorstCase(t *testing.T) {
	provider := fakeopenai.New(fakeopenai.Options{})
	t.Cleanup(func() { provider.Close() })
	st, accessLog, log := startStack(t, fmt.Sprintf(faultConfig, provider.URL()), map[string]string{"PRIMARY_KEY": "sk-primary"})
	e := &env{Stack: st, accessLog: accessLog, log: log}
	for _, mt := range []string{"4611686018428", "15372286728091294"} {
		r := e.post(t, `{"model":"gpt-4o-mini","max_tokens":`+mt+`,"messages":[{"role":"user","content":"hi"}]}`)
		wantOpenAIError(t, r, 429, "budget_exceeded")
	}
	if n := len(provider.Requests()); n != 0 {
		t.Errorf("the provider saw %d requests", n)
	}
}

// TestBudgetReleasedWhenLLMProcRefuses: requests the upstream role refuses
// (a parameter the backend cannot take, /v1/messages with a document for an
// OpenAI backend) reach no provider; their reservation is given back.
func TestBudgetReleasedWhenLLMProcRefuses(t *testing.T) {
	provider := fakeopenai.New(fakeopenai.Options{})
	t.Cleanup(func() { provider.Close() })
	cfg := strings.Replace(fmt.Sprintf(faultConfig, provider.URL()), `
models:`, `
  - {name: claude, schema: anthropic, url: "http://`+freeAddr(t)+`", credential: {env: PRIMARY_KEY}}
models:
  - {name: claude-haiku, pool: claude, price: {input: 0.15, output: 0.60}}`, 1)
	cfg = strings.Replace(cfg, `
cache:`, `
  - {name: claude, backends: [{backend: claude}]}
cache:`, 1)
	st, accessLog, log := startStack(t, cfg, map[string]string{"PRIMARY_KEY": "sk-primary"})
	e := &env{Stack: st, accessLog: accessLog, log: log}
	messages := func(body string) result {
		req, err := http.NewRequest(http.MethodPost, e.URL()+"/v1/messages", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("content-type", "application/json")
		return do(t, req)
	}
	refusals := []func() result{
		func() result {
			return e.post(t, `{"model":"claude-haiku","max_tokens":100,"logprobs":true,"messages":[{"role":"user","content":"hi"}]}`)
		},
		func() result {
			return messages(`{"model":"gpt-4o-mini","max_tokens":100,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"x"}}]}]}`)
		},
	}
	for i := range 4 {
		if r := refusals[i%2](); r.status != 400 {
			t.Fatalf("request %d: %d %s, want 400", i, r.status, r.body)
		}
		m := e.metricsWhen(t, func(m map[string][]sample) bool {
			return sum(m["llmproc_budget_requests_total"], map[string]string{"result": "released"}) == float64(i+1)
		})
		if n := sum(m["llmproc_budget_requests_total"], map[string]string{"result": "released"}); n != float64(i+1) {
			t.Fatalf("after request %d: %v released", i, n)
		}
	}
	if n := len(provider.Requests()); n != 0 {
		t.Errorf("the provider saw %d requests", n)
	}
	if r := e.post(t, budgetReq(false)); r.status != 200 {
		t.Fatalf("after the refusals: %d %s", r.status, r.body)
	}
}
