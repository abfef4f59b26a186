package extproc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/budget"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/translate"
	"github.com/llmproc/llmproc/filter/usage"
)

// The back-off of the retry policy the envoy package renders: its
// exponential maximum and the maximum of the rate-limited back-off (a
// retry-after above it is ignored). A failed attempt's reservation waits
// that long, and more, for the next attempt.
const (
	RetryMaxBackOff       = 2 * time.Second
	RateLimitedMaxBackOff = 10 * time.Second
)

// Budgets is what the server needs to apply budgets and rate limits.
type Budgets struct {
	Engine *budget.Engine
	// FailClosed refuses requests when the store fails (budget_store.on_error: closed).
	FailClosed bool
	// DefaultMaxTokens bounds the worst case of a request without max_tokens.
	DefaultMaxTokens int64
}

// Lifetimes derives how long a reservation lives without news from the
// route's timeouts (envoy.per_try_timeout, idle_timeout, message_timeout).
// An attempt waits at most per_try_timeout for response headers, a stream
// never goes idle_timeout without a byte, and the upstream role renews the
// reservation while bytes flow (every Stream/2), so a live request never
// outlives its reservation; the slack covers llmproc's own replies.
func Lifetimes(e config.Envoy) budget.Lifetimes {
	slack := e.MessageTimeout.Duration + 5*time.Second
	idle := e.IdleTimeout.Duration
	return budget.Lifetimes{
		Hold:   e.PerTryTimeout.Duration + 2*idle + slack,
		Stream: 2*idle + slack,
		Grace:  RateLimitedMaxBackOff + slack,
	}
}

// reserve runs the budgets and rate limits for a request that will reach a
// provider: the worst case (estimated input plus the output cap, at the
// model's prices) must fit every rule. It returns the reservation for the
// upstream role (KeyReservation: base64url JSON, so whichever replica serves
// an attempt settles it; "" when no rule applies), or the 429 (or 503 when
// the store is down and budgets fail closed). Budgets count the registry
// model (an alias or a rule's target resolved).
func (r *router) reserve(d config.Decision, model string, req chatRequest, body []byte) (string, error) {
	b := r.s.budgets
	if b == nil {
		return "", nil
	}
	in := estimateTokens(len(body))
	out := req.maxTokens.Int()
	if mc := req.maxCompletionTokens; mc.Exists() { // checkBody read it
		out = mc.Int()
	}
	switch r.endpoint {
	case translate.EndpointResponses:
		out = req.maxOutputTokens.Int()
	case translate.EndpointEmbeddings:
		out = -1 // embeddings generate no tokens
	}
	if isGeminiEmbed(r.geminiMethod) {
		out = -1
	}
	if out == 0 {
		out = b.DefaultMaxTokens
	}
	out = max(out, 0)
	var pico int64
	if d.Model != nil {
		model = d.Model.Name
		// Saturates instead of wrapping: a worst case beyond int64 fits no
		// USD budget.
		pico = usage.Cost(usage.Usage{Input: in, Output: out}, d.Model.Price)
	}
	res, err := b.Engine.Reserve(r.ctx, budget.Request{Tenant: r.tenant, Model: model, WorstPico: pico, WorstTokens: usage.AddSat(in, out),
		Key: r.keyLimits()})
	var ex *budget.Exceeded
	switch {
	case errors.As(err, &ex):
		code, typ, what := "budget_exceeded", apierr.TypeRateLimit, "Budget"
		if ex.RateLimit {
			code, what = "rate_limit_exceeded", "Rate limit"
		}
		r.s.budgetResult(code)
		which := what + " " + quote(ex.Budget)
		if ex.ClientKey != "" { // the key's own: its id, never the key
			which = what + " of API key `" + ex.ClientKey + "` (the key's own limit)"
		}
		return "", &apierr.Error{Status: http.StatusTooManyRequests, Type: typ, Code: code,
			Message:    which + " is exhausted; it resets at " + ex.ResetAt.UTC().Format(time.RFC3339) + ".",
			RetryAfter: time.Until(ex.ResetAt)}
	case err != nil:
		// A Reserve whose answer was lost is released by the store, so the
		// request is never charged for a reservation it did not get.
		r.s.budgetResult("store_error")
		if b.FailClosed {
			return "", apierr.New(http.StatusServiceUnavailable, apierr.TypeServer, "budget_unavailable",
				"Budgets cannot be checked right now; the request was not sent.")
		}
		r.s.log.Warn("budget store failed; letting the request through (budget_store.on_error: open)", "request_id", r.id, "err", err)
		return "", nil
	}
	r.s.budgetResult("reserved")
	if res.ID == "" {
		return "", nil // no rule applies
	}
	enc, err := json.Marshal(res)
	if err != nil {
		return "", apierr.Internal(err)
	}
	return base64.RawURLEncoding.EncodeToString(enc), nil
}

// attemptBudget is one upstream attempt's part in its request's
// reservation. The attempt ends it exactly once (end): settled when the
// answer was 2xx, released when the request failed for good, or left to
// the next attempt (Await), which holds it when it starts.
type attemptBudget struct {
	res   budget.Reservation
	held  time.Time // the last Hold (or the attempt's start)
	ended bool
}

// beginBudget reads the router's reservation for this attempt; a retry
// holds it, so a failed attempt before it does not release it.
func (u *upstream) beginBudget(h string) {
	b := u.s.budgets
	if b == nil || h == "" {
		return
	}
	raw, err := base64.RawURLEncoding.DecodeString(h)
	var res budget.Reservation
	if err == nil {
		err = json.Unmarshal(raw, &res)
	}
	if err != nil || res.ID == "" {
		u.s.log.Warn("unreadable budget reservation header", "request_id", u.id, "err", err)
		return
	}
	u.budget = &attemptBudget{res: res, held: u.s.now()}
	if u.attempt > 1 {
		u.budgetCall("hold", b.Engine.Hold(context.Background(), res, u.attempt, b.Engine.Lifetimes().Hold))
	}
}

// renewBudget keeps a streaming answer's reservation alive: Hold again
// once half of Lifetimes.Stream has passed since the last.
func (u *upstream) renewBudget() {
	a := u.budget
	if a == nil || a.ended || u.status < 200 || u.status >= 300 {
		return
	}
	e := u.s.budgets.Engine
	now := u.s.now()
	life := e.Lifetimes().Stream
	if now.Sub(a.held) < life/2 {
		return
	}
	err := e.Hold(context.Background(), a.res, u.attempt, life)
	if err == nil {
		a.held = now
	}
	u.budgetCall("hold", err)
}

// endBudget ends the attempt's part and returns what became of the
// reservation (the "budget" access-log field): "settled" with the reported
// usage priced at the model that served it; "estimated" for a 2xx answer
// without usage, settled at the token estimates; "released" when the
// request failed for good (a status Envoy does not retry, or the last try
// the config allows); "awaiting_retry" for a failed attempt Envoy retries.
func (u *upstream) endBudget(res usage.Result, cost, estCost, estTokens int64) string {
	a := u.budget
	if a == nil || a.ended {
		return ""
	}
	a.ended = true
	e := u.s.budgets.Engine
	ctx := context.Background()
	switch {
	case u.status >= 200 && u.status < 300 && res.Known:
		u.budgetCall("settled", e.Settle(ctx, a.res, cost, usage.AddSat(res.Usage.Input, res.Usage.Output)))
		return "settled"
	case u.status >= 200 && u.status < 300:
		u.budgetCall("estimated", e.Settle(ctx, a.res, estCost, estTokens))
		return "estimated"
	case u.lastAttempt() || u.status != 0 && !retriableStatus(u.status):
		// No attempt follows: nothing was served.
		u.budgetCall("released", e.Release(ctx, a.res))
		return "released"
	default:
		// Envoy retries connect failures, resets and per-try timeouts
		// (status 0) and the retriable statuses; the retry holds the
		// reservation, or it is released after the grace.
		u.budgetCall("awaiting_retry", e.Await(ctx, a.res, u.attempt))
		return "awaiting_retry"
	}
}

// budgetCall counts a lifecycle step, or its failure.
func (u *upstream) budgetCall(result string, err error) {
	switch {
	case err == nil:
		if result != "hold" {
			u.s.budgetResult(result)
		}
	case errors.Is(err, budget.ErrUnknownReservation):
		u.s.budgetResult("unknown_reservation")
	default:
		u.s.budgetResult("settle_error")
		u.s.log.Warn("budget store failed", "request_id", u.id, "step", result, "err", err)
	}
}

// lastAttempt reports whether Envoy will not retry after this attempt:
// x-envoy-attempt-count (which Envoy sets, overwriting any client value) is
// envoy.num_retries + 1. Client x-envoy-max-retries headers are stripped at
// the edge, so the config is the try budget.
func (u *upstream) lastAttempt() bool {
	n := u.rt.Source.Envoy.NumRetries
	return u.attempt > 0 && n != nil && u.attempt >= 1+int(*n)
}

func (s *Server) budgetResult(result string) {
	if s.metrics != nil {
		s.metrics.BudgetResult(result)
	}
}

func quote(s string) string { return "\"" + strings.ReplaceAll(s, "\"", "'") + "\"" }
