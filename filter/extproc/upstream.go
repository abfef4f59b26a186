package extproc

import (
	"cmp"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tidwall/gjson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/cache"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/conversation"
	"github.com/llmproc/llmproc/filter/metrics"
	"github.com/llmproc/llmproc/filter/semantic"
	"github.com/llmproc/llmproc/filter/tracing"
	"github.com/llmproc/llmproc/filter/translate"
	"github.com/llmproc/llmproc/filter/usage"
)

// Attribute names the upstream filter asks Envoy for (request_attributes).
const (
	AttrBackend = "xds.upstream_host_metadata.filter_metadata['llmproc']['backend']"
	AttrCluster = "xds.cluster_name"
	attrsKey    = "envoy.filters.http.ext_proc"
	// PoolClusterPrefix + pool name is the pool's Envoy cluster.
	PoolClusterPrefix = "pool/"
)

// continueResponseBody answers a response chunk that passes unchanged. It is
// shared by all streams and never modified (marshalling only reads it), which
// saves four allocations on every chunk of every stream.
var continueResponseBody = responseBodyResponse(&extprocv3.CommonResponse{})

// upstream is the per-attempt role inside a pool cluster: it translates the
// client's request for the chosen backend and reads the answer on its way
// back. It learns the backend from the endpoint metadata attribute, the pool
// from the cluster name and the router's decisions from the metadata context
// (decision.go), so it needs nothing from the router's stream, nor from an
// earlier attempt's headers.
type upstream struct {
	s    *Server
	rt   *config.Runtime
	send func(*extprocv3.ProcessingResponse) error // the stream's, for a reply ahead of a phase's own

	start  time.Time
	sentAt time.Time
	pool   *config.RPool
	member *config.RMember
	tr     translate.Translator
	// keyBackend is the backend as this attempt sends it, with the key
	// chosen (rotation.go); keySlot that key's slot, "" when it has none.
	keyBackend *config.RBackend
	keySlot    string
	model      string // requested by the client
	served     string // sent to the backend
	stream     bool
	dropUse    bool // the client did not ask for usage in its stream; llmproc did
	// headersOnly: the attempt was prepared at its request headers and
	// Envoy was asked not to send the body (bodyless.go).
	headersOnly bool
	// facts is the router's KeyBody, when hasFacts.
	facts    bodyFacts
	hasFacts bool

	id string // KeyRequestID, else the x-request-id header
	// traceID and spanID are the router's KeyTraceID and KeySpanID.
	traceID, spanID string
	// attemptBackends are the backends of the attempts so far, this one's
	// last (KeyAttemptBackends).
	attemptBackends []string
	client          string         // the client's API (KeyClient)
	budget          *attemptBudget // KeyReservation: the budget reservation to end
	refused         int            // the status llmproc refused the attempt with
	tenant          string         // KeyTenant: the bounded tenant label
	// callerTenant is KeyCallerTenant, the caller's own tenant, which
	// scopes the conversation state.
	callerTenant string
	// keepBody is a Responses request to keep the answer of
	// (conversation.go), capture reads that answer.
	keepBody []byte
	// cacheResponses: a Responses answer to cache, read by capture.
	cacheResponses bool
	capture        *conversation.Capture
	attempt        int    // x-envoy-attempt-count (0 when Envoy does not send it)
	cacheKey       string // KeyCacheKey: store a complete answer under it
	cacheResult    string // KeyCache from the router (miss, bypass)
	// semBucket is KeySemanticBucket; semText the latest user turn to add
	// to it once the answer is stored (semantic.go).
	semBucket, semText string
	internal           []string // the x-llmproc-* request headers present, to remove
	// current is the request-header map at the attempt's headers message
	// (attempt.go): no mutation repeats what it holds.
	current map[string]string
	asm     *cache.Assembler // assembles the answer to store
	conv    translate.Body   // OpenAI output → the client's API; nil for OpenAI clients
	// native: an Anthropic client's request goes to an Anthropic-native
	// endpoint (Anthropic; Claude on Bedrock or Vertex) as it was sent; for
	// count_tokens, to a backend that counts tokens itself. passNative: its
	// 2xx answer reaches the client as the backend sent it (through wire,
	// which turns Bedrock's event stream into Anthropic SSE), u.body only
	// reading it (in OpenAI form) for usage and the cache; error answers are
	// normalized and converted as for any Anthropic client.
	native, passNative bool
	wire               translate.Body
	countTokens        bool   // POST /v1/messages/count_tokens (KeyEndpoint)
	endpoint           string // one of OpenAI's other APIs (KeyEndpoint; endpoints.go)
	// respMeta is set for a Responses request translated through chat
	// completions (translate.EndpointTranslated): what its answer's
	// conversion needs.
	respMeta *translate.ResponsesMeta
	embed    *translate.EmbeddingsCall // embeddings translated for this backend
	// The Anthropic client's anthropic-version and anthropic-beta (KeyAnthropicVersion, KeyAnthropicBeta).
	anthropicVersion, anthropicBeta string
	// A Gemini client's method and how it takes its answer (KeyGeminiMethod,
	// KeyGeminiFraming), and the model its path names (KeyRequestedModel).
	geminiMethod string
	framing      translate.GeminiFraming
	requested    string
	// Anthropic clients on a translated backend: message_start's
	// input_tokens estimate, and thinking.display "omitted".
	inputEstimate int64
	omitThinking  bool
	status        int
	body          translate.Body
	tracker       *usage.Tracker
	strip         *usageStripper
	ttft          time.Duration
	res           *usage.Result // set once the tracker is finished
	finished      bool
	reqBytes      int // the client's request body, for the input estimate
	ans           answerState
	reply         *chunkReply // the reply to a replaced chunk, reused (upstream_answer.go)
	// From the router: the routing rule, the task class and the model a
	// rule chose instead of the client's (KeyRoute, KeyClass, KeyTarget).
	route, class, target string
	classConfidence      string // the classifier's probability for class
	// span is the attempt's span (trace.go), spanErr its error.type once
	// the answer is read, out its captured content; nil when not traced.
	span    *tracing.Span
	spanErr string
	out     *outputCapture
}

func (u *upstream) requestID() string { return u.id }

// immediateMetadata: the upstream role writes its metadata at the end of the
// attempt (finish), also for the attempts it refuses.
func (u *upstream) immediateMetadata() *structpb.Struct { return nil }

func (u *upstream) clientSchema() string {
	if u.client == clientAnthropic || u.client == clientGemini {
		return u.client
	}
	return clientOpenAI
}

// answerHeaders are the headers every answer of a backend carries.
func (u *upstream) answerHeaders() []*corev3.HeaderValueOption {
	set := []*corev3.HeaderValueOption{header(HeaderBackend, u.member.Backend.Name), header(HeaderModel, u.served)}
	if u.id != "" {
		set = append(set, header(HeaderRequestID, u.id))
	}
	return set
}

// result finishes the tracker once and returns what it saw.
func (u *upstream) result() usage.Result {
	if u.res == nil {
		r := usage.Result{}
		if u.tracker != nil {
			r = u.tracker.Finish()
		}
		u.res = &r
	}
	return *u.res
}

func (u *upstream) requestHeaders(req *extprocv3.ProcessingRequest, h *extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
	u.start = u.s.now()
	hs := headersOf(h)
	dec := decisionsOf(req)
	u.attempt, _ = strconv.Atoi(hs["x-envoy-attempt-count"])
	u.id = cmp.Or(dec.get(KeyRequestID), hs["x-request-id"])
	u.beginBudget(dec.get(KeyReservation))
	u.startSpan(dec, hs)
	attrs := req.GetAttributes()[attrsKey]
	poolName := strings.TrimPrefix(stringAttr(attrs, AttrCluster), PoolClusterPrefix)
	if poolName == "" {
		poolName = dec.get(KeyPool)
	}
	pool, ok := u.rt.Pools[poolName]
	if !ok {
		return nil, u.refuse(errorf("upstream filter: unknown pool %q (cluster attribute %q)", poolName, AttrCluster))
	}
	backend := backendAttr(stringAttr(attrs, AttrBackend))
	member, ok := pool.Member(backend)
	if !ok {
		return nil, u.refuse(errorf("upstream filter: pool %q has no backend %q (endpoint metadata attribute %s)", poolName, backend, AttrBackend))
	}
	tr, err := u.s.tr.For(member.Backend.Schema)
	if err != nil {
		return nil, u.refuse(apierr.Internal(err))
	}
	u.pool, u.member, u.tr = pool, member, tr
	u.client, u.cacheKey, u.cacheResult = dec.get(KeyClient), dec.get(KeyCacheKey), dec.get(KeyCache)
	u.semBucket = dec.get(KeySemanticBucket)
	u.tenant, u.callerTenant = dec.get(KeyTenant), dec.get(KeyCallerTenant)
	u.target, u.route, u.class = dec.get(KeyTarget), dec.get(KeyRoute), dec.get(KeyClass)
	u.spanBackend()
	u.classConfidence = dec.get(KeyClassConfidence)
	u.traceID, u.spanID = dec.get(KeyTraceID), dec.get(KeySpanID)
	u.attemptBackends = append(previousBackends(dec.get(KeyAttemptBackends)), member.Backend.Name)
	u.internal = internalHeaders(hs)
	u.current = currentHeaders(h)
	if u.client == clientGemini {
		u.geminiMethod, u.requested = dec.get(KeyGeminiMethod), dec.get(KeyRequestedModel)
		u.framing = geminiFraming(u.geminiMethod, dec.get(KeyGeminiFraming))
		_, speaks := tr.(translate.GeminiNativeTranslator)
		u.native = speaks && translate.GeminiServed(u.geminiMethod, member.Backend.Schema)
	}
	u.anthropicVersion, u.anthropicBeta = dec.get(KeyAnthropicVersion), dec.get(KeyAnthropicBeta)
	u.countTokens = dec.get(KeyEndpoint) == endpointCountTokens || dec.get(KeyEndpoint) == translate.EndpointInputTokens
	if ep := dec.get(KeyEndpoint); endpointValidators[ep] != nil {
		u.endpoint = ep
	}
	if h.EndOfStream {
		return nil, u.refuse(apierr.BadRequest("missing_body", "The request body is empty; send a JSON chat completion request."))
	}
	u.facts, u.hasFacts = parseBodyFacts(dec.get(KeyBody))
	if resp := u.bodyless(dec); resp != nil {
		return resp, nil
	}
	return requestHeadersResponse(&extprocv3.CommonResponse{}), nil
}

func (u *upstream) requestBody(b *extprocv3.HttpBody) (_ *extprocv3.ProcessingResponse, err error) {
	defer func() {
		if err != nil {
			u.refuse(err)
		}
	}()
	if u.member == nil {
		return nil, errorf("upstream filter: request body before request headers")
	}
	if u.headersOnly {
		// An Envoy that ignored the mode_override: the headers reply set
		// all the attempt needs, the body goes as it is.
		return requestBodyResponse(&extprocv3.CommonResponse{}), nil
	}
	body := b.Body
	u.reqBytes = len(body)
	if u.hasFacts {
		u.reqBytes = u.facts.estimate // the client's body, when the router added to it
	}
	if u.semBucket != "" && u.semText == "" {
		u.semText, _ = semantic.Split(semanticAPI(u.client, u.endpoint), body)
	}
	if u.client == clientAnthropic {
		// The model sent decides: Claude on Bedrock or Vertex goes natively.
		model := cmp.Or(u.member.Model, u.target, gjson.GetBytes(body, "model").Str)
		if u.countTokens {
			u.native = translate.CountsTokens(u.member.Backend, model)
		} else {
			u.native = translate.AnthropicNativeServed(u.member.Backend, model)
		}
	}
	if u.countTokens && !u.countsNatively() {
		// Failed over to a backend without the endpoint: estimate.
		u.finished = true
		return estimatedCount(u.rt, u.countClient(), u.requested, body), nil
	}
	u.beginKeep(body)
	converted := false
	switch {
	case u.native:
	case u.endpoint != "" && translate.EndpointTranslated(u.endpoint, u.member.Backend.Schema):
		ob, meta, err := translate.ResponsesRequestToChat(body, u.member.Backend)
		if err != nil {
			return nil, err
		}
		body, converted, u.respMeta = ob, true, meta
	case u.client == clientAnthropic:
		// Inside, everything is OpenAI: convert, then translate as usual.
		ob, err := translate.AnthropicRequestToOpenAI(body)
		if err != nil {
			return nil, err
		}
		// The Anthropic answer's message_start carries the estimate of the
		// prompt (the hub's usage comes at the end), as count_tokens does.
		if gjson.GetBytes(body, "stream").Type == gjson.True {
			u.inputEstimate = int64(u.rt.Classifier.InputTokensOfValid(body))
		}
		u.omitThinking = gjson.GetBytes(body, "thinking.display").Str == "omitted"
		body, converted = ob, true
	case u.client == clientGemini && isGeminiEmbed(u.geminiMethod):
		// As OpenAI embeddings, then as POST /v1/embeddings goes on to
		// this backend; the answer comes back in Gemini's shape.
		if !served(translate.EndpointEmbeddings, u.member.Backend.Schema) {
			return nil, unservedGemini(u.geminiMethod, u.member.Backend)
		}
		ob, err := translate.GeminiEmbedToOpenAI(body, u.geminiMethod, u.requested, u.member.Backend)
		if err != nil {
			return nil, err
		}
		body, converted, u.endpoint = ob, true, translate.EndpointEmbeddings
	case u.client == clientGemini:
		ob, err := translate.GeminiRequestToOpenAI(body, u.requested, u.geminiMethod == translate.GeminiStream)
		if err != nil {
			return nil, err
		}
		body, converted = ob, true
	}
	req := readChat(body)
	u.model = strings.Clone(cmp.Or(req.model.String(), u.requested))
	u.stream = req.stream.Type == gjson.True || u.geminiMethod == translate.GeminiStream
	usageAsked := req.usageRequested() // what the body asks
	clientUsage := usageAsked
	if u.hasFacts && u.facts.added && !converted {
		clientUsage = u.facts.usage // the router asked, the client did not
	}
	u.dropUse = u.stream && !clientUsage && !converted && !u.native &&
		(u.endpoint == "" || u.endpoint == translate.EndpointCompletions)
	u.served = cmp.Or(u.member.Model, u.target, u.model)
	u.keyBackend, u.keySlot = u.s.keys.choose(u.member.Backend, u.s.now())
	u.awaitCredential()
	tr := &translate.Request{Body: body, Backend: u.keyBackend,
		ClientModel: u.model, Model: u.served, Stream: u.stream, UsageRequested: usageAsked}
	var up *translate.Upstream
	if u.respMeta != nil {
		up, err = u.tr.Request(tr)
		err = translate.ResponsesError(err)
	} else if u.endpoint != "" {
		up, err = u.endpointRequest(tr)
	} else if u.native && u.client == clientGemini {
		up, err = u.tr.(translate.GeminiNativeTranslator).GeminiNative(tr, u.geminiMethod)
	} else if u.countTokens {
		up, err = u.s.tr.CountTokensRequest(tr, u.anthropicVersion, u.anthropicBeta)
	} else if u.native {
		up, err = u.s.tr.AnthropicNativeRequest(tr, u.anthropicVersion, u.anthropicBeta)
	} else {
		up, err = u.tr.Request(tr)
	}
	if err != nil {
		return nil, err
	}
	if up.Body == nil && converted {
		up.Body = body
	}
	out := b.Body // the router's buffered original, a fresh copy each attempt
	common := &extprocv3.CommonResponse{}
	if up.Body != nil {
		out = up.Body
		common.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: up.Body}}
	}
	set := up.SetHeaders
	if tp := u.spanSent(); tp != nil {
		set = append(tp, set...)
	}
	common.HeaderMutation = u.attemptHeaders(up.Path, len(out), set)
	u.sentAt = u.s.now()
	if u.keySlot != "" && u.s.metrics != nil {
		u.s.metrics.CredentialUse(u.member.Backend.Name, u.keySlot)
	}
	resp := requestBodyResponse(common)
	resp.DynamicMetadata = u.attemptBackendsMetadata()
	return resp, nil
}

func (u *upstream) done(err error) {
	defer u.endSpan(err)
	u.closeAnswer()
	if u.refused != 0 {
		// llmproc answered the attempt itself: no provider saw it.
		u.status = u.refused
		u.endBudget(usage.Result{}, 0, 0, 0)
		return
	}
	// Record every attempt whose request was sent on, also one that ended
	// before response headers (connect failure, per-try timeout, reset).
	if u.finished || u.member == nil || u.sentAt.IsZero() {
		u.endBudget(usage.Result{}, 0, 0, 0) // an attempt cut before its body reached llmproc
		return
	}
	u.finish(nil, err)
}

// finish records the attempt once: metrics, and dynamic metadata on resp.
func (u *upstream) finish(resp *extprocv3.ProcessingResponse, streamErr error) *extprocv3.ProcessingResponse {
	u.finished = true
	res := u.result()
	outcome := "ok"
	switch {
	case u.ans.failed != "":
		outcome = metrics.OutcomeUndelivered
	case u.status != 0 && (u.status < 200 || u.status >= 300):
		// Also when the stream ends right after the headers: Envoy's router
		// retries on them and never passes the failed attempt's body.
		outcome = "error"
	case streamErr != nil || resp == nil:
		outcome = "canceled"
		if u.status != 0 {
			outcome = "cut"
		}
	case u.ans.handling == handlingPassthrough || u.ans.handling == handlingUnread:
		// Delivered whole, not read: usage unknown.
	case u.stream && (!res.Done || res.ErrorEvent):
		outcome = "cut"
	case !u.stream && !res.Done:
		outcome = "cut"
	}
	if outcome == "ok" && resp != nil {
		u.store()
		u.keep()
	}
	// A translated embeddings answer whose provider reported no token
	// count carries llmproc's estimate from the input text: billed and
	// logged as an estimate, like an answer without usage.
	var answerEstimate int64
	if u.embed != nil && u.embed.UsageEstimated() && res.Known {
		answerEstimate, res.Known = res.Usage.Input, false
	}
	price, priced := u.rt.PriceFor(u.served, u.model)
	var cost int64
	if res.Known && priced {
		cost = usage.Cost(res.Usage, price)
	}
	// A 2xx answer without usage (a cut stream, a server that reports none)
	// was billed all the same: estimate it, apart from reported usage.
	var estIn, estOut, estCost int64
	// So was an answer llmproc could not deliver.
	estimated := !res.Known && u.status >= 200 && u.status < 300 &&
		(outcome == "ok" || outcome == "cut" || outcome == metrics.OutcomeUndelivered)
	if estimated {
		estIn, estOut = estimateTokens(u.reqBytes), estimateTokens(res.OutputChars)
		if answerEstimate > 0 {
			estIn, estOut = answerEstimate, 0
		}
		estCost = usage.Cost(usage.Usage{Input: estIn, Output: estOut}, price)
	}
	budgetEnd := u.endBudget(res, cost, estCost, usage.AddSat(estIn, estOut))
	be := u.member.Backend
	if u.s.metrics != nil {
		u.s.metrics.Record(metrics.Completion{
			Pool: u.pool.Name, Backend: be.Name, Provider: be.Schema, Tenant: u.tenant,
			RequestModel: u.model, ResponseModel: u.served,
			Status: u.status, Stream: u.stream,
			Duration: u.s.now().Sub(u.start), TTFT: u.ttft,
			Usage: res.Usage, UsageKnown: res.Known, CostPico: cost, Outcome: outcome,
			Operation: u.operation(), Route: u.route,
		})
		if estimated {
			u.s.metrics.EstimatedTokens(u.pool.Name, be.Name, u.served, estIn, estOut)
		}
	}
	u.spanAnswer(outcome, res, cost, estimated, estIn, estOut, estCost)
	if resp == nil {
		return nil
	}
	u.recordAnswer()
	if u.s.metrics != nil && u.status >= 200 && u.status < 300 {
		u.s.metrics.Answered(u.route, u.pool.Name, be.Name, u.member.Priority)
	}
	md := map[string]*structpb.Value{
		"pool":            structpb.NewStringValue(u.pool.Name),
		"backend":         structpb.NewStringValue(be.Name),
		"model":           structpb.NewStringValue(u.served),
		"requested_model": structpb.NewStringValue(u.model),
		"outcome":         structpb.NewStringValue(outcome),
	}
	if budgetEnd != "" {
		md["budget"] = structpb.NewStringValue(budgetEnd)
	}
	switch {
	case res.Known:
		logUsage(md, res.Usage, cost)
	case estimated:
		logEstimate(md, estIn, estOut, estCost)
	default:
		// No token counts and no cost: absent, never 0 as if known.
		md[KeyUsage] = structpb.NewStringValue("unknown")
	}
	resp.DynamicMetadata = metadataStruct(md)
	return resp
}

// refuse records that llmproc answered the attempt itself with err's status.
func (u *upstream) refuse(err error) error {
	u.refused = apierr.From(err).Status
	return err
}

// bytesPerToken is the rule of thumb behind estimates: about four bytes of
// English text a token. The input estimate counts the whole request body,
// JSON framing included, so it errs high; the output estimate counts only
// the generated text (usage.Result.OutputChars).
const bytesPerToken = 4

// estimateTokens is n bytes in tokens, rounded up so any text counts.
func estimateTokens(n int) int64 {
	if n <= 0 {
		return 0
	}
	return (int64(n) + bytesPerToken - 1) / bytesPerToken
}

// stringAttr reads one attribute from the ext_proc attributes Struct.
func stringAttr(s *structpb.Struct, name string) string {
	if s == nil {
		return ""
	}
	return s.GetFields()[name].GetStringValue()
}

// backendAttr accepts the plain string Envoy gives for the metadata
// expression and, defensively, protobuf text of the whole metadata (which is
// what asking for xds.upstream_host_metadata alone yields).
func backendAttr(v string) string {
	if !strings.Contains(v, "backend") {
		return strings.TrimSpace(v)
	}
	i := strings.Index(v, `"backend"`)
	rest := v[i+len(`"backend"`):]
	j := strings.Index(rest, "string_value:")
	if j < 0 {
		return strings.TrimSpace(v)
	}
	rest = strings.TrimSpace(rest[j+len("string_value:"):])
	if s, err := strconv.Unquote(firstQuoted(rest)); err == nil {
		return s
	}
	return ""
}

func firstQuoted(s string) string {
	if len(s) == 0 || s[0] != '"' {
		return ""
	}
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return s[:i+1]
		}
	}
	return ""
}

// operation is the attempt's gen_ai_operation_name.
func (u *upstream) operation() string {
	if isGeminiEmbed(u.geminiMethod) {
		return "embeddings"
	}
	return genAIOperations[u.endpoint]
}
