package extproc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/budget"
	"github.com/llmproc/llmproc/filter/config"
)

// HeaderReservation carries the router's budget reservation to every upstream
// attempt (base64url JSON), so whichever replica serves the attempt settles it.
const HeaderReservation = "x-llmproc-reservation"

// Budgets is what the server needs to apply budgets and rate limits.
type Budgets struct {
	Engine *budget.Engine
	// FailClosed refuses requests when the store fails (budget_store.on_error: closed).
	FailClosed bool
	// DefaultMaxTokens bounds the worst case of a request without max_tokens.
	DefaultMaxTokens int64
}

// reserve runs the budgets and rate limits for a request that will reach a
// provider: the worst case (estimated input plus the output cap, at the
// model's prices) must fit every rule. It returns the header for the upstream
// role, or the 429 (or 503 when the store is down and budgets fail closed).
func (r *router) reserve(d config.Decision, model string, req chatRequest, body []byte) (*corev3.HeaderValueOption, error) {
	b := r.s.budgets
	if b == nil {
		return nil, nil
	}
	in := estimateTokens(len(body))
	out := req.maxTokens.Int()
	if mc := gjson.GetBytes(body, "max_completion_tokens"); mc.Exists() {
		out = mc.Int()
	}
	if out <= 0 {
		out = b.DefaultMaxTokens
	}
	var pico int64
	if d.Model != nil {
		p := d.Model.Price
		pico = in*p.Input.PicoPerToken + out*p.Output.PicoPerToken
	}
	res, err := b.Engine.Reserve(r.ctx, budget.Request{Tenant: r.tenant, Model: model, WorstPico: pico, WorstTokens: in + out})
	var ex *budget.Exceeded
	switch {
	case errors.As(err, &ex):
		code, typ, what := "budget_exceeded", apierr.TypeRateLimit, "Budget"
		if ex.RateLimit {
			code, what = "rate_limit_exceeded", "Rate limit"
		}
		r.s.budgetResult(code)
		return nil, &apierr.Error{Status: http.StatusTooManyRequests, Type: typ, Code: code,
			Message:    what + " " + quote(ex.Budget) + " is exhausted; it resets at " + ex.ResetAt.UTC().Format(time.RFC3339) + ".",
			RetryAfter: time.Until(ex.ResetAt)}
	case err != nil:
		r.s.budgetResult("store_error")
		if b.FailClosed {
			return nil, apierr.New(http.StatusServiceUnavailable, apierr.TypeServer, "budget_unavailable",
				"Budgets cannot be checked right now; the request was not sent.")
		}
		r.s.log.Warn("budget store failed; letting the request through (budget_store.on_error: open)", "err", err)
		return nil, nil
	}
	r.s.budgetResult("reserved")
	if res.ID == "" {
		return nil, nil // no rule applies
	}
	enc, err := json.Marshal(res)
	if err != nil {
		return nil, apierr.Internal(err)
	}
	return header(HeaderReservation, base64.RawURLEncoding.EncodeToString(enc)), nil
}

// settle ends the upstream attempt's part: the actual cost replaces the
// reservation when usage is known; a failed attempt that ends the request
// releases it.
func (u *upstream) settle(outcome string, usageKnown bool, pico, tokens int64) {
	b := u.s.budgets
	if b == nil || u.reservation == "" {
		return
	}
	// A failed attempt that ends the request gives the reservation back: a
	// status Envoy's retry policy never retries (RetriableStatusCodes), or the last
	// try Envoy may make (x-envoy-attempt-count, rendered on the virtual
	// host). Other failed tries keep it for the retry.
	retriable := retriableStatus(u.status)
	release := outcome == "error" && (!retriable || u.lastAttempt())
	if !release && (outcome != "ok" || !usageKnown) {
		return
	}
	raw, err := base64.RawURLEncoding.DecodeString(u.reservation)
	var res budget.Reservation
	if err == nil {
		err = json.Unmarshal(raw, &res)
	}
	switch {
	case err != nil:
	case release:
		err = b.Engine.Release(context.Background(), res)
	default:
		err = b.Engine.Settle(context.Background(), res, pico, tokens)
	}
	if err != nil {
		u.s.budgetResult("settle_error")
		u.s.log.Warn("budget settle failed", "err", err)
	}
}

// lastAttempt reports whether Envoy will not retry after this attempt.
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
