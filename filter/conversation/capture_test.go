package conversation

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

const (
	msgItem = `{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi","annotations":[]}]}`
	stream  = "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\",\"output\":[]}}\n\n" +
		"event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"sequence_number\":1,\"output_index\":0,\"item\":" + msgItem + "}\n\n" +
		"event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[" + msgItem + "]}}\n\n"
)

func TestCaptureStreamEverySplit(t *testing.T) {
	for i := 0; i <= len(stream); i++ {
		c := NewCapture(true, 1<<20)
		c.Write([]byte(stream[:i]))
		c.Write([]byte(stream[i:]))
		resp, ok := c.Response()
		if !ok || gjson.GetBytes(resp, "id").Str != "resp_1" || gjson.GetBytes(resp, "output.0.id").Str != "msg_1" {
			t.Fatalf("split at %d: %s, %v", i, resp, ok)
		}
	}
}

func TestCapture(t *testing.T) {
	emptyOutput := strings.Replace(stream, `"status":"completed","output":[`+msgItem+`]`, `"status":"completed","output":[]`, 1)
	tests := []struct {
		name     string
		stream   bool
		body     string
		max      int
		wantID   string // "" when nothing may be kept
		wantItem string // output[0].id
	}{
		{"json", false, `{"id":"resp_2","object":"response","status":"completed","output":[` + msgItem + `]}`, 1 << 20, "resp_2", "msg_1"},
		{"json incomplete", false, `{"id":"resp_3","status":"incomplete","output":[]}`, 1 << 20, "resp_3", ""},
		{"json failed", false, `{"id":"resp_4","status":"failed","output":[]}`, 1 << 20, "", ""},
		{"json error", false, `{"error":{"message":"x"}}`, 1 << 20, "", ""},
		{"json cut", false, `{"id":"resp_5","status":"comp`, 1 << 20, "", ""},
		{"json too large", false, `{"id":"resp_6","status":"completed","output":[]}`, 10, "", ""},
		{"stream", true, stream, 1 << 20, "resp_1", "msg_1"},
		{"stream output from items", true, emptyOutput, 1 << 20, "resp_1", "msg_1"},
		{"stream cut", true, stream[:strings.Index(stream, "event: response.completed")], 1 << 20, "", ""},
		{"stream failed", true, "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"id\":\"resp_7\",\"status\":\"failed\"}}\n\n", 1 << 20, "", ""},
		{"stream error event", true, "event: error\ndata: {\"type\":\"error\",\"code\":\"x\"}\n\n" + stream, 1 << 20, "", ""},
		{"stream too large", true, stream, 100, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCapture(tt.stream, tt.max)
			c.Write([]byte(tt.body))
			resp, ok := c.Response()
			if got := gjson.GetBytes(resp, "id").Str; ok != (tt.wantID != "") || got != tt.wantID {
				t.Fatalf("Response() = %s, %v; want id %q", resp, ok, tt.wantID)
			}
			if got := gjson.GetBytes(resp, "output.0.id").Str; got != tt.wantItem {
				t.Errorf("output[0].id %q, want %q", got, tt.wantItem)
			}
		})
	}
}

func FuzzCapture(f *testing.F) {
	f.Add([]byte(stream), true)
	f.Add([]byte(`{"id":"r","status":"completed"}`), false)
	f.Fuzz(func(t *testing.T, b []byte, s bool) {
		c := NewCapture(s, 1<<16)
		c.Write(b)
		if resp, ok := c.Response(); ok && (!gjson.ValidBytes(resp) || gjson.GetBytes(resp, "id").Str == "") {
			t.Fatalf("kept %q", resp)
		}
	})
}
