package extproc

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/llmproc/llmproc/filter/budget"
	"github.com/llmproc/llmproc/filter/config"
)

// budgetSoak runs TestBudgetSoak for this long (the default, 0, runs a
// quick 2,000 requests):
//
//	go test ./filter/extproc -run TestBudgetSoak -budget-soak 90s -v
var budgetSoak = flag.Duration("budget-soak", 0, "run TestBudgetSoak for this long")

// budgetServer serves testConfig (num_retries 2: three tries) with one global
// monthly budget in a memory store reading *clock.
func budgetServer(t testing.TB, limit string, clock *time.Time) (*Server, *config.Runtime, *budget.Memory) {
	rt := testRuntime(t, 1<<16)
	lim, err := config.ParseUSD(limit)
	if err != nil {
		t.Fatal(err)
	}
	m := budget.NewMemory(func() time.Time { return *clock })
	eng, err := budget.NewEngine(budget.Options{Store: m, Lifetimes: Lifetimes(rt.Source.Envoy),
		Budgets: []config.Budget{{Name: "g", Scope: "global", Window: "month", LimitUSD: lim}}})
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{Config: fixedRuntime{rt}, Budgets: &Budgets{Engine: eng, DefaultMaxTokens: 100},
		Now: func() time.Time { return *clock }}), rt, m
}

// routeForBudget runs the router role and returns the reservation it hands
// the upstream role.
func routeForBudget(t testing.TB, s *Server, rt *config.Runtime, body string) string {
	r := &router{s: s, rt: rt, ctx: context.Background()}
	if _, err := r.requestHeaders(nil, hdrs(false, ":method", "POST", ":path", "/v1/chat/completions")); err != nil {
		t.Fatal(err)
	}
	resp, err := r.requestBody(reqBody(body).GetRequestBody())
	if err != nil {
		t.Fatal(err)
	}
	return decided(resp)[KeyReservation]
}

// try is one upstream attempt and how it ends: status 0 ends before
// response headers (connect failure, reset, per-try timeout); refuse sends a
// body llmproc refuses.
type try struct {
	status int
	answer string
	refuse bool
}

func runTry(t testing.TB, s *Server, rt *config.Runtime, res string, n int, body string, a try) {
	u := &upstream{s: s, rt: rt}
	client := clientOpenAI
	if a.refuse {
		// A document block has no OpenAI equivalent: the upstream role refuses it.
		client, body = clientAnthropic, `{"model":"gpt-4o-mini","max_tokens":100,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"x"}}]}]}`
	}
	req := withDecisions(reqHeaders(hdrs(false, ":method", "POST", ":path", "/v1/chat/completions",
		"x-envoy-attempt-count", strconv.Itoa(n)), attrsPrimary), map[string]string{KeyClient: client, KeyReservation: res})
	if _, err := u.requestHeaders(req, req.GetRequestHeaders()); err != nil {
		t.Fatal(err)
	}
	_, err := u.requestBody(reqBody(body).GetRequestBody())
	if err != nil || a.status == 0 {
		u.done(errors.New("stream ended"))
		return
	}
	ct := "application/json"
	if _, err := u.responseHeaders(respHeaders(false, ":status", strconv.Itoa(a.status), "content-type", ct).GetResponseHeaders()); err != nil {
		t.Fatal(err)
	}
	if _, err := u.responseBody(respBody(a.answer, true).GetResponseBody()); err != nil {
		t.Fatal(err)
	}
	u.done(nil)
}

const (
	budgetBody  = `{"model":"mini","max_tokens":100,"messages":[{"role":"user","content":"Count to three."}]}`
	withUsage   = `{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"1 2 3"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`
	withoutUse  = `{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"1 2 3"},"finish_reason":"stop"}]}`
	errorAnswer = `{"error":{"message":"overloaded","type":"server_error"}}`
)

// TestBudgetEveryOutcome: whatever happens to a request's attempts, its
// reservation ends once and the store holds nothing afterwards.
func TestBudgetEveryOutcome(t *testing.T) {
	usagePico := int64(10*150_000 + 5*600_000)
	estPico := int64((len(budgetBody)+3)/4*150_000 + 2*600_000) // "1 2 3": 5 bytes, 2 tokens
	tests := []struct {
		name     string
		attempts []try
		want     int64 // pico-dollars counted
		grace    bool  // ends only after the failed attempt's grace
	}{
		{"usage", []try{{status: 200, answer: withUsage}}, usagePico, false},
		{"no usage: the estimate", []try{{status: 200, answer: withoutUse}}, estPico, false},
		{"client error", []try{{status: 400, answer: errorAnswer}}, 0, false},
		{"llmproc refuses", []try{{refuse: true}}, 0, false},
		{"503 then usage", []try{{status: 503, answer: errorAnswer}, {status: 200, answer: withUsage}}, usagePico, false},
		{"three connect failures", []try{{}, {}, {}}, 0, false},
		{"three 503s", []try{{status: 503, answer: errorAnswer}, {status: 503, answer: errorAnswer}, {status: 503, answer: errorAnswer}}, 0, false},
		{"reset, then the client left", []try{{}}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Now()
			s, rt, m := budgetServer(t, "1", &now)
			res := routeForBudget(t, s, rt, budgetBody)
			if res == "" {
				t.Fatal("no reservation")
			}
			for i, a := range tt.attempts {
				runTry(t, s, rt, res, i+1, budgetBody, a)
			}
			if tt.grace {
				if held, _ := m.Len(); held != 1 {
					t.Fatalf("%d reservations held while a retry may come, want 1", held)
				}
				now = now.Add(s.budgets.Engine.Lifetimes().Grace + time.Second)
				_ = m.Release(context.Background(), "none") // any call sweeps
			}
			if held, _ := m.Len(); held != 0 {
				t.Fatalf("%d reservations left", held)
			}
			if got := spent(t, s); got != tt.want {
				t.Fatalf("counted %d pico, want %d", got, tt.want)
			}
		})
	}
}

func spent(t testing.TB, s *Server) int64 {
	f := s.budgets.Engine.Figures(context.Background())
	if len(f) != 1 {
		t.Fatalf("figures %+v", f)
	}
	return f[0].SpentPico
}

// TestBudgetSoak: with a month window and answers without usage, the
// memory store does not grow and the heap stays flat; every answer is
// counted at its estimate.
func TestBudgetSoak(t *testing.T) {
	now := time.Now()
	s, rt, m := budgetServer(t, "1000000", &now)
	var ms runtime.MemStats
	heap := func() uint64 { runtime.GC(); runtime.ReadMemStats(&ms); return ms.HeapAlloc }
	one := func() {
		res := routeForBudget(t, s, rt, budgetBody)
		runTry(t, s, rt, res, 1, budgetBody, try{status: 200, answer: withoutUse})
	}
	for range 1000 {
		one()
	}
	base := heap()
	start, n := time.Now(), 0
	for n < 2000 || time.Since(start) < *budgetSoak {
		one()
		n++
	}
	end := heap()
	held, counters := m.Len()
	t.Logf("%d requests in %v; heap after warm-up %d KiB, at the end %d KiB; store: %d reservations, %d counters",
		n, time.Since(start).Round(time.Millisecond), base>>10, end>>10, held, counters)
	if held != 0 || counters != 1 {
		t.Errorf("store holds %d reservations and %d counters, want 0 and 1", held, counters)
	}
	if end > base+4<<20 {
		t.Errorf("heap grew from %d to %d KiB", base>>10, end>>10)
	}
	estPico := int64((len(budgetBody)+3)/4*150_000 + 2*600_000)
	if got, want := spent(t, s), int64(1000+n)*estPico; got != want {
		t.Errorf("counted %d pico, want %d estimates", got, want)
	}
}

// TestBudgetLongStreamRenewed: a stream that flows for longer than a
// reservation's hold (bytes never idle_timeout apart) keeps its reservation
// alive and is settled at its usage, not left at its worst case.
func TestBudgetLongStreamRenewed(t *testing.T) {
	now := time.Now()
	s, rt, m := budgetServer(t, "1", &now)
	const body = `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`
	res := routeForBudget(t, s, rt, body)
	u := &upstream{s: s, rt: rt}
	req := withDecisions(reqHeaders(hdrs(false, ":method", "POST", ":path", "/v1/chat/completions",
		"x-envoy-attempt-count", "1"), attrsPrimary), map[string]string{KeyReservation: res})
	if _, err := u.requestHeaders(req, req.GetRequestHeaders()); err != nil {
		t.Fatal(err)
	}
	if _, err := u.requestBody(reqBody(body).GetRequestBody()); err != nil {
		t.Fatal(err)
	}
	if _, err := u.responseHeaders(respHeaders(false, ":status", "200", "content-type", "text/event-stream").GetResponseHeaders()); err != nil {
		t.Fatal(err)
	}
	events := strings.SplitAfter(readTestdata(t, "stream.sse"), "\n\n")
	chunks := append([]string{events[0]}, slices.Repeat([]string{events[1]}, 12)...)
	chunks = append(chunks, events[2:]...)
	gap := rt.Source.Envoy.IdleTimeout.Duration - time.Second
	if total := time.Duration(len(chunks)) * gap; total < 2*s.budgets.Engine.Lifetimes().Hold {
		t.Fatalf("the stream lasts %v, not past the hold", total)
	}
	var md *structpb.Struct
	for i, c := range chunks {
		now = now.Add(gap)
		resp, err := u.responseBody(respBody(c, i == len(chunks)-1).GetResponseBody())
		if err != nil {
			t.Fatal(err)
		}
		md = resp.GetDynamicMetadata()
	}
	if got := md.GetFields()["llmproc"].GetStructValue().GetFields()["budget"].GetStringValue(); got != "settled" {
		t.Fatalf("budget %q, want settled", got)
	}
	// 176 uncached + 1024 cached input tokens and 34 output tokens.
	if got, want := spent(t, s), int64(176*150_000+1024*75_000+34*600_000); got != want {
		t.Fatalf("counted %d pico, want the usage's %d", got, want)
	}
	if held, _ := m.Len(); held != 0 {
		t.Fatalf("%d reservations left", held)
	}
}

// TestBudgetKeysUseTheRegistryModel: a model's budget counts requests for
// its alias and for a routing-only name a rule sends to it; before, each
// name got its own counter or skipped the budget.
func TestBudgetKeysUseTheRegistryModel(t *testing.T) {
	rt := compileTest(t, fmt.Sprintf(testConfig, 1<<16)+"  - {name: smart, match: {model: smart}, model: gpt-4o-mini}\n")
	eng, err := budget.NewEngine(budget.Options{Store: budget.NewMemory(nil), Budgets: []config.Budget{
		{Name: "m", Scope: "tenant_model", Window: "day", LimitTokens: 150, Models: []string{"mini"}},
	}, ModelName: func(n string) string {
		if m, ok := rt.Model(n); ok {
			return m.Name
		}
		return n
	}})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Config: fixedRuntime{rt}, Budgets: &Budgets{Engine: eng, DefaultMaxTokens: 100}})
	for i, model := range []string{"mini", "smart", "gpt-4o-mini"} {
		r := &router{s: s, rt: rt, ctx: context.Background()}
		if _, err := r.requestHeaders(nil, hdrs(false, ":method", "POST", ":path", "/v1/chat/completions")); err != nil {
			t.Fatal(err)
		}
		_, err := r.requestBody(reqBody(`{"model":"` + model + `","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`).GetRequestBody())
		if got := err != nil && strings.Contains(err.Error(), "budget_exceeded"); got != (i > 0) {
			t.Fatalf("request %d for %q: %v (budget exceeded: %v, want %v)", i, model, err, got, i > 0)
		}
	}
}
