package conversation

import (
	"fmt"
	"strings"
	"testing"
)

// A ten-turn conversation: each turn a user message and an answer.
func benchRecord() Record {
	var in []string
	for i := range 10 {
		in = append(in, fmt.Sprintf(`{"type":"message","role":"user","content":"Question %d: %s"}`, i, strings.Repeat("words ", 40)),
			fmt.Sprintf(`{"type":"message","id":"msg_%d","role":"assistant","content":[{"type":"output_text","text":"Answer %d: %s"}]}`, i, i, strings.Repeat("words ", 60)))
	}
	return Record{Input: []byte("[" + strings.Join(in, ",") + "]"),
		Response: []byte(`{"id":"resp_10","status":"completed","output":[{"type":"message","id":"msg_10","role":"assistant","content":[{"type":"output_text","text":"Last answer."}]}]}`)}
}

// BenchmarkExpand: one previous_response_id expanded into a ten-turn input
// (about 8 KiB). Compare runs with benchstat:
//
//	go test -run '^$' -bench Expand -count 10 ./filter/conversation > new.txt
func BenchmarkExpand(b *testing.B) {
	rec := benchRecord()
	body := []byte(`{"model":"gpt-4o","previous_response_id":"resp_10","input":"And then?","stream":true}`)
	b.ReportAllocs()
	b.SetBytes(int64(rec.Size()))
	for b.Loop() {
		if _, err := Expand(body, rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCaptureEvent: the cost a streamed Responses answer's capture
// adds per text delta event.
func BenchmarkCaptureEvent(b *testing.B) {
	ev := []byte("event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":7,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\" words\"}\n\n")
	c := NewCapture(true, 1<<30)
	b.ReportAllocs()
	b.SetBytes(int64(len(ev)))
	for b.Loop() {
		c.Write(ev)
	}
}
