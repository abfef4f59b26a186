package fakegemini

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/llmproc/llmproc/e2e/fake"
)

func TestToolResults(t *testing.T) {
	body := `{"contents":[{"role":"user","parts":[{"text":"hi"}]},
		{"role":"model","parts":[{"functionCall":{"name":"ls","args":{}}}]},
		{"role":"user","parts":[{"functionResponse":{"name":"ls","response":{"output":"a.txt"}}},
			{"functionResponse":{"id":"fc-2","name":"cat","response":{"output":"b"}}}]}]}`
	want := []fake.ToolResult{
		{CallID: "ls", Name: "ls", Output: `{"output":"a.txt"}`},
		{CallID: "fc-2", Name: "cat", Output: `{"output":"b"}`},
	}
	if diff := cmp.Diff(want, ToolResults(Request{Request: fake.Request{Body: []byte(body)}})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
