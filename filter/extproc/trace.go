package extproc

// llmproc's OpenTelemetry spans (filter/tracing): the router role makes one
// span per request, a child of the request's W3C traceparent and tracestate;
// the upstream role one span per attempt, a child of the router span. The
// router hands its span's context to the upstream role in the dynamic
// metadata (KeyTraceparent, KeyTracestate), like every other decision: a
// request header would not do, since the first attempt removes every
// x-llmproc-* header from the header map all attempts share (decision.go).
// Each attempt's own context goes on to the provider as its traceparent.
//
// Without a tracing section Server.tracer is nil, every span is nil, and
// each hook below costs one nil check.

import (
	"cmp"
	"context"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/grpc/metadata"

	"github.com/llmproc/llmproc/filter/feedback"
	"github.com/llmproc/llmproc/filter/sse"
	"github.com/llmproc/llmproc/filter/tracing"
	"github.com/llmproc/llmproc/filter/usage"
)

// Keys of the router span's context in the llmproc dynamic metadata.
const (
	KeyTraceparent = "traceparent"
	KeyTracestate  = "tracestate"
)

// answeredLocally is told the status and details of an immediate response a
// stream answered with (Server.loop).
type answeredLocally interface {
	answered(status int, details string)
}

// envoySpan is the W3C context in the ext_proc stream's gRPC metadata: with
// its own tracer on, Envoy's gRPC client makes a child span of the request's
// span for each ext_proc stream and injects it into the stream's headers
// (AsyncStreamImpl::initialize in source/common/grpc/async_client_impl.cc).
func (s *Server) envoySpan(ctx context.Context) [2]string {
	if s.tracer == nil {
		return [2]string{}
	}
	md, _ := metadata.FromIncomingContext(ctx)
	var out [2]string
	if v := md.Get("traceparent"); len(v) > 0 {
		out[0] = v[0]
		if v := md.Get("tracestate"); len(v) > 0 {
			out[1] = v[0]
		}
	}
	return out
}

// startSpan starts the router span once the request headers are read: a
// child of Envoy's span for the stream when Envoy traces (itself in the
// client's trace), else of the request's own traceparent.
func (r *router) startSpan(traceparent, tracestate string) {
	if r.s.tracer == nil {
		return
	}
	if r.envoySpan[0] != "" {
		traceparent, tracestate = r.envoySpan[0], r.envoySpan[1]
	}
	r.span = r.s.tracer.Router(traceparent, tracestate, r.s.now())
	r.span.Set(tracing.RequestID.String(r.id), tracing.HTTPRequestMethod.String(r.method), tracing.URLPath.String(r.path),
		tracing.Client.String(r.clientSchema()))
}

func (r *router) answered(status int, details string) {
	if r.span == nil {
		return
	}
	r.status = status
	r.details = details
}

// spanDecided names the router span and gives it the routing decision; the
// returned fields carry its context to the upstream role.
func (r *router) spanDecided(model string, body []byte) {
	if r.span == nil {
		return
	}
	op := cmp.Or(genAIOperations[r.endpoint], "chat")
	if isGeminiEmbed(r.geminiMethod) {
		op = "embeddings"
	}
	r.span.SetName(op + " " + model)
	r.span.Set(tracing.OperationName.String(op), tracing.RequestModel.String(model))
	if capture, max := r.s.tracer.Capture(); capture {
		msgs, cut := inputMessages(body, max)
		r.span.Set(tracing.InputMessages.String(msgs))
		if cut {
			r.span.Set(tracing.ContentTruncated.Bool(true))
		}
	}
}

// spanContext adds the router span's context to the decisions.
func (r *router) spanContext(dec map[string]string) {
	if r.span != nil {
		dec[KeyTraceparent], dec[KeyTracestate] = r.span.Context()
	}
}

// endSpan ends the router span with what the access log learned.
func (r *router) endSpan(err error) {
	if r.span == nil {
		return
	}
	for k, a := range map[string]attribute.Key{KeyPool: tracing.Pool, KeyRoute: tracing.Route, KeyClass: tracing.Class,
		KeyCache: tracing.Cache, KeyCallerTenant: tracing.Tenant} {
		if v := r.noted(k); v != "" {
			r.span.Set(a.String(v))
		}
	}
	var errType, msg string
	switch {
	case r.status != 0:
		r.span.Set(tracing.HTTPResponseStatus.Int(r.status))
		if r.status >= 400 {
			errType, msg = strconv.Itoa(r.status), strings.TrimPrefix(r.details, "llmproc_")
		}
	case err != nil && !isNormalEnd(err):
		errType, msg = "stream_error", err.Error()
	}
	r.span.End(errType, msg, r.s.now())
}

// startSpan starts the attempt's span, a child of the router span.
func (u *upstream) startSpan(dec decisions, hs headers) {
	if u.s.tracer == nil {
		return
	}
	tp, ts := dec.get(KeyTraceparent), dec.get(KeyTracestate)
	if tp == "" { // no router span (not sampled, another replica's config): the request's
		tp, ts = hs["traceparent"], hs["tracestate"]
	}
	u.span = u.s.tracer.Attempt(tp, ts, u.start)
	u.span.Set(tracing.RequestID.String(u.id), tracing.Attempt.Int(max(u.attempt, 1)))
}

// spanBackend records the attempt's pool and backend.
func (u *upstream) spanBackend() {
	if u.span == nil {
		return
	}
	be := u.member.Backend
	u.span.Set(tracing.Pool.String(u.pool.Name), tracing.Backend.String(be.Name),
		tracing.ProviderName.String(cmp.Or(tracing.Providers[be.Schema], be.Schema)))
	if be.Host != "" {
		u.span.Set(tracing.ServerAddress.String(be.Host))
	}
	if u.route != "" {
		u.span.Set(tracing.Route.String(u.route))
	}
	if u.class != "" {
		u.span.Set(tracing.Class.String(u.class))
	}
	if u.cacheResult != "" {
		u.span.Set(tracing.Cache.String(u.cacheResult))
	}
}

// spanSent names the attempt's span once its request is translated and
// returns the traceparent header for the provider (nil without a span).
func (u *upstream) spanSent() [][2]string {
	if u.span == nil {
		return nil
	}
	op := cmp.Or(u.operation(), "chat")
	u.span.SetName(op + " " + u.served)
	u.span.Set(tracing.OperationName.String(op), tracing.RequestModel.String(u.served), tracing.RequestStream.Bool(u.stream))
	if capture, max := u.s.tracer.Capture(); capture {
		u.out = &outputCapture{max: max}
	}
	tp, ts := u.span.Context()
	out := [][2]string{{"traceparent", tp}}
	if ts != "" {
		out = append(out, [2]string{"tracestate", ts})
	}
	return out
}

// spanAnswer records the finished attempt: status, usage, cost.
func (u *upstream) spanAnswer(outcome string, res usage.Result, cost int64, estimated bool, estIn, estOut, estCost int64) {
	if u.span == nil {
		return
	}
	s := u.span
	s.Set(tracing.Outcome.String(outcome))
	if u.status != 0 {
		s.Set(tracing.HTTPResponseStatus.Int(u.status))
	}
	if res.Model != "" {
		s.Set(tracing.ResponseModel.String(res.Model))
	}
	if res.FinishReason != "" {
		s.Set(tracing.ResponseFinish.StringSlice([]string{res.FinishReason}))
	}
	if u.ttft > 0 && u.stream {
		s.Set(tracing.TimeToFirstChunk.Float64(u.ttft.Seconds()))
	}
	switch {
	case res.Known:
		p := res.Usage.Priced()
		s.Set(tracing.InputTokens.Int64(p.Input), tracing.OutputTokens.Int64(p.Output),
			tracing.CacheReadTokens.Int64(p.CachedInput), tracing.CacheCreationTokens.Int64(p.CacheWrite),
			tracing.ReasoningTokens.Int64(p.Reasoning), tracing.CostUSD.Float64(usdOf(cost)))
	case estimated:
		s.Set(tracing.InputTokens.Int64(estIn), tracing.OutputTokens.Int64(estOut), tracing.CostUSD.Float64(usdOf(estCost)),
			tracing.UsageEstimated.Bool(true))
	}
	if u.out != nil {
		msgs, cut := u.out.messages(res.FinishReason)
		s.Set(tracing.OutputMessages.String(msgs))
		if cut {
			s.Set(tracing.ContentTruncated.Bool(true))
		}
	}
	switch {
	case u.status != 0 && (u.status < 200 || u.status >= 300):
		u.spanErr = strconv.Itoa(u.status)
	case outcome != "ok":
		u.spanErr = outcome
	}
}

// endSpan ends the attempt's span.
func (u *upstream) endSpan(err error) {
	if u.span == nil {
		return
	}
	errType, msg := u.spanErr, ""
	switch {
	case u.refused != 0:
		// llmproc answered the attempt itself.
		errType = strconv.Itoa(u.refused)
		msg = "refused by llmproc"
		u.span.Set(tracing.HTTPResponseStatus.Int(u.refused))
	case errType == "" && err != nil && !isNormalEnd(err):
		errType, msg = "stream_error", err.Error()
	case errType == "" && u.sentAt.IsZero() && !u.finished:
		errType = "canceled"
	}
	u.span.End(errType, msg, u.s.now())
}

func usdOf(pico int64) float64 {
	f, _ := strconv.ParseFloat(usage.FormatUSD(pico), 64)
	return f
}

// inputMessages is the request's messages as gen_ai.input.messages (role
// and text parts), at most max bytes of text, and whether any was cut.
func inputMessages(body []byte, max int) (string, bool) {
	msgs := gjson.GetBytes(body, "messages")
	if !msgs.IsArray() {
		msgs = gjson.GetBytes(body, "input") // Responses
	}
	if !msgs.Exists() {
		msgs = gjson.GetBytes(body, "contents") // Gemini
	}
	budget := max
	cut := false
	b := []byte{'['}
	n := 0
	add := func(role, text string) {
		if len(text) > budget {
			text, cut = cutText(text, budget), true
		}
		budget -= len(text)
		if n++; n > 1 {
			b = append(b, ',')
		}
		b = append(b, `{"role":`...)
		b = strconv.AppendQuote(b, role)
		b = append(b, `,"parts":[{"type":"text","content":`...)
		b = strconv.AppendQuote(b, text)
		b = append(b, "}]}"...)
	}
	if msgs.Type == gjson.String {
		add("user", msgs.Str)
		return string(append(b, ']')), cut
	}
	msgs.ForEach(func(_, m gjson.Result) bool {
		if budget <= 0 {
			cut = true
			return false
		}
		var text strings.Builder
		c := m.Get("content")
		if !c.Exists() {
			c = m.Get("parts")
		}
		if c.Type == gjson.String {
			text.WriteString(c.Str)
		} else {
			c.ForEach(func(_, p gjson.Result) bool {
				text.WriteString(p.Get("text").Str)
				return true
			})
		}
		add(cmp.Or(m.Get("role").Str, "user"), text.String())
		return true
	})
	return string(append(b, ']')), cut
}

// cutText cuts s to at most n bytes on a rune boundary.
func cutText(s string, n int) string {
	if n <= 0 {
		return ""
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// maxCapturedJSON bounds the JSON answer kept to read its content from.
const maxCapturedJSON = 8 << 20

// outputCapture gathers the text of a normalized (OpenAI) answer for
// gen_ai.output.messages, up to max bytes.
type outputCapture struct {
	max  int
	sc   sse.Scanner
	json []byte
	sse  bool
	text strings.Builder
	cut  bool
}

func (c *outputCapture) write(chunk []byte) {
	if !c.sse {
		if len(c.json) < maxCapturedJSON {
			c.json = append(c.json, chunk...)
		}
		return
	}
	c.sc.Feed(chunk, func(e sse.Event) {
		c.add(gjson.GetBytes(e.Data, "choices.0.delta.content").Str)
	})
}

func (c *outputCapture) add(s string) {
	if room := c.max - c.text.Len(); len(s) > room {
		s, c.cut = cutText(s, room), true
	}
	c.text.WriteString(s)
}

func (c *outputCapture) messages(finish string) (string, bool) {
	if !c.sse {
		c.add(gjson.GetBytes(c.json, "choices.0.message.content").Str)
	}
	b := []byte(`[{"role":"assistant","parts":[{"type":"text","content":`)
	b = strconv.AppendQuote(b, c.text.String())
	b = append(b, `}]`...)
	if finish != "" {
		b = append(b, `,"finish_reason":`...)
		b = strconv.AppendQuote(b, finish)
	}
	return string(append(b, "}]"...)), c.cut
}

// withSpan points a feedback record at the span that answered (the attempt's,
// or the router's for a cache hit) when llmproc traced the request, so a
// verdict lands next to it (feedbackSpan); else the record keeps the
// request's own traceparent ids.
func withSpan(rec feedback.Record, s *tracing.Span) feedback.Record {
	if s != nil {
		rec.TraceID, rec.SpanID = s.IDs()
	}
	return rec
}

// feedbackSpan adds a verdict to the rated request's trace (a span
// llmproc.feedback, child of and linked to the answering span) when the
// record names one; the client's comment stays out of it.
func (s *Server) feedbackSpan(rec feedback.Record, fb Feedback) {
	if s.tracer == nil || rec.TraceID == "" || rec.SpanID == "" {
		return
	}
	kv := []attribute.KeyValue{tracing.RequestID.String(rec.RequestID), attribute.Int("llmproc.feedback.score", fb.Score),
		tracing.RequestModel.String(rec.RequestedModel), tracing.ResponseModel.String(rec.Model),
		tracing.Backend.String(rec.Backend), tracing.Pool.String(rec.Pool), tracing.Route.String(rec.Route)}
	if fb.Label != "" {
		kv = append(kv, attribute.String("llmproc.feedback.label", fb.Label))
	}
	if err := s.tracer.Feedback(rec.TraceID, rec.SpanID, s.now(), kv...); err != nil {
		s.log.Debug("feedback not traced", "request_id", rec.RequestID, "err", err)
	}
}
