package usage

import (
	"testing"
)

const responsesStream = `event: response.created
data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_1","status":"in_progress","model":"gpt-5","usage":null}}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":1,"delta":"Hello"}

event: response.function_call_arguments.delta
data: {"type":"response.function_call_arguments.delta","sequence_number":2,"delta":"{\"a\":1}"}

event: response.completed
data: {"type":"response.completed","sequence_number":3,"response":{"id":"resp_1","status":"completed","model":"gpt-5-2025","error":null,"usage":{"input_tokens":120,"input_tokens_details":{"cached_tokens":100},"output_tokens":40,"output_tokens_details":{"reasoning_tokens":30},"total_tokens":160}}}

`

// TestResponsesTracker: a Responses stream's usage comes from
// response.completed; it is done only then (no [DONE] in these streams);
// a cut or failed stream is not; a JSON response reads the top-level usage.
func TestResponsesTracker(t *testing.T) {
	want := Usage{Input: 120, CachedInput: 100, Output: 40, Reasoning: 30}
	for _, c := range []struct {
		name          string
		stream        bool
		body          string
		known, done   bool
		errEvent      bool
		usage         Usage
		chars, firsts int
	}{
		{"stream", true, responsesStream, true, true, false, want, 5 + 9, 1},
		{"cut", true, responsesStream[:len(responsesStream)/2], false, false, false, Usage{}, 5, 1},
		{"failed", true, "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"x\"},\"usage\":null}}\n\n", false, false, true, Usage{}, 0, 0},
		{"error event", true, "event: error\ndata: {\"type\":\"error\",\"code\":\"x\",\"message\":\"y\"}\n\n", false, false, true, Usage{}, 0, 0},
		{"json", false, `{"id":"resp_1","object":"response","status":"completed","model":"gpt-5","error":null,"output":[{"type":"message","content":[{"type":"output_text","text":"Hi!"}]},{"type":"function_call","arguments":"{}"}],"usage":{"input_tokens":120,"input_tokens_details":{"cached_tokens":100},"output_tokens":40,"output_tokens_details":{"reasoning_tokens":30}}}`, true, true, false, want, 3 + 2, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := NewResponsesTracker(c.stream)
			firsts := 0
			for i := 0; i < len(c.body); i += 7 { // split mid-event
				if tr.Write([]byte(c.body[i:min(i+7, len(c.body))])) {
					firsts++
				}
			}
			r := tr.Finish()
			if r.Known != c.known || r.Done != c.done || r.ErrorEvent != c.errEvent || r.Usage != c.usage || r.OutputChars != c.chars || firsts != c.firsts {
				t.Errorf("got %+v (first token %d times), want known=%v done=%v error=%v usage=%+v chars=%d first=%d",
					r, firsts, c.known, c.done, c.errEvent, c.usage, c.chars, c.firsts)
			}
		})
	}
}

// BenchmarkResponsesTrackerWrite is the per-event cost of reading a
// Responses stream: one output_text.delta event as OpenAI sends it.
func BenchmarkResponsesTrackerWrite(b *testing.B) {
	chunk := []byte("event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":12,\"item_id\":\"msg_68b5f1c2a8e081a2\",\"output_index\":1,\"content_index\":0,\"delta\":\"tok \",\"logprobs\":[],\"obfuscation\":\"x9Ab\"}\n\n")
	tr := NewResponsesTracker(true)
	tr.Write(chunk)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		tr.Write(chunk)
	}
}
