package cache

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tidwall/gjson"
)

const storedResponse = `{"id":"resp_1","object":"response","created_at":1700000000,"status":"completed","model":"m",` +
	`"output":[{"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"thought"}]},` +
	`{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi \"there\"","annotations":[]}]},` +
	`{"type":"function_call","id":"fc_1","call_id":"call_1","name":"f","arguments":"{\"a\":1}","status":"completed"}],` +
	`"usage":{"input_tokens":3,"output_tokens":2,"total_tokens":5}}`

func TestReplayResponsesSSE(t *testing.T) {
	out := string(ReplayResponsesSSE(Entry{Completion: []byte(storedResponse), Stored: time.Unix(0, 0)}))
	var types []string
	var text, args string
	var final gjson.Result
	for i, block := range strings.Split(strings.TrimSuffix(out, "\n\n"), "\n\n") {
		name, data, ok := strings.Cut(block, "\ndata: ")
		if !ok || !gjson.Valid(data) || "event: "+gjson.Get(data, "type").Str != name {
			t.Fatalf("event %d malformed: %q", i, block)
		}
		ev := gjson.Parse(data)
		if ev.Get("sequence_number").Int() != int64(i) {
			t.Errorf("event %d has sequence_number %d", i, ev.Get("sequence_number").Int())
		}
		types = append(types, ev.Get("type").Str)
		switch ev.Get("type").Str {
		case "response.created", "response.in_progress":
			if r := ev.Get("response"); r.Get("status").Str != "in_progress" || r.Get("output").Raw != "[]" || r.Get("usage").Type != gjson.Null || r.Get("id").Str != "resp_1" {
				t.Errorf("%s: %s", ev.Get("type").Str, r.Raw)
			}
		case "response.output_item.added":
			if st := ev.Get("item.status"); st.Exists() && st.Str != "in_progress" {
				t.Errorf("added item %s", ev.Get("item").Raw)
			}
		case "response.output_text.delta":
			text += ev.Get("delta").Str
		case "response.function_call_arguments.delta":
			args += ev.Get("delta").Str
		case "response.completed":
			final = ev.Get("response")
		}
	}
	want := []string{"response.created", "response.in_progress",
		"response.output_item.added", "response.output_item.done",
		"response.output_item.added", "response.content_part.added", "response.output_text.delta", "response.output_text.done", "response.content_part.done", "response.output_item.done",
		"response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.done", "response.output_item.done",
		"response.completed"}
	if diff := cmp.Diff(want, types); diff != "" {
		t.Errorf("event types (-want +got):\n%s", diff)
	}
	if text != `Hi "there"` || args != `{"a":1}` || final.Raw != storedResponse {
		t.Errorf("text %q args %q final %s", text, args, final.Raw)
	}
	inc := strings.Replace(storedResponse, `"status":"completed","model"`, `"status":"incomplete","model"`, 1)
	if out := string(ReplayResponsesSSE(Entry{Completion: []byte(inc)})); !strings.Contains(out, "event: response.incomplete\n") || strings.Contains(out, "response.completed") {
		t.Errorf("an incomplete response replayed as\n%s", out)
	}
}

func TestResponsesStorable(t *testing.T) {
	tests := map[string]string{
		storedResponse: "",
		strings.Replace(storedResponse, `"status":"completed","model"`, `"status":"incomplete","model"`, 1): SkipInvalid,
		`{"id":"r","status":"completed","output":[]}`:                                                       SkipNoUsage,
		`{"status":"completed","output":[],"usage":{}}`:                                                     SkipInvalid,
		`[]`: SkipInvalid,
	}
	for in, want := range tests {
		ok, reason := ResponsesStorable([]byte(in))
		if ok != (want == "") || reason != want {
			t.Errorf("%s: %v %q, want %q", in, ok, reason, want)
		}
	}
}

func FuzzReplayResponsesSSE(f *testing.F) {
	f.Add([]byte(storedResponse))
	f.Add([]byte(`{"id":"r","output":[{"type":"message","content":[{"type":"refusal","refusal":"no"}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if !gjson.ValidBytes(b) {
			return
		}
		for _, block := range strings.Split(strings.TrimSuffix(string(ReplayResponsesSSE(Entry{Completion: b})), "\n\n"), "\n\n") {
			if _, data, ok := strings.Cut(block, "\ndata: "); !ok || !gjson.Valid(data) {
				t.Fatalf("malformed event %q from %s", block, b)
			}
		}
	})
}

// BenchmarkReplayResponsesSSE: a cache hit's stream rebuilt from a stored
// response object with a reasoning item, a message and a function call.
func BenchmarkReplayResponsesSSE(b *testing.B) {
	e := Entry{Completion: []byte(storedResponse)}
	b.ReportAllocs()
	for b.Loop() {
		ReplayResponsesSSE(e)
	}
}
