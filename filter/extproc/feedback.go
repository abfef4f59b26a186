package extproc

// Quality feedback: every answer's request record (package feedback) and
// POST /v1/feedback, which the router answers itself.

import (
	"cmp"
	"net/http"
	"strconv"
	"strings"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tidwall/gjson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/feedback"
	"github.com/llmproc/llmproc/filter/validate"
)

// FeedbackPath is llmproc's own feedback endpoint.
const FeedbackPath = "/v1/feedback"

// Bounds of a feedback body's strings (bytes of UTF-8).
const (
	maxFeedbackIDBytes      = 256
	maxFeedbackLabelBytes   = 64
	maxFeedbackCommentBytes = 4096
)

// Feedback is one accepted verdict on an answer.
type Feedback struct {
	Score          int // validate.FeedbackScoreMin (worst) to validate.FeedbackScoreMax (best)
	Label, Comment string
}

// feedbackCall answers POST /v1/feedback: the body is checked, the caller's
// record of the request looked up in the tiers (any replica's, within
// feedback.window; another tenant's request is not found), the first
// feedback for a request accepted and any later one refused with 409.
func (r *router) feedbackCall(body []byte) (*extprocv3.ProcessingResponse, error) {
	r.note(KeyEndpoint, "feedback")
	body, derr := r.decodeBody(body)
	if derr != nil {
		return nil, r.s.reject(derr)
	}
	var id string
	var fb Feedback
	o := validate.Options{MaxDepth: r.rt.Source.Limits.MaxJSONDepth, Member: func(k string, v []byte) {
		switch g := gjson.ParseBytes(v); k {
		case "request_id":
			id = g.Str
		case "score":
			fb.Score = int(g.Int())
		case "label":
			fb.Label = g.Str
		case "comment":
			fb.Comment = g.Str
		}
	}}
	if err := validate.Feedback(body, o); err != nil {
		return nil, r.s.reject(apierr.From(err))
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"request_id", id, maxFeedbackIDBytes}, {"label", fb.Label, maxFeedbackLabelBytes}, {"comment", fb.Comment, maxFeedbackCommentBytes}} {
		if len(f.v) > f.max {
			return nil, r.s.reject(&apierr.Error{Status: http.StatusBadRequest, Type: apierr.TypeInvalidRequest, Code: "string_above_max_length", Param: f.name,
				Message: f.name + ": expected at most " + strconv.Itoa(f.max) + " bytes, got " + strconv.Itoa(len(f.v))})
		}
	}
	rec, ok := r.s.feedback.Get(r.ctx, r.tenant, id)
	if !ok {
		return nil, r.s.reject(&apierr.Error{Status: http.StatusNotFound, Type: apierr.TypeInvalidRequest, Code: "request_not_found", Param: "request_id",
			Message: "No request " + strconv.Quote(id) + " of yours was answered within the feedback window (" + r.rt.Source.Feedback.Window.String() + ")."})
	}
	if !r.s.feedback.Claim(r.ctx, r.tenant, id) {
		return nil, r.s.reject(&apierr.Error{Status: http.StatusConflict, Type: apierr.TypeInvalidRequest, Code: "feedback_exists", Param: "request_id",
			Message: "Feedback for request " + strconv.Quote(id) + " was already given; each request takes one."})
	}
	r.s.feedbackReceived(rec, fb)
	b := []byte(`{"object":"feedback","request_id":`)
	b = apierr.AppendJSONString(b, id)
	b = append(b, `,"score":`...)
	b = strconv.AppendInt(b, int64(fb.Score), 10)
	for _, kv := range [][2]string{{"model", rec.Model}, {"backend", rec.Backend}, {"route", rec.Route}} {
		b = append(b, `,"`+kv[0]+`":`...)
		b = apierr.AppendJSONString(b, kv[1])
	}
	return jsonReply(append(b, '}'), "llmproc_feedback"), nil
}

// feedbackReceived accounts accepted feedback against the request that
// was rated: metrics, and one log line (the label and comment are the
// client's words about the answer, the only client text llmproc logs).
func (s *Server) feedbackReceived(rec feedback.Record, fb Feedback) {
	if s.metrics != nil {
		s.metrics.Feedback(rec.Model, rec.Backend, rec.Route, rec.Class, fb.Score)
	}
	s.log.Info("feedback", "request_id", rec.RequestID, "tenant", rec.Tenant, "model", rec.Model, "backend", rec.Backend,
		"pool", rec.Pool, "route", rec.Route, "class", rec.Class, "attempts", rec.Attempts, "trace_id", rec.TraceID,
		"span_id", rec.SpanID, "score", fb.Score, "label", fb.Label, "comment", fb.Comment)
	s.feedbackSpan(rec, fb)
}

// recordHit keeps the record of a request answered from the cache.
func (r *router) recordHit(d config.Decision, model string) {
	if r.s.feedback == nil {
		return
	}
	r.s.feedback.Put(withSpan(feedback.Record{RequestID: r.id, Tenant: r.tenant, Model: cmp.Or(d.Target, model), RequestedModel: model,
		Pool: d.Pool.Name, Route: d.Route, Class: r.noted(KeyClass), Client: r.clientSchema(), Cache: "hit",
		Status: http.StatusOK, TraceID: r.traceID, SpanID: r.spanID, Time: r.s.now()}, r.span))
}

// attemptBackendsMetadata is the dynamic metadata of an attempt's request
// body reply: the backends of the attempts so far, this one's last.
func (u *upstream) attemptBackendsMetadata() *structpb.Struct {
	return metadataStruct(map[string]*structpb.Value{KeyAttemptBackends: structpb.NewStringValue(strings.Join(u.attemptBackends, ","))})
}

// recordAnswer keeps the record of a request an attempt answered: the
// last attempt's record stands (feedback.Tier.Put).
func (u *upstream) recordAnswer() {
	if u.s.feedback == nil || u.id == "" {
		return
	}
	u.s.feedback.Put(withSpan(feedback.Record{Attempts: cmp.Or(u.attempt, len(u.attemptBackends)), RequestID: u.id, Tenant: u.callerTenant,
		Model: u.served, RequestedModel: u.model, Backend: u.member.Backend.Name, Pool: u.pool.Name, Route: u.route, Class: u.class,
		Client: u.clientSchema(), Cache: u.cacheResult, Status: u.status, AttemptBackends: u.attemptBackends,
		TraceID: u.traceID, SpanID: u.spanID, Time: u.s.now()}, u.span))
}

// previousBackends reads KeyAttemptBackends as an earlier attempt wrote it.
func previousBackends(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}
