package fakebedrock

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakeanthropic"
)

// Claude's own API on Bedrock: InvokeModel (/model/{id}/invoke) answers
// Anthropic's message JSON; InvokeModelWithResponseStream
// (/invoke-with-response-stream) answers event-stream frames whose chunk
// events carry each Anthropic SSE event's JSON, base64 in bytes, the last
// (message_stop) with amazon-bedrock-invocationMetrics; CountTokens
// (/count-tokens) counts an InvokeModel body given base64 in
// input.invokeModel.body. Like Bedrock, an InvokeModel body must carry
// anthropic_version bedrock-2023-05-31 and must not carry model or stream.
// Answers are rendered by fakeanthropic from the request's Behaviour
// (Content, Reasoning as a thinking block, Tool, Usage, StopReason,
// Exception, CutAfter).

// BedrockAnthropicVersion is the anthropic_version InvokeModel wants.
const BedrockAnthropicVersion = "bedrock-2023-05-31"

// invokeError is what Bedrock answers for a body it refuses, or "".
func invokeError(body []byte) string {
	root := gjson.ParseBytes(body)
	switch {
	case !root.IsObject():
		return "Malformed input request, please reformat your input and try again."
	case root.Get("anthropic_version").Str != BedrockAnthropicVersion:
		return "Malformed input request: #/anthropic_version: expected " + BedrockAnthropicVersion
	case root.Get("model").Exists():
		return "Malformed input request: #: extraneous key [model] is not permitted, please reformat your input and try again."
	case root.Get("stream").Exists():
		return "Malformed input request: #: extraneous key [stream] is not permitted, please reformat your input and try again."
	case !root.Get("messages").IsArray() || !root.Get("max_tokens").Exists():
		return "Malformed input request: #: required key [messages, max_tokens] not found, please reformat your input and try again."
	}
	return ""
}

// anthropicBehaviour is b as fakeanthropic renders it.
func anthropicBehaviour(b Behaviour) fakeanthropic.Behaviour {
	a := fakeanthropic.Behaviour{Content: b.Content, Thinking: b.Reasoning, StopReason: b.StopReason,
		Usage: fakeanthropic.Usage{Input: b.Usage.Input, Output: b.Usage.Output, CacheRead: b.Usage.CacheRead, CacheWrite: b.Usage.CacheWrite}}
	if b.Tool != nil {
		a.ToolUses = []fakeanthropic.ToolUse{{ID: b.Tool.ID, Name: b.Tool.Name, Input: b.Tool.Input}}
	} else if a.Content == "" {
		a.Content = "Hello from fakebedrock."
	}
	return a
}

func (s *Server) invoke(w http.ResponseWriter, req Request) {
	if msg := invokeError(req.Body); msg != "" {
		awsError(w, http.StatusBadRequest, "ValidationException", msg)
		return
	}
	b, seq := s.Next(req)
	if b.Status >= 400 {
		msg := b.ErrorMessage
		if msg == "" {
			msg = http.StatusText(b.Status)
		}
		awsError(w, b.Status, b.ErrorType, msg)
		return
	}
	message, events := fakeanthropic.Render(anthropicBehaviour(b), fmt.Sprintf("msg_bdrk_%d", seq), req.ModelID)
	if !req.Stream {
		w.Header().Set("content-type", "application/json")
		w.Write(message) //nolint:errcheck // the client may go away
		return
	}
	w.Header().Set("content-type", "application/vnd.amazon.eventstream")
	w.WriteHeader(http.StatusOK)
	f := &frameWriter{w: w, enc: eventstream.NewEncoder(), cut: b.CutAfter}
	for _, ev := range events {
		if b.Exception != "" && ev.Name == "message_delta" {
			f.write("exception", b.Exception, map[string]any{"message": "fakebedrock: " + b.Exception})
			return
		}
		data := ev.Data
		if ev.Name == "message_stop" {
			u := b.Usage
			data, _ = json.Marshal(map[string]any{"type": "message_stop", "amazon-bedrock-invocationMetrics": map[string]any{
				"inputTokenCount": u.Input, "outputTokenCount": u.Output, "invocationLatency": 42, "firstByteLatency": 7,
				"cacheReadInputTokenCount": u.CacheRead, "cacheWriteInputTokenCount": u.CacheWrite}})
		}
		f.write("event", "chunk", map[string]any{"bytes": data}) // []byte marshals as base64
	}
}

// countTokens answers CountTokens for an InvokeModel body: a quarter of its
// bytes, like fakeanthropic.CountTokens.
func countTokens(w http.ResponseWriter, req Request) {
	b64 := gjson.GetBytes(req.Body, "input.invokeModel.body")
	body, err := base64.StdEncoding.DecodeString(b64.Str)
	if b64.Type != gjson.String || err != nil {
		awsError(w, http.StatusBadRequest, "ValidationException", "input.invokeModel.body must be base64")
		return
	}
	if msg := invokeError(body); msg != "" {
		awsError(w, http.StatusBadRequest, "ValidationException", msg)
		return
	}
	w.Header().Set("content-type", "application/json")
	fmt.Fprintf(w, `{"inputTokens":%d}`, CountTokens(body))
}

// CountTokens is the fake's count of an InvokeModel body.
func CountTokens(body []byte) int { return len(body) / 4 }
