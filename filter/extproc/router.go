package extproc

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/tidwall/gjson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/route"
	"github.com/llmproc/llmproc/filter/tracing"
	"github.com/llmproc/llmproc/filter/translate"
)

// router is the downstream role: it sees the request headers and the buffered
// body once per request, validates them, picks a pool and tells Envoy through
// the x-llmproc-pool header plus clear_route_cache. It never sees responses.
type router struct {
	s   *Server
	rt  *config.Runtime
	ctx context.Context

	id string // the request id (requestID)
	// semBucket is the semantic bucket (hex) the answer's turn joins once
	// stored (semantic.go); "" when none.
	semBucket string
	traceID   string // from the W3C traceparent, when valid
	// span is the request's router span (trace.go); nil when not traced.
	// status and details are those of the immediate response it ended with.
	span    *tracing.Span
	status  int
	details string
	spanID  string // its parent span id
	// envoySpan is the traceparent and tracestate of Envoy's span for this
	// ext_proc stream, when Envoy traces (trace.go).
	envoySpan [2]string
	// logged is what the router learned for the access log so far; an
	// immediate response carries it as its dynamic metadata.
	// (Plain strings: structpb values are built only for an immediate
	// response, the one reader.)
	logged       []loggedField
	loggedArr    [16]loggedField   // logged's first backing array
	cacheControl string            // the request's Cache-Control
	tenant       string            // the tenant header's value, or the client key's tenant
	caller       caller            // identity.go
	headers      map[string]string // routing.headers, for rules
	strip        []string          // client-sent x-llmproc-* headers
	method       string
	path         string
	encoding     string // the request's content-encoding; "" for none or identity
	client       string // the client's API; "" until known means OpenAI
	countTokens  bool   // POST /v1/messages/count_tokens
	feedback     bool   // POST /v1/feedback (feedback.go)
	endpoint     string // one of OpenAI's other APIs (endpoints.go); "" for chat and messages
	// The client's anthropic-version and anthropic-beta, for native attempts.
	anthropicVersion, anthropicBeta string
	// A Gemini client's (gemini.go): the query, its key and alt, the model
	// and method of the path, and whether it streams a JSON array.
	query, geminiKey, geminiAlt string
	geminiModel, geminiMethod   string
	geminiArray                 bool
}

func (r *router) requestID() string { return r.id }

// loggedField is one access-log field the router learned.
type loggedField struct{ k, v string }

// note records an access-log field (an empty value is left out); a field
// noted again takes the new value.
func (r *router) note(k, v string) {
	if v == "" {
		return
	}
	v = strings.Clone(v)
	for i := range r.logged {
		if r.logged[i].k == k {
			r.logged[i].v = v
			return
		}
	}
	if r.logged == nil {
		r.logged = r.loggedArr[:0]
	}
	r.logged = append(r.logged, loggedField{k, v})
}

// noted is the access-log field k as noted, "" when it was not.
func (r *router) noted(k string) string {
	for _, f := range r.logged {
		if f.k == k {
			return f.v
		}
	}
	return ""
}

// immediateMetadata is the dynamic metadata of the router's immediate
// responses: what it learned, for the access log (Envoy stores an
// immediate response's dynamic_metadata before sending the local reply:
// Filter::onReceiveMessage in ext_proc.cc).
func (r *router) immediateMetadata() *structpb.Struct {
	if r.logged == nil {
		return nil
	}
	fields := make(map[string]*structpb.Value, len(r.logged))
	vals := stringValues(len(r.logged))
	for i, f := range r.logged {
		fields[f.k] = vals.at(i, f.v)
	}
	return metadataStruct(fields)
}

// stringValueBatch allocates n structpb string values at once (two
// allocations, not 2n).
type stringValueBatch struct {
	vals  []structpb.Value
	kinds []structpb.Value_StringValue
}

func stringValues(n int) stringValueBatch {
	return stringValueBatch{make([]structpb.Value, n), make([]structpb.Value_StringValue, n)}
}

// at is the batch's value i, set to v.
func (b stringValueBatch) at(i int, v string) *structpb.Value {
	b.kinds[i].StringValue = v
	b.vals[i].Kind = &b.kinds[i]
	return &b.vals[i]
}

func (r *router) clientSchema() string {
	if r.client == "" {
		return clientOpenAI
	}
	return r.client
}

func (r *router) requestHeaders(req *extprocv3.ProcessingRequest, h *extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
	var clen, traceparent, tracestate string
	tenantHeader, dropTenant := r.rt.TenantHeader, "\x00" // "\x00" matches no header
	if tenantHeader == "" {
		tenantHeader = "\x00"
	} else if r.rt.IdentitySource != config.SourceHeader {
		// The source's tenant wins, and a client's tenant header is dropped:
		// it must not reach the provider (or anything behind it) as if
		// llmproc had vouched for it.
		tenantHeader, dropTenant = "\x00", tenantHeader
	}
	if len(r.rt.RouteHeaders) > 0 {
		r.headers = make(map[string]string, len(r.rt.RouteHeaders))
		for _, k := range r.rt.RouteHeaders {
			r.headers[k] = ""
		}
	}
	for _, hv := range h.GetHeaders().GetHeaders() {
		switch k := hv.Key; {
		case k == ":method":
			r.method = string(hv.RawValue)
		case k == ":path":
			r.path, r.query, _ = strings.Cut(string(hv.RawValue), "?")
		case k == "content-length":
			clen = string(hv.RawValue)
		case k == "content-encoding":
			r.encoding = string(hv.RawValue)
		case strings.HasPrefix(k, headerPrefix):
			r.strip = append(r.strip, k)
		case k == "cache-control":
			r.cacheControl = string(hv.RawValue)
		case k == tenantHeader:
			r.tenant = string(hv.RawValue)
		case k == dropTenant:
			r.strip = append(r.strip, k)
		case k == "anthropic-version":
			r.anthropicVersion = string(hv.RawValue)
		case k == "anthropic-beta":
			r.anthropicBeta = string(hv.RawValue)
		case k == "authorization" || k == "x-api-key" || k == "x-goog-api-key":
			r.caller.credentialHeader(k, string(hv.RawValue))
		case k == "x-request-id":
			r.id = string(hv.RawValue)
		case k == "traceparent":
			traceparent = string(hv.RawValue)
			r.traceID, r.spanID = traceID(traceparent), spanID(traceparent)
		case k == "tracestate":
			tracestate = string(hv.RawValue)
		}
		if _, ok := r.headers[hv.Key]; ok {
			r.headers[hv.Key] = string(hv.RawValue)
		}
	}

	// Envoy's HCM gives every request an x-request-id (generate_request_id);
	// without one llmproc makes one and sets it, so that Envoy's access log,
	// the upstream log and the answer's x-llmproc-request-id agree.
	var setID []*corev3.HeaderValueOption
	if r.id == "" {
		r.id = newRequestID()
		setID = []*corev3.HeaderValueOption{header("x-request-id", r.id)}
	}
	var setPath []*corev3.HeaderValueOption
	switch {
	case r.path == "/v1/messages" || strings.HasPrefix(r.path, "/v1/messages/"):
		r.client = clientAnthropic // its errors in Anthropic's shape, unknown paths too
	case geminiPath(r.path) || r.path == "/v1/models" && (r.caller.googAPIKey != "" || strings.Contains(r.query, "key=")):
		r.client = clientGemini // likewise in Google's
		var rest string
		r.geminiKey, r.geminiAlt, rest = geminiQuery(r.query)
		if r.geminiKey != "" {
			// The key never goes further, not even into Envoy's logs.
			p := r.path
			if rest != "" {
				p += "?" + rest
			}
			setPath = []*corev3.HeaderValueOption{header(":path", p)}
			if r.caller.googAPIKey == "" {
				r.caller.googAPIKey = r.geminiKey
			}
		}
	}
	r.note(KeyClient, r.clientSchema())
	r.note(KeyTraceID, r.traceID)
	r.startSpan(traceparent, tracestate)
	if err := r.authenticate(req); err != nil {
		return nil, err
	}
	// Who is calling, for the access log of every answer from here on: a
	// refusal and a cache hit too.
	r.note(KeyCallerTenant, r.tenant)
	r.note(KeyKeyID, r.caller.keyID)
	r.endpoint = openAIEndpoints[r.path]
	switch {
	case storedResponsePath(r.path):
		return r.storedResponse()
	case r.client == clientGemini:
		if resp, err, done := r.geminiHeaders(); done {
			return resp, err
		}
	case r.endpoint != "":
		if r.method != http.MethodPost {
			return nil, methodNotAllowed(r.method, r.path)
		}
	case r.path == "/v1/models" || strings.HasPrefix(r.path, "/v1/models/"):
		if r.method != http.MethodGet {
			return nil, methodNotAllowed(r.method, r.path)
		}
		return r.models(strings.TrimPrefix(strings.TrimPrefix(r.path, "/v1/models"), "/"))
	case r.path == FeedbackPath && r.s.feedback != nil:
		if r.method != http.MethodPost {
			return nil, methodNotAllowed(r.method, r.path)
		}
		if h.EndOfStream {
			return nil, r.s.reject(apierr.BadRequest("missing_body", `The request body is empty; send {"request_id": "…", "score": 1 to 5}.`))
		}
		r.feedback = true
	case r.path == "/v1/chat/completions" || r.path == "/v1/messages" || r.path == countTokensPath:
		if r.method != http.MethodPost {
			return nil, methodNotAllowed(r.method, r.path)
		}
		r.countTokens = r.path == countTokensPath
	default:
		r.s.rejected("unknown_url")
		return nil, apierr.New(http.StatusNotFound, apierr.TypeInvalidRequest, "unknown_url",
			"Invalid URL (%s %s)", r.method, r.path)
	}
	if h.EndOfStream {
		return nil, r.s.reject(apierr.BadRequest("missing_body", "The request body is empty; send a JSON chat completion request."))
	}
	if err := r.checkEncoding(); err != nil {
		return nil, r.s.reject(err)
	}
	// The caller's limit (the key's max_request_bytes, the tenant's
	// identity.tenants[].max_request_bytes, else the config's): the caller
	// is known, authenticate ran above.
	maxBytes, _ := r.maxBytes()
	if cl, err := strconv.ParseInt(clen, 10, 64); err == nil && cl > maxBytes {
		return nil, r.s.reject(r.tooLargeFor(cl))
	}
	var mut *extprocv3.HeaderMutation // none when nothing changes
	if set := append(setID, setPath...); len(set) > 0 || len(r.strip) > 0 {
		mut = &extprocv3.HeaderMutation{SetHeaders: set, RemoveHeaders: r.strip}
	}
	return requestHeadersResponse(&extprocv3.CommonResponse{HeaderMutation: mut}), nil
}

func (r *router) requestBody(b *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
	body := b.Body
	if limit, _ := r.maxBytes(); int64(len(body)) > limit {
		return nil, r.s.reject(r.tooLargeFor(int64(len(body))))
	}
	if r.feedback {
		return r.feedbackCall(body)
	}
	// Validation comes first: nothing is reserved, looked up or routed for a
	// request that should never reach a provider.
	c, verr := r.checkBody(body)
	if verr != nil {
		return nil, r.s.reject(verr)
	}
	body, req := c.body, c.req
	changed := c.decoded // the body Envoy forwards must be replaced
	var unknownPrev string
	if r.endpoint == translate.EndpointResponses || r.endpoint == translate.EndpointInputTokens {
		out, expanded, unknown, err := r.expandPrevious(body, req)
		if err != nil {
			return nil, r.s.reject(err)
		}
		if expanded {
			body, req, changed = out, readChat(out), true
		}
		unknownPrev = unknown
	}
	model := req.model.Str
	if err := r.allowAPI(); err != nil {
		return nil, err
	}
	if err := r.allowModel(model); err != nil {
		return nil, err
	}
	if err := r.allowTools(body); err != nil {
		return nil, err
	}
	d, f, rerr := r.decide(model, body)
	r.spanDecided(model, body)
	r.note(KeyRoute, d.Route)
	r.note(KeyClass, string(f.Class))
	r.note(KeyClassConfidence, confidenceOf(f))
	r.note(KeyRequestedModel, model)
	if d.Pool != nil {
		r.note(KeyPool, d.Pool.Name)
	}
	if rerr != nil {
		return nil, r.s.reject(rerr)
	}
	if d.Target != "" && d.Target != model {
		if err := r.allowModel(d.Target); err != nil {
			return nil, err
		}
	}
	if r.s.metrics != nil {
		r.s.metrics.RouterDecision(d.Route, d.Pool.Name, string(f.Class))
	}
	if err := unknownPrevious(unknownPrev, d.Pool); err != nil {
		return nil, r.s.reject(err)
	}
	if err := r.checkEndpoint(d); err != nil {
		return nil, r.s.reject(err)
	}
	var hit *extprocv3.ProcessingResponse
	var cacheResult, cacheKey, reservation string
	var err error
	switch {
	case r.countTokens && !r.forwardsCountTokens(d.Pool, cmp.Or(d.Target, model)):
		return estimatedCount(r.rt, r.clientSchema(), model, body), nil
	case r.endpoint == translate.EndpointInputTokens && !forwardsInputTokens(d.Pool):
		return estimatedCount(r.rt, countResponses, model, body), nil
	case !r.countTokens && r.endpoint != translate.EndpointInputTokens: // counting tokens is neither cached nor budgeted
		if hit, cacheResult, cacheKey = r.lookup(d, model, req, body); hit != nil {
			r.note(KeyCache, cacheResult)
			return hit, nil
		}
		r.note(KeyCache, cacheResult)
		if reservation, err = r.reserve(d, model, req, body); err != nil {
			r.note("budget", apierr.From(err).Code) // the refusal
			return nil, err
		}
	}
	dec := map[string]string{
		KeyPool: d.Pool.Name, KeyRoute: d.Route, KeyClient: r.clientSchema(), KeyTenant: r.tenantLabel(),
		KeyRequestedModel: model, KeyClass: string(f.Class), KeyClassConfidence: confidenceOf(f), KeyTarget: d.Target,
		KeyCache: cacheResult, KeyCacheKey: cacheKey, KeySemanticBucket: r.semBucket, KeyReservation: reservation,
		KeyCallerTenant: r.tenant, KeyKeyID: r.caller.keyID,
		KeyRequestID: r.id, KeyTraceID: r.traceID, KeySpanID: r.spanID,
	}
	// Streams get stream_options.include_usage here, once for every
	// attempt, rather than a body rewrite in each (bodyless.go).
	estimate := len(body)
	body, added := r.withStreamUsage(body, req, d.Pool)
	changed = changed || added
	dec[KeyBody] = noteBody(body, estimate, req, added)
	r.spanContext(dec)
	if r.client == clientAnthropic {
		dec[KeyAnthropicVersion], dec[KeyAnthropicBeta] = r.anthropicVersion, r.anthropicBeta
	}
	if r.client == clientGemini {
		dec[KeyGeminiMethod] = r.geminiMethod
		if r.geminiArray {
			dec[KeyGeminiFraming] = "array"
		}
	}
	if r.countTokens {
		dec[KeyEndpoint] = endpointCountTokens
	} else if r.endpoint != "" {
		dec[KeyEndpoint] = r.endpoint
	}
	// Empty decisions are left out, but route and class are always written,
	// as the access log has always shown them.
	n, size := 0, 0
	for k, v := range dec {
		if v != "" || k == KeyRoute || k == KeyClass {
			n, size = n+1, size+len(v)
		}
	}
	// The values are copied (some point into the body) into one buffer.
	buf := make([]byte, 0, size)
	fields := make(map[string]*structpb.Value, n)
	vals := stringValues(n)
	i := 0
	for k, v := range dec {
		if v != "" || k == KeyRoute || k == KeyClass {
			if v != "" {
				start := len(buf)
				buf = append(buf, v...)
				v = unsafe.String(&buf[start], len(v))
			}
			fields[k] = vals.at(i, v)
			i++
		}
	}
	// Only the pool travels as a header, for Envoy to route on; the upstream
	// role reads every decision from the metadata (see decision.go).
	reply := &extprocv3.CommonResponse{
		HeaderMutation:  &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{header(HeaderPool, d.Pool.Name)}},
		ClearRouteCache: true,
	}
	if changed {
		decodedBody(reply, body)
	}
	return &extprocv3.ProcessingResponse{
		Response:        &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: reply}},
		DynamicMetadata: metadataStruct(fields),
	}, nil
}

// decide computes the request's features (classifying it only when a rule
// needs more than the model name) and applies the routing rules.
func (r *router) decide(model string, body []byte) (config.Decision, route.Features, *apierr.Error) {
	f := route.Features{Model: model}
	if r.rt.NeedsFeatures() { // checkBody has validated the body
		if r.client == clientGemini { // the features of its chat-completions form
			if hub := geminiHub(body, model); hub != nil && !isGeminiEmbed(r.geminiMethod) {
				body = hub
			}
		}
		f = r.rt.Classifier.FeaturesOfValid(body)
		if r.client == clientGemini {
			f.Model = model
		}
	}
	f.Client, f.Tenant, f.Headers = r.clientSchema(), r.tenant, r.headers
	team, tier := r.caller.team, r.caller.tier
	if t, ti := r.rt.TenantAttrs(r.tenant); team == "" || tier == "" {
		team, tier = cmp.Or(team, t), cmp.Or(tier, ti)
	}
	f.Caller = route.CallerOf(r.tenant, team, tier, r.rt.IdentitySource, r.caller.keyID)
	d, err := r.rt.Decide(&f)
	if d.EvalError != "" {
		r.s.log.Warn("routing rule condition failed; it counted as no match", "request_id", r.id, "err", d.EvalError)
	}
	if e := config.DecisionError(d, err, model); e != nil {
		return d, f, e
	}
	return d, f, nil
}

func (r *router) responseHeaders(*extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
	return responseHeadersResponse(&extprocv3.CommonResponse{}), nil
}

func (r *router) responseBody(*extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
	return responseBodyResponse(&extprocv3.CommonResponse{}), nil
}

func (r *router) done(err error) { r.endSpan(err) }

// models answers GET /v1/models and /v1/models/{id} from the registry.
func (r *router) models(id string) (*extprocv3.ProcessingResponse, error) {
	var b []byte
	if id == "" {
		b = append(b, `{"object":"list","data":[`...)
		n := 0
		for _, m := range r.rt.Models {
			if !r.mayUse(m.Name) {
				continue
			}
			if n++; n > 1 {
				b = append(b, ',')
			}
			b = appendModel(b, m)
		}
		b = append(b, "]}"...)
	} else {
		m, ok := r.rt.Model(id)
		if !ok || !r.mayUse(id) {
			return nil, r.s.reject(&apierr.Error{Status: http.StatusNotFound, Type: apierr.TypeInvalidRequest, Code: "model_not_found", Param: "model",
				Message: "The model `" + id + "` does not exist or you do not have access to it."})
		}
		b = appendModel(b, m)
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
		ImmediateResponse: &extprocv3.ImmediateResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_OK},
			Headers: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
				header("content-type", "application/json"),
				header("content-length", strconv.Itoa(len(b))),
			}},
			Body:    b,
			Details: "llmproc_models",
		},
	}}, nil
}

func appendModel(b []byte, m *config.RModel) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendQuote(b, m.Name)
	b = append(b, `,"object":"model","created":0,"owned_by":`...)
	b = strconv.AppendQuote(b, m.OwnedBy)
	if m.Kind == config.KindEmbedding {
		b = append(b, `,"kind":"embedding"`...)
	}
	return append(b, '}')
}

// chatRequest is what llmproc reads from a chat completion body. Both roles
// read it in one pass over the top-level keys.
type chatRequest struct {
	model, messages, stream, streamOptions, maxTokens gjson.Result
	maxOutputTokens, previousResponseID               gjson.Result // Responses API
	// The first of each (as gjson.Get finds them), for the cache policy
	// and the budget estimate, which read them so.
	temperature, seed, maxCompletionTokens gjson.Result
}

// readChat reads the top-level fields llmproc needs in a single pass. The
// results point into body (no copy), so they live as long as body does.
func readChat(body []byte) chatRequest {
	var r chatRequest
	gjson.Parse(unsafe.String(unsafe.SliceData(body), len(body))).ForEach(func(k, v gjson.Result) bool {
		r.set(k.Str, v)
		return true
	})
	return r
}

// set keeps a top-level member llmproc reads (the last of duplicates wins).
func (r *chatRequest) set(key string, v gjson.Result) {
	switch key {
	case "model":
		r.model = v
	case "messages":
		r.messages = v
	case "stream":
		r.stream = v
	case "stream_options":
		r.streamOptions = v
	case "max_tokens":
		r.maxTokens = v
	case "max_output_tokens":
		r.maxOutputTokens = v
	case "previous_response_id":
		r.previousResponseID = v
	case "temperature":
		if !r.temperature.Exists() {
			r.temperature = v
		}
	case "seed":
		if !r.seed.Exists() {
			r.seed = v
		}
	case "max_completion_tokens":
		if !r.maxCompletionTokens.Exists() {
			r.maxCompletionTokens = v
		}
	}
}

// usageRequested reports stream_options.include_usage: true.
func (r chatRequest) usageRequested() bool {
	return r.streamOptions.IsObject() && r.streamOptions.Get("include_usage").Type == gjson.True
}

func tooLarge(got, limit int64) *apierr.Error {
	return apierr.New(http.StatusRequestEntityTooLarge, apierr.TypeInvalidRequest, "request_too_large",
		"The request body is %d bytes; the limit is %d bytes.", got, limit)
}

func methodNotAllowed(method, path string) *apierr.Error {
	return apierr.New(http.StatusMethodNotAllowed, apierr.TypeInvalidRequest, "method_not_allowed",
		"Method %s is not allowed for %s.", method, path)
}

// reject counts a rejection by its code and returns the error unchanged.
func (s *Server) reject(e *apierr.Error) *apierr.Error {
	s.rejected(e.Code)
	return e
}

func (s *Server) rejected(code string) {
	if s.metrics != nil {
		s.metrics.RouterReject(code)
	}
}

// metadataStruct wraps fields in the llmproc dynamic-metadata namespace.
func metadataStruct(fields map[string]*structpb.Value) *structpb.Struct {
	return &structpb.Struct{Fields: map[string]*structpb.Value{MetadataNamespace: structpb.NewStructValue(&structpb.Struct{Fields: fields})}}
}

// tenantLabel is the bounded tenant value for cost metrics: a tenant listed
// in metrics.tenants, "other", or "" when none are listed.
func (r *router) tenantLabel() string {
	ts := r.rt.Source.Metrics.Tenants
	switch {
	case len(ts) == 0:
		return ""
	case slices.Contains(ts, r.tenant):
		return r.tenant
	}
	return "other"
}

// confidenceOf formats the class's probability for the metadata, "" when
// the request was not classified.
func confidenceOf(f route.Features) string {
	if f.Class == "" {
		return ""
	}
	return strconv.FormatFloat(f.Confidence, 'f', 3, 64)
}
