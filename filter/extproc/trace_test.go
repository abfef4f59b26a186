package extproc

import "testing"

func TestCapturedContent(t *testing.T) {
	for _, c := range []struct {
		body, want string
		max        int
		cut        bool
	}{
		{`{"messages":[{"role":"system","content":"Be brief"},{"role":"user","content":[{"type":"text","text":"Héllo"}]}]}`,
			`[{"role":"system","parts":[{"type":"text","content":"Be brief"}]},{"role":"user","parts":[{"type":"text","content":"Héllo"}]}]`, 100, false},
		{`{"messages":[{"role":"user","content":"Héllo world"}]}`, `[{"role":"user","parts":[{"type":"text","content":"H"}]}]`, 2, true},
		{`{"input":"Hi"}`, `[{"role":"user","parts":[{"type":"text","content":"Hi"}]}]`, 100, false},
		{`{"contents":[{"role":"user","parts":[{"text":"Hi"}]}]}`, `[{"role":"user","parts":[{"type":"text","content":"Hi"}]}]`, 100, false},
	} {
		got, cut := inputMessages([]byte(c.body), c.max)
		if got != c.want || cut != c.cut {
			t.Errorf("inputMessages(%s, %d) = %s %v, want %s %v", c.body, c.max, got, cut, c.want, c.cut)
		}
	}
	sse := &outputCapture{max: 8, sse: true}
	sse.write([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"con"))
	sse.write([]byte("tent\":\" world\"}}]}\n\ndata: [DONE]\n\n"))
	if got, cut := sse.messages("stop"); got != `[{"role":"assistant","parts":[{"type":"text","content":"Hello wo"}],"finish_reason":"stop"}]` || !cut {
		t.Errorf("sse capture %s %v", got, cut)
	}
	js := &outputCapture{max: 100}
	js.write([]byte(`{"choices":[{"message":{"content":"Hi"}}]}`))
	if got, cut := js.messages(""); got != `[{"role":"assistant","parts":[{"type":"text","content":"Hi"}]}]` || cut {
		t.Errorf("json capture %s %v", got, cut)
	}
}
