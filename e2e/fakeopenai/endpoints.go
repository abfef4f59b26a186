package fakeopenai

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/llmproc/llmproc/e2e/fake"
)

// Event is a named SSE event (the Responses API names each one).
type Event struct {
	Name string
	Data map[string]any
}

type responsesRequest struct {
	Model  string `json:"model"`
	Stream bool   `json:"stream"`
}

// responsesUsage is u in the Responses API's terms.
func responsesUsage(u Usage) map[string]any {
	return map[string]any{
		"input_tokens":          u.Prompt,
		"input_tokens_details":  map[string]any{"cached_tokens": u.Cached},
		"output_tokens":         u.Completion,
		"output_tokens_details": map[string]any{"reasoning_tokens": u.Reasoning},
		"total_tokens":          u.Prompt + u.Completion,
	}
}

// responses answers POST /v1/responses: a response object whose output is
// a message (unless the answer only calls tools) and a function_call item
// per tool call, or its stream of semantic events, in the order OpenAI
// sends them, ending with response.completed.
func (s *Server) responses(w http.ResponseWriter, r *http.Request, req Request) {
	var rr responsesRequest
	b, seq, status, ok := s.begin(w, r, req, &rr)
	if !ok {
		return
	}
	model := cmp.Or(b.Model, rr.Model)
	content := b.text()
	// The server's tag keeps two fakes' ids apart: the ids name stored
	// conversation state.
	id, msgID := fmt.Sprintf("resp_%s_%d", s.tag, seq), fmt.Sprintf("msg_%s_%d", s.tag, seq)
	text := map[string]any{"type": "output_text", "text": content, "annotations": []any{}}
	message := map[string]any{"type": "message", "id": msgID, "status": "completed", "role": "assistant", "content": []any{text}}
	var output []any
	if content != "" {
		output = append(output, message)
	}
	call := func(i int, c ToolCall, status, args string) map[string]any {
		return map[string]any{"type": "function_call", "id": fmt.Sprintf("fc_%s_%d_%d", s.tag, seq, i), "call_id": c.ID,
			"name": c.Name, "arguments": args, "status": status}
	}
	for i, c := range b.ToolCalls {
		output = append(output, call(i, c, "completed", c.arguments()))
	}
	response := func(status string, output []any, usage any) map[string]any {
		if output == nil {
			output = []any{}
		}
		return map[string]any{"id": id, "object": "response", "created_at": 1700000000, "status": status,
			"model": model, "output": output, "error": nil, "usage": usage}
	}
	if !rr.Stream {
		writeJSON(w, status, response("completed", output, responsesUsage(b.Usage)))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(status)
	var events []any
	add := func(name string, data map[string]any) {
		data["type"], data["sequence_number"] = name, len(events)
		events = append(events, Event{Name: name, Data: data})
	}
	add("response.created", map[string]any{"response": response("in_progress", nil, nil)})
	add("response.in_progress", map[string]any{"response": response("in_progress", nil, nil)})
	index := 0
	if content != "" {
		item := map[string]any{"type": "message", "id": msgID, "status": "in_progress", "role": "assistant", "content": []any{}}
		add("response.output_item.added", map[string]any{"output_index": 0, "item": item})
		add("response.content_part.added", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0,
			"part": map[string]any{"type": "output_text", "text": "", "annotations": []any{}}})
		for _, piece := range fake.Split(content, b.Chunks) {
			add("response.output_text.delta", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "delta": piece})
		}
		add("response.output_text.done", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "text": content})
		add("response.content_part.done", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "part": text})
		add("response.output_item.done", map[string]any{"output_index": 0, "item": message})
		index++
	}
	for i, c := range b.ToolCalls {
		args, itemID := c.arguments(), fmt.Sprintf("fc_%s_%d_%d", s.tag, seq, i)
		add("response.output_item.added", map[string]any{"output_index": index, "item": call(i, c, "in_progress", "")})
		for _, piece := range []string{args[:len(args)/2], args[len(args)/2:]} {
			add("response.function_call_arguments.delta", map[string]any{"item_id": itemID, "output_index": index, "delta": piece})
		}
		add("response.function_call_arguments.done", map[string]any{"item_id": itemID, "output_index": index, "arguments": args})
		add("response.output_item.done", map[string]any{"output_index": index, "item": call(i, c, "completed", args)})
		index++
	}
	add("response.completed", map[string]any{"response": response("completed", output, responsesUsage(b.Usage))})
	sendEvents(w, r, b, events)
}

// embeddings answers POST /v1/embeddings: one fake.Vector per input (a
// string is one input; an array holds one per element, a token array's
// JSON standing for its text), dimensions numbers long when asked, as
// base64 when encoding_format asks; usage prompt_tokens from the behaviour.
func (s *Server) embeddings(w http.ResponseWriter, r *http.Request, req Request) {
	var er struct {
		Model          string          `json:"model"`
		Input          json.RawMessage `json:"input"`
		Dimensions     int             `json:"dimensions"`
		EncodingFormat string          `json:"encoding_format"`
	}
	b, _, status, ok := s.begin(w, r, req, &er)
	if !ok {
		return
	}
	texts := []json.RawMessage{er.Input}
	var list []json.RawMessage
	if json.Unmarshal(er.Input, &list) == nil && len(list) > 0 && list[0][0] != '[' && list[0][0] != '"' {
		list = []json.RawMessage{er.Input} // one token array
	}
	if list != nil {
		texts = list
	}
	data := make([]any, len(texts))
	for i, raw := range texts {
		text := string(raw)
		var str string
		if json.Unmarshal(raw, &str) == nil {
			text = str
		}
		var emb any = fake.Vector(text, er.Dimensions)
		if er.EncodingFormat == "base64" {
			emb = fake.Base64Vector(fake.Vector(text, er.Dimensions))
		}
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": emb}
	}
	writeJSON(w, status, map[string]any{"object": "list", "data": data, "model": cmp.Or(b.Model, er.Model),
		"usage": map[string]any{"prompt_tokens": b.Usage.Prompt, "total_tokens": b.Usage.Prompt}})
}

// completions answers the legacy POST /v1/completions: text choices, JSON
// or SSE (with a usage chunk when stream_options.include_usage asks).
func (s *Server) completions(w http.ResponseWriter, r *http.Request, req Request) {
	var cr chatRequest
	b, seq, status, ok := s.begin(w, r, req, &cr)
	if !ok {
		return
	}
	model := cmp.Or(b.Model, cr.Model)
	content := cmp.Or(b.Content, "Hello from fakeopenai.")
	id := fmt.Sprintf("cmpl-fake-%d", seq)
	obj := func(choices []any) map[string]any {
		return map[string]any{"id": id, "object": "text_completion", "created": 1700000000, "model": model, "choices": choices}
	}
	choice := func(text string, finish any) []any {
		return []any{map[string]any{"text": text, "index": 0, "logprobs": nil, "finish_reason": finish}}
	}
	if !cr.Stream {
		o := obj(choice(content, "stop"))
		o["usage"] = usageJSON(b.Usage)
		writeJSON(w, status, o)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(status)
	var events []any
	for _, piece := range fake.Split(content, b.Chunks) {
		events = append(events, obj(choice(piece, nil)))
	}
	events = append(events, obj(choice("", "stop")))
	if cr.StreamOptions != nil && cr.StreamOptions.IncludeUsage {
		o := obj([]any{})
		o["usage"] = usageJSON(b.Usage)
		events = append(events, o)
	}
	sendEvents(w, r, b, append(events, "[DONE]"))
}
