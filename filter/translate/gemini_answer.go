package translate

// The gemini backend's answer side (also vertex's): generateContent answers,
// SSE streams and Google errors turned into the chat-completions hub form.
// The request side is in gemini.go.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/sse"
	"github.com/llmproc/llmproc/filter/usage"
)

// geminiAnswer reads a Gemini (or Vertex) response.
func geminiAnswer(r *Response, now func() time.Time) Answer {
	if r.Status < 200 || r.Status >= 300 {
		return Answer{Body: &errorBody{status: r.Status, norm: geminiErrorJSON}, ContentType: "application/json"}
	}
	if now == nil {
		now = time.Now
	}
	t := now()
	if r.Stream {
		g := &geminiStream{s: Stream{Model: r.Model, Created: t.Unix(), HideReasoning: !r.Reasoning}, fallbackID: fallbackID(t)}
		g.onEvent = g.event
		return Answer{Body: g, ContentType: "text/event-stream"}
	}
	return Answer{Body: &geminiJSON{c: Completion{Model: r.Model, Created: t.Unix(), ID: fallbackID(t), HideReasoning: !r.Reasoning}}, ContentType: "application/json"}
}

// fallbackID names an answer whose provider gave no responseId.
func fallbackID(t time.Time) string { return "chatcmpl-" + strconv.FormatInt(t.UnixNano(), 36) }

// geminiFinish maps a candidate's finishReason; "" means none yet.
func geminiFinish(r string) string {
	switch r {
	case "", "FINISH_REASON_UNSPECIFIED":
		return ""
	case "MAX_TOKENS":
		return "length"
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION":
		return "content_filter"
	default: // STOP, OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL, …
		return "stop"
	}
}

// geminiUsage maps usageMetadata. Input is everything billed as input (the
// prompt, cached part included, and tool-use prompts); Output is the
// candidates plus the thinking tokens, so Input+Output is totalTokenCount.
func geminiUsage(m gjson.Result) usage.Usage {
	var u usage.Usage
	var thoughts int64
	m.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "promptTokenCount", "toolUsePromptTokenCount":
			u.Input += max(v.Int(), 0)
		case "candidatesTokenCount":
			u.Output += max(v.Int(), 0)
		case "thoughtsTokenCount":
			thoughts = max(v.Int(), 0)
		case "cachedContentTokenCount":
			u.CachedInput = max(v.Int(), 0)
		}
		return true
	})
	u.Output += thoughts
	u.Reasoning = thoughts
	return u
}

// googleError maps a Google API error object ({code, message, status}) to an
// OpenAI error. status is the HTTP status the client sees; 0 (an error
// inside a 200 stream) derives it from the error's own status.
func googleError(status int, e gjson.Result) *apierr.Error {
	gs, msg := e.Get("status").Str, e.Get("message").Str
	mapped, code := int(e.Get("code").Int()), strings.ToLower(gs)
	switch gs {
	case "RESOURCE_EXHAUSTED":
		mapped, code = http.StatusTooManyRequests, "rate_limit_exceeded"
	case "UNAVAILABLE":
		mapped = http.StatusServiceUnavailable
	case "INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE":
		mapped = http.StatusBadRequest
		lm := strings.ToLower(msg)
		switch {
		case strings.Contains(lm, "exceeds the maximum number of tokens") || strings.Contains(lm, "token count") && strings.Contains(lm, "exceed"):
			code = "context_length_exceeded"
		case strings.Contains(e.Raw, `"API_KEY_INVALID"`):
			code = "invalid_api_key"
		}
	case "PERMISSION_DENIED":
		mapped = http.StatusForbidden
	case "UNAUTHENTICATED":
		mapped, code = http.StatusUnauthorized, "invalid_api_key"
	case "NOT_FOUND":
		mapped = http.StatusNotFound
	case "DEADLINE_EXCEEDED":
		mapped = http.StatusGatewayTimeout
	case "INTERNAL":
		mapped = http.StatusInternalServerError
	}
	if status == 0 {
		status = mapped
	}
	if status < 400 || status > 599 {
		status = http.StatusBadGateway
	}
	if code == "" {
		code = "upstream_error"
	}
	return ProviderError(status, code, msg)
}

// geminiErrorJSON turns a buffered non-2xx Gemini or Vertex answer into
// OpenAI error JSON (errorBody's norm).
func geminiErrorJSON(status int, body []byte) []byte {
	v := gjson.ParseBytes(body)
	if v.IsArray() { // streamGenerateContent without alt=sse wraps it
		v = v.Get("0")
	}
	if gjson.ValidBytes(body) && v.Get("error").IsObject() {
		return googleError(status, v.Get("error")).JSON()
	}
	return NormalizeError(status, body)
}

// geminiParts reads one GenerateContentResponse: each part of the first
// candidate goes to fn (kind "text", "thought" or "call"), and the mapped
// finish reason (content_filter for a blocked prompt) is returned. A part's
// thoughtSignature goes to fn too, as kind "signature" (text in text) after
// a text or thought part, or "call_signature" (with the call's id) before
// the call it came on, so that the hub's thinking_blocks name the call.
func geminiParts(v gjson.Result, fn func(kind, text, id, name, args string)) (finish string) {
	cand := v.Get("candidates.0")
	if !cand.Exists() {
		if v.Get("promptFeedback.blockReason").Str != "" {
			return "content_filter"
		}
		return ""
	}
	cand.Get("content.parts").ForEach(func(_, p gjson.Result) bool {
		sig := p.Get("thoughtSignature").Str
		if t := p.Get("text"); t.Type == gjson.String {
			if p.Get("thought").Type == gjson.True {
				fn("thought", t.Str, "", "", "")
			} else {
				fn("text", t.Str, "", "", "")
			}
		}
		if c := p.Get("functionCall"); c.IsObject() {
			args := c.Get("args")
			s := "{}"
			if args.IsObject() {
				var buf bytes.Buffer
				if json.Compact(&buf, []byte(args.Raw)) == nil {
					s = buf.String()
				}
			}
			if sig != "" {
				fn("call_signature", sig, c.Get("id").Str, "", "")
			}
			fn("call", "", c.Get("id").Str, c.Get("name").Str, s)
		} else if sig != "" {
			fn("signature", sig, "", "", "")
		}
		return true
	})
	return geminiFinish(cand.Get("finishReason").Str)
}

// geminiJSON turns a generateContent answer into one chat.completion.
type geminiJSON struct {
	buf  []byte
	over bool
	c    Completion
}

// maxAnswerBody bounds a buffered (non-streamed) answer.
const maxAnswerBody = 64 << 20

func (g *geminiJSON) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	if len(g.buf)+len(chunk) > maxAnswerBody {
		g.over = true
	} else {
		g.buf = append(g.buf, chunk...)
	}
	if !eos {
		return nil, false
	}
	if g.over {
		return ProviderError(http.StatusBadGateway, "response_too_large", "The backend's answer is too large to translate.").JSON(), false
	}
	if !gjson.ValidBytes(g.buf) {
		return g.buf, false // cut short; it reaches the client as it is
	}
	v := gjson.ParseBytes(g.buf)
	if e := v.Get("error"); e.IsObject() {
		return googleError(0, e).JSON(), false
	}
	if id := v.Get("responseId").Str; id != "" {
		g.c.ID = "chatcmpl-" + id
	}
	var content, reasoning strings.Builder
	g.c.FinishReason = geminiParts(v, func(kind, text, id, name, args string) {
		switch kind {
		case "text":
			content.WriteString(text)
		case "thought":
			reasoning.WriteString(text)
		case "signature":
			g.c.Thinking = append(g.c.Thinking, ThinkingBlock{Kind: thoughtSignature, Signature: text})
		case "call_signature":
			if id == "" {
				id = "call_" + strconv.Itoa(len(g.c.ToolCalls))
			}
			g.c.Thinking = append(g.c.Thinking, ThinkingBlock{Kind: thoughtSignature, Signature: text, ToolCallID: id})
		case "call":
			if id == "" {
				id = "call_" + strconv.Itoa(len(g.c.ToolCalls))
			}
			g.c.ToolCalls = append(g.c.ToolCalls, ToolCall{ID: id, Name: name, Arguments: args})
		}
	})
	g.c.Content, g.c.Reasoning = content.String(), reasoning.String()
	if len(g.c.ToolCalls) > 0 && g.c.FinishReason == "stop" {
		g.c.FinishReason = "tool_calls"
	}
	g.c.Usage = geminiUsage(v.Get("usageMetadata"))
	gm := v.Get("candidates.0.groundingMetadata")
	g.c.Annotations = geminiGrounding(gm, g.c.Content, geminiPartStarts(v.Get("candidates.0.content.parts")))
	g.c.Usage.WebSearches = int64(len(gm.Get("webSearchQueries").Array()))
	return g.c.JSON(), false
}

// geminiPartStarts returns, for each part of a candidate, the byte offset
// in the answer's content where its text starts (thoughts are not content).
func geminiPartStarts(parts gjson.Result) []int {
	var starts []int
	n := 0
	parts.ForEach(func(_, p gjson.Result) bool {
		starts = append(starts, n)
		if t := p.Get("text"); t.Type == gjson.String && p.Get("thought").Type != gjson.True {
			n += len(t.Str)
		}
		return true
	})
	return starts
}

// geminiGrounding maps Google Search grounding to url_citation
// annotations: each groundingSupport's segment (byte offsets within its
// part, partStarts placing parts in content; nil for offsets into the
// whole content) cites the web sources its groundingChunkIndices name.
func geminiGrounding(gm gjson.Result, content string, partStarts []int) []Annotation {
	supports := gm.Get("groundingSupports")
	if !supports.IsArray() {
		return nil
	}
	chunks := gm.Get("groundingChunks").Array()
	chars := func(off int) int {
		off = min(max(off, 0), len(content))
		return runeCount(content[:off])
	}
	var out []Annotation
	supports.ForEach(func(_, sp gjson.Result) bool {
		seg := sp.Get("segment")
		base := 0
		if pi := int(seg.Get("partIndex").Int()); partStarts != nil && pi >= 0 && pi < len(partStarts) {
			base = partStarts[pi]
		}
		start, end := chars(base+int(seg.Get("startIndex").Int())), chars(base+int(seg.Get("endIndex").Int()))
		sp.Get("groundingChunkIndices").ForEach(func(_, i gjson.Result) bool {
			if k := int(i.Int()); k >= 0 && k < len(chunks) {
				if web := chunks[k].Get("web"); web.IsObject() {
					out = append(out, Annotation{URL: web.Get("uri").Str, Title: web.Get("title").Str, Start: start, End: end,
						CitedText: seg.Get("text").Str})
				}
			}
			return true
		})
		return true
	})
	return out
}

// geminiStream turns streamGenerateContent?alt=sse (one GenerateContentResponse
// per event, usage in the last) into OpenAI chunks. Gemini marks the end
// only by a finish reason, so [DONE] is written at the end of the body
// when one was seen, and never after an error.
type geminiStream struct {
	sc         sse.Scanner
	s          Stream
	fallbackID string
	onEvent    func(sse.Event)
	out        []byte
	started    bool
	failed     bool
	finish     string
	calls      int
	usage      usage.Usage
	content    strings.Builder // the content so far: grounding indexes into it
	searches   int64           // webSearchQueries of Google Search grounding
}

func (g *geminiStream) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	g.out = reuse(g.out)
	if g.failed {
		return nil, false
	}
	g.sc.Feed(chunk, g.onEvent)
	if eos {
		g.sc.Flush(g.onEvent)
		if !g.failed && g.finish != "" {
			if g.calls > 0 && g.finish == "stop" {
				g.finish = "tool_calls"
			}
			g.out = g.s.Finish(g.out, g.finish)
			g.usage.WebSearches = g.searches
			g.out = g.s.Usage(g.out, g.usage)
			g.out = Done(g.out)
		}
	}
	return g.out, false
}

func (g *geminiStream) event(e sse.Event) {
	if g.failed {
		return
	}
	data := bytes.TrimSpace(e.Data)
	if len(data) == 0 || data[0] != '{' || !gjson.ValidBytes(data) {
		return // a cut last event; the missing finish tells
	}
	// In place (no copy): everything read from v is written out before
	// the callback returns, the id concatenated into a new string.
	v := gjson.Parse(unsafe.String(unsafe.SliceData(data), len(data)))
	if er := v.Get("error"); er.IsObject() {
		g.out = ErrorEvent(g.out, googleError(0, er))
		g.failed = true
		return
	}
	if !g.started {
		g.started = true
		g.s.ID = g.fallbackID
		if id := v.Get("responseId").Str; id != "" {
			g.s.ID = "chatcmpl-" + id
		}
		g.out = g.s.Role(g.out)
	}
	finish := geminiParts(v, func(kind, text, id, name, args string) {
		switch kind {
		case "text":
			if text != "" {
				g.content.WriteString(text)
				g.out = g.s.Content(g.out, "content", text)
			}
		case "thought":
			if text != "" {
				g.out = g.s.Content(g.out, "reasoning_content", text)
			}
		case "signature":
			g.out = g.s.Thinking(g.out, ThinkingBlock{Kind: thoughtSignature, Signature: text})
		case "call_signature":
			if id == "" {
				id = "call_" + strconv.Itoa(g.calls)
			}
			g.out = g.s.Thinking(g.out, ThinkingBlock{Kind: thoughtSignature, Signature: text, ToolCallID: id})
		case "call":
			if id == "" {
				id = "call_" + strconv.Itoa(g.calls)
			}
			g.out = g.s.ToolCall(g.out, g.calls, id, name, args)
			g.calls++
		}
	})
	if finish != "" {
		g.finish = finish
	}
	if m := v.Get("usageMetadata"); m.IsObject() {
		g.usage = geminiUsage(m)
	}
	if gm := v.Get("candidates.0.groundingMetadata"); gm.IsObject() {
		// Streamed, the segments index the whole answer.
		g.out = g.s.Annotations(g.out, geminiGrounding(gm, g.content.String(), nil))
		if q := gm.Get("webSearchQueries"); q.IsArray() {
			g.searches = int64(len(q.Array()))
		}
	}
}
