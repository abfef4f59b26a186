package fakebedrock

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/llmproc/llmproc/e2e/fake"
)

func TestToolResults(t *testing.T) {
	body := `{"messages":[{"role":"user","content":[{"text":"hi"}]},
		{"role":"assistant","content":[{"toolUse":{"toolUseId":"t1","name":"ls","input":{}}}]},
		{"role":"user","content":[{"toolResult":{"toolUseId":"t1","content":[{"text":"a.txt"}]}},
			{"toolResult":{"toolUseId":"t2","content":[{"json":{"n":2}}]}}]}]}`
	want := []fake.ToolResult{{CallID: "t1", Output: "a.txt"}, {CallID: "t2", Output: `{"n":2}`}}
	if diff := cmp.Diff(want, ToolResults(Request{Request: fake.Request{Body: []byte(body)}})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
