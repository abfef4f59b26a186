package translate

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/creds"
)

// bedrock speaks Amazon Bedrock's Converse API: POST
// {base}/model/{modelId}/converse (JSON) or /converse-stream (AWS
// event-stream frames), SigV4-signed over the translated body.
type bedrock struct {
	now    func() time.Time
	newID  func() string
	chain  *awsChain
	signer *v4.Signer
}

// newBedrock returns a translator with its own caches: the AWS default
// credential chain per backend, and the signer's derived signing keys (one
// HMAC chain per key, day and region, instead of one per request). A Set
// keeps one for the server's lifetime.
func newBedrock(o creds.Options) bedrock {
	return bedrock{now: time.Now, newID: bedrockID, signer: v4.NewSigner(),
		chain: &awsChain{load: loadDefaultChain, creds: creds.New[aws.Credentials](o)}}
}

const (
	bedrockService  = "bedrock"
	eventStreamType = "application/vnd.amazon.eventstream"
	// maxBedrockJSON bounds a buffered (non-streamed) answer.
	maxBedrockJSON = 32 << 20
	// bedrockMaxFrame bounds one event-stream frame (AWS allows 16 MiB payloads).
	bedrockMaxFrame = 24 << 20
	// awsCredentialTimeout bounds a refresh from the default chain (IMDS, STS).
	awsCredentialTimeout = 10 * time.Second
)

func (b bedrock) Request(r *Request) (*Upstream, error) {
	be := r.Backend
	body, err := converseBody(r.Body, be, r.Model)
	if err != nil {
		return nil, err
	}
	op, accept := "/converse", "application/json"
	if r.Stream {
		op, accept = "/converse-stream", eventStreamType
	}
	return b.signed(be, be.BasePath+"/model/"+awsEscape(r.Model)+op, body, accept)
}

// signed is the SigV4-signed POST of body to path, asking for accept.
func (b bedrock) signed(be *config.RBackend, path string, body []byte, accept string) (*Upstream, error) {
	creds, err := b.credentials(be)
	if err != nil {
		return nil, err
	}
	signed, err := b.sign(be, path, body, creds)
	if err != nil {
		return nil, err
	}
	up := &Upstream{Path: path, Body: body, SetHeaders: make([][2]string, 0, 4)}
	up.SetHeaders = append(up.SetHeaders, [2]string{"accept", accept})
	up.SetHeaders = append(up.SetHeaders, signed...)
	return up, nil
}

// Headers: SigV4's (x-amz-content-sha256 included, which S3-style signers
// add) and the event-stream accept.
func (bedrock) Headers() []string {
	return []string{"accept", "authorization", "x-amz-content-sha256", "x-amz-date", "x-amz-security-token"}
}

// sign returns the SigV4 headers for a POST of body to path on the backend.
// Only host, x-amz-date and x-amz-security-token are signed, so headers
// Envoy adds on the way (x-request-id, x-forwarded-*) cannot break it.
func (b bedrock) sign(be *config.RBackend, path string, body []byte, creds aws.Credentials) ([][2]string, error) {
	plain, err := url.PathUnescape(path)
	if err != nil {
		return nil, apierr.Internal(fmt.Errorf("bedrock path %q: %w", path, err))
	}
	scheme := "http"
	if be.TLS {
		scheme = "https"
	}
	host := be.Authority()
	req := &http.Request{
		Method: http.MethodPost,
		URL:    &url.URL{Scheme: scheme, Host: host, Path: plain, RawPath: path},
		Host:   host,
		Header: http.Header{},
	}
	sum := sha256.Sum256(body)
	err = b.signer.SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]),
		bedrockService, be.Bedrock.Region, b.now())
	if err != nil {
		return nil, apierr.Internal(fmt.Errorf("bedrock backend %q: signing: %w", be.Name, err))
	}
	out := [][2]string{
		{"authorization", req.Header.Get("Authorization")},
		{"x-amz-date", req.Header.Get("X-Amz-Date")},
	}
	if tok := req.Header.Get("X-Amz-Security-Token"); tok != "" {
		out = append(out, [2]string{"x-amz-security-token", tok})
	}
	return out, nil
}

// credentials reads the backend's credential as
// "ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]", or else asks the AWS
// default chain (cached per backend, refreshed before expiry).
func (b bedrock) credentials(be *config.RBackend) (aws.Credentials, error) {
	if c := strings.TrimSpace(be.Credential); c != "" {
		parts := strings.SplitN(c, ":", 3)
		if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
			return aws.Credentials{}, apierr.Internal(fmt.Errorf("bedrock backend %q: credential is not ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]", be.Name))
		}
		cr := aws.Credentials{AccessKeyID: parts[0], SecretAccessKey: parts[1], Source: "llmproc"}
		if len(parts) == 3 {
			cr.SessionToken = parts[2]
		}
		return cr, nil
	}
	key := be.Name + "\x00" + be.Bedrock.Region
	if cr, ok := b.chain.creds.Get(key); ok {
		return cr, nil
	}
	b.chain.keep(be.Name, be.Bedrock.Region)
	ctx, cancel := context.WithTimeout(context.Background(), awsCredentialTimeout)
	defer cancel()
	cr, err := b.chain.creds.Wait(ctx, key)
	if err != nil {
		return aws.Credentials{}, apierr.Internal(fmt.Errorf("bedrock backend %q: AWS default credentials: %w", be.Name, err))
	}
	return cr, nil
}

// defaultChain reports whether a Bedrock backend signs with the AWS default
// chain's credentials rather than its own.
func defaultChain(be *config.RBackend) bool { return strings.TrimSpace(be.Credential) == "" }

// awsChain holds one credentials provider per backend and region, loaded
// once from the AWS default chain, and its credentials, fetched in the
// background (creds) at start (Set.Prepare) and ahead of each expiry.
type awsChain struct {
	load  func(ctx context.Context, region string) (aws.CredentialsProvider, error)
	creds *creds.Cache[aws.Credentials] // by backend and region
	mu    sync.Mutex
	m     map[string]aws.CredentialsProvider
}

// keep starts keeping a backend's credentials fresh.
func (c *awsChain) keep(backend, region string) {
	key := backend + "\x00" + region
	if c.creds.Has(key) {
		return
	}
	c.creds.Ensure(key, func(ctx context.Context) (aws.Credentials, time.Time, error) {
		p, err := c.provider(backend, region)
		if err != nil {
			return aws.Credentials{}, time.Time{}, err
		}
		if cc, ok := p.(*aws.CredentialsCache); ok {
			cc.Invalidate() // creds is the cache; the SDK's would hand back what it holds
		}
		cr, err := p.Retrieve(ctx)
		if err != nil || !cr.CanExpire {
			return cr, time.Time{}, err
		}
		return cr, cr.Expires, nil
	})
}

func (c *awsChain) provider(backend, region string) (aws.CredentialsProvider, error) {
	key := backend + "\x00" + region
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.m[key]; ok {
		return p, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), awsCredentialTimeout)
	defer cancel()
	p, err := c.load(ctx, region)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fmt.Errorf("no credentials provider found")
	}
	if c.m == nil {
		c.m = map[string]aws.CredentialsProvider{}
	}
	c.m[key] = p
	return p, nil
}

func loadDefaultChain(ctx context.Context, region string) (aws.CredentialsProvider, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		return nil, err
	}
	return cfg.Credentials, nil
}

// awsEscape percent-encodes everything but RFC 3986 unreserved characters,
// as AWS path labels are encoded (a model ARN's ':' and '/' included).
func awsEscape(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// bedrockID returns a fresh OpenAI-style completion id.
func bedrockID() string {
	var r [12]byte
	_, _ = rand.Read(r[:])
	return "chatcmpl-" + hex.EncodeToString(r[:])
}

// converse collects the Converse request while the OpenAI body is read.
type converse struct {
	be       *config.RBackend
	system   []byte // comma-separated SystemContentBlocks
	out      []byte // the body so far: {"messages":[ and the messages
	role     string // the role of the open message; "" before the first
	toolUse  bool   // the history has toolUse or toolResult blocks
	tools    []byte
	choice   string // toolChoice JSON; "" leaves the model's default (auto)
	noTools  bool   // tool_choice none
	maxTok   string
	temp     string
	topP     string
	stops    []byte
	hasStops bool
	budget   int64 // thinking budget_tokens; 0: no thinking
	// lastToolsUnsigned: the last assistant message calls tools without
	// signed reasoning, which Claude refuses with thinking on.
	lastToolsUnsigned bool
}

// block readies the body for one more content block of role, which the
// caller then appends to c.out: it continues the open message when the role
// repeats (Bedrock wants strict alternation; parallel tool results must
// share one user message), else closes it and opens a new one.
func (c *converse) block(role string) {
	switch {
	case c.role == role:
		c.out = append(c.out, ',')
		return
	case c.role != "":
		c.out = append(c.out, "]},"...)
	}
	c.role = role
	c.out = append(c.out, `{"role":"`...)
	c.out = append(c.out, role...)
	c.out = append(c.out, `","content":[`...)
}

// add appends one content block of role.
func (c *converse) add(role string, block []byte) {
	c.block(role)
	c.out = append(c.out, block...)
}

// addText appends a text block of role.
func (c *converse) addText(role, text string) {
	c.block(role)
	c.out = brTextBlock(c.out, text)
}

// unsupported returns nil when the backend drops param (skip it), else the 400.
func (c *converse) unsupported(param string) error { return Unsupported(c.be, param) }

// converseBody translates an OpenAI chat-completions body into a Converse
// request body.
func converseBody(body []byte, be *config.RBackend, model string) ([]byte, error) {
	if !gjson.ValidBytes(body) {
		return nil, apierr.BadRequest("invalid_json", "The request body is not valid JSON.")
	}
	c := &converse{be: be, out: make([]byte, 0, len(body)+512)}
	var effort gjson.Result
	c.out = append(c.out, `{"messages":[`...)
	var err error
	var toolsRaw, choiceRaw gjson.Result
	// No copy of the body: the gjson results point into it, and everything
	// kept from them is written into c.out before this function returns.
	gjson.Parse(unsafe.String(unsafe.SliceData(body), len(body))).ForEach(func(k, v gjson.Result) bool {
		if v.Type == gjson.Null {
			return true
		}
		switch k.Str {
		case "messages":
			err = c.messages(v)
		case "max_tokens":
			if c.maxTok == "" {
				c.maxTok, err = brPositiveInt(v, "max_tokens")
			}
		case "max_completion_tokens":
			c.maxTok, err = brPositiveInt(v, "max_completion_tokens")
		case "temperature":
			c.temp, err = brNumber(v, "temperature")
		case "top_p":
			c.topP, err = brNumber(v, "top_p")
		case "stop":
			err = c.stop(v)
		case "tools":
			toolsRaw = v
		case "tool_choice":
			choiceRaw = v
		case "n":
			if v.Type != gjson.Number || v.Int() != 1 {
				err = c.unsupported("n")
			}
		case "parallel_tool_calls":
			if v.Type == gjson.False {
				err = c.unsupported("parallel_tool_calls")
			}
		case "response_format":
			if t := v.Get("type").Str; t != "text" {
				err = c.unsupported("response_format")
			}
		case "logprobs":
			if v.Type == gjson.True {
				err = c.unsupported("logprobs")
			}
		case "frequency_penalty", "presence_penalty":
			if v.Type != gjson.Number || v.Float() != 0 {
				err = c.unsupported(k.Str)
			}
		case "reasoning_effort":
			// Thinking goes in additionalModelRequestFields, in the
			// model's own terms: Anthropic's for Claude. Other models'
			// reasoning settings differ by family.
			if brClaude(model) {
				effort = v
			} else {
				err = c.unsupported(k.Str)
			}
		case "seed", "top_logprobs", "logit_bias", "audio", "prediction", "web_search_options", "functions", "function_call":
			err = c.unsupported(k.Str)
		case "modalities":
			v.ForEach(func(_, m gjson.Result) bool {
				if m.Str != "text" {
					err = c.unsupported("modalities")
					return false
				}
				return true
			})
		}
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	if toolsRaw.Exists() {
		if err := c.toolList(toolsRaw); err != nil {
			return nil, err
		}
	}
	if choiceRaw.Exists() && len(c.tools) > 0 {
		if err := c.toolChoice(choiceRaw); err != nil {
			return nil, err
		}
	}
	if err := c.thinking(effort, choiceRaw); err != nil {
		return nil, err
	}
	return c.render(), nil
}

// brClaude reports whether a Bedrock model id (or inference profile, or
// ARN) names a Claude model, which takes Anthropic's thinking.
func brClaude(model string) bool {
	m := strings.ToLower(model)
	return strings.Contains(m, "anthropic.") || strings.Contains(m, "claude")
}

// thinking applies a reasoning_effort to a Claude request as Anthropic's
// Messages translator does (reasoning.go): the budget in
// additionalModelRequestFields.thinking, maxTokens above it, temperature
// dropped and topP raised to 0.95; none with a forced tool or after an
// unsigned tool-use turn.
func (c *converse) thinking(effort, choice gjson.Result) error {
	_, budget, err := hubEffort(effort)
	if err != nil || budget == 0 || claudeForcedToolChoice(choice) || c.lastToolsUnsigned {
		return err
	}
	maxTokens := int64(brDefaultMaxTokens)
	if c.maxTok != "" {
		maxTokens, _ = strconv.ParseInt(c.maxTok, 10, 64)
	}
	think := claudeThinkingFor(budget, maxTokens)
	c.budget, c.maxTok = think.budget, strconv.FormatInt(think.maxTokens, 10)
	if c.temp != "" {
		if _, keep := claudeSampling("temperature", gjson.Parse(c.temp)); !keep {
			c.temp = ""
		}
	}
	if c.topP != "" {
		c.topP, _ = claudeSampling("top_p", gjson.Parse(c.topP))
	}
	return nil
}

// brDefaultMaxTokens is the maxTokens sent with thinking when the client
// set none (Anthropic's budget must stay below it).
const brDefaultMaxTokens = 4096

func brPositiveInt(v gjson.Result, param string) (string, error) {
	if v.Type != gjson.Number || v.Int() < 1 || float64(v.Int()) != v.Float() {
		return "", brParamError(param, "'%s' must be a positive integer.", param)
	}
	return strconv.FormatInt(v.Int(), 10), nil
}

func brNumber(v gjson.Result, param string) (string, error) {
	if v.Type != gjson.Number {
		return "", brParamError(param, "'%s' must be a number.", param)
	}
	return v.Raw, nil
}

func brParamError(param, format string, args ...any) *apierr.Error {
	e := apierr.BadRequest("invalid_value", format, args...)
	e.Param = param
	return e
}

func (c *converse) stop(v gjson.Result) error {
	switch {
	case v.Type == gjson.String:
		c.stops = appendJSONString(c.stops, v.Str)
		c.hasStops = true
	case v.IsArray():
		var err error
		v.ForEach(func(_, s gjson.Result) bool {
			if s.Type != gjson.String {
				err = brParamError("stop", "'stop' must be a string or an array of strings.")
				return false
			}
			if c.hasStops {
				c.stops = append(c.stops, ',')
			}
			c.stops = appendJSONString(c.stops, s.Str)
			c.hasStops = true
			return true
		})
		return err
	default:
		return brParamError("stop", "'stop' must be a string or an array of strings.")
	}
	return nil
}

func (c *converse) messages(v gjson.Result) error {
	if !v.IsArray() {
		return brParamError("messages", "'messages' must be an array.")
	}
	var err error
	i := 0
	v.ForEach(func(_, m gjson.Result) bool {
		err = c.message(i, m)
		i++
		return err == nil
	})
	return err
}

func (c *converse) message(i int, m gjson.Result) error {
	param := msgRef(i)
	role := m.Get("role").Str
	content := m.Get("content")
	switch role {
	case "system", "developer":
		return c.systemText(param, content)
	case "user":
		return c.userContent(param, content)
	case "assistant":
		return c.assistant(param, m, content)
	case "tool":
		return c.toolResult(param, m, content)
	case "function":
		return c.unsupported("functions")
	}
	return brParamError(param.String()+".role", "Unknown role %q in %s.", role, param)
}

// msgRef names messages[i] in errors; the name is built only when needed.
type msgRef int

func (m msgRef) String() string { return "messages[" + strconv.Itoa(int(m)) + "]" }

// brTexts calls fn for every text of a content that is a string or an array of
// text parts (other part types are reported by the caller's kinds).
func brTexts(param msgRef, content gjson.Result, kinds string, fn func(part gjson.Result, text string) error) error {
	if content.Type == gjson.String {
		return fn(gjson.Result{}, content.Str)
	}
	if !content.Exists() || content.Type == gjson.Null {
		return nil
	}
	if !content.IsArray() {
		return brParamError(param.String()+".content", "'%s.content' must be a string or an array of content parts.", param)
	}
	var err error
	j := 0
	content.ForEach(func(_, p gjson.Result) bool {
		t := p.Get("type").Str
		switch {
		case t == "text" || t == "refusal" && strings.Contains(kinds, "refusal"):
			key := t
			err = fn(p, p.Get(key).Str)
		case strings.Contains(kinds, "media"):
			err = fn(p, "")
		default:
			err = brParamError(fmt.Sprintf("%s.content[%d].type", param, j), "Content part type %q is not allowed in %s.", t, param)
		}
		j++
		return err == nil
	})
	return err
}

func brTextBlock(b []byte, text string) []byte {
	b = append(b, `{"text":`...)
	b = appendJSONString(b, text)
	return append(b, '}')
}

func (c *converse) systemText(param msgRef, content gjson.Result) error {
	return brTexts(param, content, "", func(_ gjson.Result, text string) error {
		if text == "" {
			return nil
		}
		if len(c.system) > 0 {
			c.system = append(c.system, ',')
		}
		c.system = brTextBlock(c.system, text)
		return nil
	})
}

func (c *converse) userContent(param msgRef, content gjson.Result) error {
	j := -1
	return brTexts(param, content, "media", func(p gjson.Result, text string) error {
		j++
		if !p.Exists() || p.Get("type").Str == "text" {
			if text != "" {
				c.addText("user", text)
			}
			return nil
		}
		partParam := fmt.Sprintf("%s.content[%d]", param, j)
		switch p.Get("type").Str {
		case "image_url":
			block, err := c.image(partParam, p.Get("image_url.url").Str)
			if err != nil || block == nil {
				return err
			}
			c.add("user", block)
			return nil
		case "input_audio":
			return c.unsupported("input_audio")
		case "file":
			return c.unsupported("file")
		}
		return brParamError(partParam+".type", "Unknown content part type %q.", p.Get("type").Str)
	})
}

// image turns a data URL into a Converse image block. Bedrock takes only
// inline bytes (or S3 locations), so http(s) URLs are unsupported; nil with
// a nil error means the backend drops them.
func (c *converse) image(param, u string) ([]byte, error) {
	rest, ok := strings.CutPrefix(u, "data:")
	if !ok {
		if err := c.unsupported("image_url"); err != nil {
			e := apierr.From(err)
			e.Param = param + ".image_url"
			e.Message = fmt.Sprintf("Image URLs are not supported by backend %q (schema bedrock); send the image as a base64 data URL, or list image_url in the backend's drop_params to drop such images.", c.be.Name)
			return nil, e
		}
		return nil, nil
	}
	meta, data, ok := strings.Cut(rest, ",")
	mime, isB64 := strings.CutSuffix(meta, ";base64")
	if !ok || !isB64 {
		return nil, brParamError(param+".image_url", "The image data URL must be base64-encoded (data:image/png;base64,...).")
	}
	var format string
	switch strings.ToLower(mime) {
	case "image/png":
		format = "png"
	case "image/jpeg", "image/jpg":
		format = "jpeg"
	case "image/gif":
		format = "gif"
	case "image/webp":
		format = "webp"
	default:
		return nil, brParamError(param+".image_url", "Image type %q is not supported by Bedrock (png, jpeg, gif, webp).", mime)
	}
	b := make([]byte, 0, len(data)+64)
	b = append(b, `{"image":{"format":"`...)
	b = append(b, format...)
	b = append(b, `","source":{"bytes":`...)
	b = appendJSONString(b, data)
	return append(b, "}}}"...), nil
}

func (c *converse) assistant(param msgRef, m, content gjson.Result) error {
	// Signed reasoning first, as Claude wants it back.
	blocks := hubThinkingBlocks(m.Get("thinking_blocks"))
	for _, tb := range blocks {
		c.block("assistant")
		c.out = appendBedrockReasoning(c.out, tb)
	}
	calls := m.Get("tool_calls")
	c.lastToolsUnsigned = len(blocks) == 0 && calls.IsArray() && len(calls.Array()) > 0
	err := brTexts(param, content, "refusal", func(_ gjson.Result, text string) error {
		if text != "" {
			c.addText("assistant", text)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !calls.Exists() || calls.Type == gjson.Null {
		return nil
	}
	j := 0
	calls.ForEach(func(_, tc gjson.Result) bool {
		p := func() string { return fmt.Sprintf("%s.tool_calls[%d]", param, j-1) }
		j++
		id, name := tc.Get("id").Str, tc.Get("function.name").Str
		if id == "" || name == "" {
			err = brParamError(p(), "A tool call needs an id and a function name.")
			return false
		}
		args := strings.TrimSpace(tc.Get("function.arguments").Str)
		if args == "" {
			args = "{}"
		}
		if !gjson.Valid(args) || !gjson.Parse(args).IsObject() {
			err = brParamError(p()+".function.arguments", "Tool call arguments must be a JSON object for backend %q (schema bedrock).", c.be.Name)
			return false
		}
		c.block("assistant")
		b := append(c.out, `{"toolUse":{"toolUseId":`...)
		b = appendJSONString(b, id)
		b = append(b, `,"name":`...)
		b = appendJSONString(b, name)
		b = append(b, `,"input":`...)
		b = append(b, args...)
		c.out = append(b, "}}"...)
		c.toolUse = true
		return true
	})
	return err
}

// appendBedrockReasoning writes a hub thinking block as Converse's
// reasoningContent: reasoningText with its signature, or redactedContent
// (the hub's data is Bedrock's base64, as Bedrock's answers gave it).
func appendBedrockReasoning(b []byte, tb ThinkingBlock) []byte {
	if tb.Kind == "redacted_thinking" {
		b = append(b, `{"reasoningContent":{"redactedContent":`...)
		b = appendJSONString(b, tb.Data)
		return append(b, "}}"...)
	}
	b = append(b, `{"reasoningContent":{"reasoningText":{"text":`...)
	b = appendJSONString(b, tb.Text)
	b = append(b, `,"signature":`...)
	b = appendJSONString(b, tb.Signature)
	return append(b, "}}}"...)
}

func (c *converse) toolResult(param msgRef, m, content gjson.Result) error {
	id := m.Get("tool_call_id").Str
	if id == "" {
		return brParamError(param.String()+".tool_call_id", "A tool message needs a tool_call_id.")
	}
	c.block("user")
	b := append(c.out, `{"toolResult":{"toolUseId":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"content":[`...)
	n := 0
	err := brTexts(param, content, "", func(_ gjson.Result, text string) error {
		if n > 0 {
			b = append(b, ',')
		}
		b = brTextBlock(b, text)
		n++
		return nil
	})
	if err != nil {
		return err
	}
	if n == 0 {
		b = brTextBlock(b, "")
	}
	c.out = append(b, "]}}"...)
	c.toolUse = true
	return nil
}

func (c *converse) toolList(v gjson.Result) error {
	if !v.IsArray() {
		return brParamError("tools", "'tools' must be an array.")
	}
	var err error
	j := 0
	v.ForEach(func(_, t gjson.Result) bool {
		p := fmt.Sprintf("tools[%d]", j)
		j++
		if typ := t.Get("type").Str; typ != "function" {
			err = brParamError(p+".type", "Tool type %q is not supported by backend %q (schema bedrock); only function tools are.", typ, c.be.Name)
			return false
		}
		name := t.Get("function.name").Str
		if name == "" {
			err = brParamError(p+".function.name", "A function tool needs a name.")
			return false
		}
		if len(c.tools) > 0 {
			c.tools = append(c.tools, ',')
		}
		c.tools = append(c.tools, `{"toolSpec":{"name":`...)
		c.tools = appendJSONString(c.tools, name)
		if d := t.Get("function.description"); d.Type == gjson.String && d.Str != "" {
			c.tools = append(c.tools, `,"description":`...)
			c.tools = appendJSONString(c.tools, d.Str)
		}
		c.tools = append(c.tools, `,"inputSchema":{"json":`...)
		if ps := t.Get("function.parameters"); ps.IsObject() {
			c.tools = append(c.tools, ps.Raw...)
		} else {
			c.tools = append(c.tools, `{"type":"object","properties":{}}`...)
		}
		c.tools = append(c.tools, "}}}"...)
		return true
	})
	return err
}

func (c *converse) toolChoice(v gjson.Result) error {
	if v.Type == gjson.String {
		switch v.Str {
		case "auto":
			c.choice = `{"auto":{}}`
		case "required":
			c.choice = `{"any":{}}`
		case "none":
			// Bedrock has no "none"; sending no tools is the same, unless
			// the history holds tool blocks, which need toolConfig.
			if c.toolUse {
				return c.unsupported("tool_choice")
			}
			c.noTools = true
		default:
			return brParamError("tool_choice", "Unknown tool_choice %q.", v.Str)
		}
		return nil
	}
	name := v.Get("function.name").Str
	if v.Get("type").Str != "function" || name == "" {
		return brParamError("tool_choice", "tool_choice must be auto, none, required or {\"type\":\"function\",\"function\":{\"name\":...}}.")
	}
	b := append([]byte(nil), `{"tool":{"name":`...)
	b = appendJSONString(b, name)
	c.choice = string(append(b, "}}"...))
	return nil
}

// render finishes the body: it closes the messages and appends the rest.
func (c *converse) render() []byte {
	b := c.out
	if c.role != "" {
		b = append(b, "]}"...)
	}
	b = append(b, ']')
	if len(c.system) > 0 {
		b = append(b, `,"system":[`...)
		b = append(b, c.system...)
		b = append(b, ']')
	}
	if c.maxTok != "" || c.temp != "" || c.topP != "" || c.hasStops {
		b = append(b, `,"inferenceConfig":{`...)
		sep := false
		field := func(name, raw string) {
			if raw == "" {
				return
			}
			if sep {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = append(b, name...)
			b = append(b, `":`...)
			b = append(b, raw...)
			sep = true
		}
		field("maxTokens", c.maxTok)
		field("temperature", c.temp)
		field("topP", c.topP)
		if c.hasStops {
			if sep {
				b = append(b, ',')
			}
			b = append(b, `"stopSequences":[`...)
			b = append(b, c.stops...)
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if len(c.tools) > 0 && !c.noTools {
		b = append(b, `,"toolConfig":{"tools":[`...)
		b = append(b, c.tools...)
		b = append(b, ']')
		if c.choice != "" {
			b = append(b, `,"toolChoice":`...)
			b = append(b, c.choice...)
		}
		b = append(b, '}')
	}
	if c.budget > 0 {
		b = append(b, `,"additionalModelRequestFields":{"thinking":`...)
		b = appendClaudeThinking(b, c.budget)
		b = append(b, '}')
	}
	return append(b, '}')
}
