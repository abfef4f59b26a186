package extproc

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/cache"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/conversation"
	"github.com/llmproc/llmproc/filter/translate"
)

// The Responses API's conversation state (package conversation), without
// sticky replicas:
//
//   - The upstream role keeps every Responses answer it delivers whole to a
//     request without store: false: the response object the client got
//     (OpenAI's own for a pass-through, llmproc's for a translated one, so
//     its id is the one the client saw) and the request's input items.
//   - The router role expands a previous_response_id it finds in the store
//     (the caller's tenant's) into the request's input and removes it,
//     before routing, so every attempt, on any backend, gets the whole
//     conversation: a conversation that fails over from OpenAI to Anthropic
//     mid-way goes on. An id llmproc did not keep passes untouched to a pool
//     whose first backend speaks the Responses API (OpenAI knows the ids it
//     stored itself); for any other pool it is a 400
//     previous_response_not_found, as OpenAI answers.
//   - GET /v1/responses/{id} (and /input_items) and DELETE /v1/responses/{id}
//     are answered by the router role from the store; an id it does not
//     hold, another tenant's included, is a 404 in OpenAI's shape.

// responsesPrefix starts the paths of stored responses.
const responsesPrefix = "/v1/responses/"

// storedResponsePath reports whether path names a stored response (or its
// input items) rather than another Responses endpoint.
func storedResponsePath(path string) bool {
	return strings.HasPrefix(path, responsesPrefix) && path != inputTokensPath
}

// storedResponse answers GET and DELETE /v1/responses/{id} and GET
// /v1/responses/{id}/input_items from the conversation store.
func (r *router) storedResponse() (*extprocv3.ProcessingResponse, error) {
	id, sub, _ := strings.Cut(strings.TrimPrefix(r.path, responsesPrefix), "/")
	if id == "" || (sub != "" && sub != "input_items") {
		return nil, r.s.reject(apierr.New(http.StatusNotFound, apierr.TypeInvalidRequest, "unknown_url", "Invalid URL (%s %s)", r.method, r.path))
	}
	switch {
	case r.method == http.MethodGet:
	case r.method == http.MethodDelete && sub == "":
	default:
		return nil, r.s.reject(methodNotAllowed(r.method, r.path))
	}
	r.note(KeyEndpoint, "responses_state")
	conv := r.s.conv
	if conv == nil {
		return nil, r.s.reject(responseNotFound(id))
	}
	if r.method == http.MethodDelete {
		if !conv.Delete(r.ctx, r.tenant, id) {
			return nil, r.s.reject(responseNotFound(id))
		}
		r.conversationEvent("deleted")
		b := strconv.AppendQuote([]byte(`{"id":`), id)
		return jsonReply(append(b, `,"object":"response","deleted":true}`...), "llmproc_response_deleted"), nil
	}
	rec, ok := conv.Get(r.ctx, r.tenant, id)
	if !ok {
		return nil, r.s.reject(responseNotFound(id))
	}
	if sub == "" {
		return jsonReply(rec.Response, "llmproc_response"), nil
	}
	return jsonReply(inputItemsList(rec.Input), "llmproc_response_input_items"), nil
}

// inputItemsList is OpenAI's list of a response's input items: newest
// first (the API's default order), all on one page.
func inputItemsList(input []byte) []byte {
	items := gjson.ParseBytes(input).Array()
	b := []byte(`{"object":"list","data":[`)
	for i := len(items) - 1; i >= 0; i-- {
		if i < len(items)-1 {
			b = append(b, ',')
		}
		b = append(b, items[i].Raw...)
	}
	b = append(b, `],"first_id":`...)
	first, last := "", ""
	if len(items) > 0 {
		first, last = items[len(items)-1].Get("id").Str, items[0].Get("id").Str
	}
	b = appendNullableString(b, first)
	b = append(b, `,"last_id":`...)
	b = appendNullableString(b, last)
	return append(b, `,"has_more":false}`...)
}

func appendNullableString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return strconv.AppendQuote(b, s)
}

// responseNotFound is OpenAI's 404 for a response id it does not hold.
func responseNotFound(id string) *apierr.Error {
	return &apierr.Error{Status: http.StatusNotFound, Type: apierr.TypeInvalidRequest, Code: "response_not_found",
		Message: "Response with id '" + id + "' not found."}
}

// jsonReply is a 200 immediate response with a JSON body.
func jsonReply(b []byte, details string) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
		ImmediateResponse: &extprocv3.ImmediateResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_OK},
			Headers: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
				header("content-type", "application/json"),
				header("content-length", strconv.Itoa(len(b))),
			}},
			Body:    b,
			Details: details,
		},
	}}
}

// expandPrevious resolves a Responses request's previous_response_id from
// the store: a response llmproc keeps for the caller's tenant is expanded
// into the input (conversation.Expand) and the new body returned
// (expanded); an id it does not keep is returned as unknown, for
// unknownPrevious to judge once the pool is known.
func (r *router) expandPrevious(body []byte, req chatRequest) (out []byte, expanded bool, unknown string, _ *apierr.Error) {
	prev := req.previousResponseID
	if prev.Type != gjson.String || prev.Str == "" {
		return body, false, "", nil
	}
	if r.s.conv == nil {
		return body, false, prev.Str, nil
	}
	rec, ok := r.s.conv.Get(r.ctx, r.tenant, prev.Str)
	if !ok {
		r.note(KeyPreviousResponse, "unknown")
		r.conversationEvent("unknown")
		return body, false, prev.Str, nil
	}
	out, err := conversation.Expand(body, rec)
	if err != nil {
		return nil, false, "", apierr.BadRequest("invalid_value", "The request's input cannot be continued from response '%s': %v", prev.Str, err)
	}
	if limit := r.rt.Source.Limits.MaxRequestBytes; int64(len(out)) > limit {
		return nil, false, "", apierr.New(http.StatusRequestEntityTooLarge, apierr.TypeInvalidRequest, "request_too_large",
			"The conversation continued from response '%s' is %d bytes with its earlier turns; the limit is %d bytes.", prev.Str, len(out), limit)
	}
	r.note(KeyPreviousResponse, "expanded")
	r.conversationEvent("expanded")
	return out, true, "", nil
}

// unknownPrevious leaves a previous_response_id llmproc does not keep to a
// pool whose first backend speaks the Responses API (OpenAI knows the ids
// it stored itself) and refuses it, as OpenAI does, for any other pool.
func unknownPrevious(id string, pool *config.RPool) *apierr.Error {
	if id == "" || (len(pool.Members) > 0 && translate.EndpointServed(translate.EndpointResponses, pool.Members[0].Backend.Schema)) {
		return nil
	}
	return &apierr.Error{Status: http.StatusBadRequest, Type: apierr.TypeInvalidRequest, Code: "previous_response_not_found",
		Param: "previous_response_id", Message: "Previous response with id '" + id + "' not found."}
}

func (r *router) conversationEvent(event string) {
	if r.s.metrics != nil {
		r.s.metrics.ConversationStore(event)
	}
}

// KeyPreviousResponse is the access log's word on a previous_response_id:
// expanded from the store, or unknown to it.
const KeyPreviousResponse = "previous_response"

// beginKeep prepares the attempt to keep its answer: a Responses request
// without store: false, when the store is on. body is the client-schema
// body the attempt received (previous turns expanded by the router).
func (u *upstream) beginKeep(body []byte) {
	if u.s.conv == nil || u.endpoint != translate.EndpointResponses {
		return
	}
	if gjson.GetBytes(body, "store").Type == gjson.False {
		return
	}
	u.keepBody = body
}

// keep stores the delivered answer's response object with the request's
// input items, once the attempt ended well.
func (u *upstream) keep() {
	if u.capture == nil || u.keepBody == nil {
		return
	}
	resp, ok := u.capture.Response()
	if !ok {
		u.keepOutcome("not_kept")
		return
	}
	input, err := conversation.Items(gjson.GetBytes(u.keepBody, "input"))
	if err != nil {
		u.keepOutcome("not_kept")
		return
	}
	if !u.s.conv.Put(u.callerTenant, conversation.Record{Response: resp, Input: input}) {
		u.keepOutcome("too_large")
		return
	}
	u.keepOutcome("kept")
}

func (u *upstream) keepOutcome(outcome string) {
	if u.s.metrics != nil {
		u.s.metrics.ConversationStore(outcome)
	}
}

// storeResponse caches a Responses answer as its final response object
// (cache.ReplayResponsesSSE replays it as a stream): only a completed one
// with usage, within cache.max_entry_bytes.
func (u *upstream) storeResponse(keys []cache.Key) {
	resp, ok := u.capture.Response()
	reason := cache.SkipCut
	if ok {
		ok, reason = cache.ResponsesStorable(resp)
	}
	if ok && len(resp) > u.s.cache.MaxEntryBytes {
		ok, reason = false, cache.SkipTooLarge
	}
	if !ok {
		if u.s.metrics != nil {
			u.s.metrics.CacheSkip(reason)
		}
		return
	}
	e := cache.Entry{Completion: bytes.Clone(resp), Stored: u.s.now(), RequestID: u.id}
	for i, k := range keys {
		var then func()
		if i == 0 { // the semantic tier joins the exact entry, as in store
			then = u.semanticStore(k, e.Stored)
		}
		u.s.cache.set(k, e, then)
	}
}
