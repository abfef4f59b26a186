package fakegemini

import (
	"cmp"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fake"
)

// ToolResults reads the functionResponse parts of a generateContent
// request, in order; CallID is the part's id, else the function's name.
func ToolResults(r Request) []fake.ToolResult {
	var rs []fake.ToolResult
	for _, c := range gjson.GetBytes(r.Body, "contents").Array() {
		for _, p := range c.Get("parts").Array() {
			if fr := p.Get("functionResponse"); fr.IsObject() {
				name := fr.Get("name").Str
				rs = append(rs, fake.ToolResult{CallID: cmp.Or(fr.Get("id").Str, name), Name: name, Output: fake.ResultText(fr.Get("response"))})
			}
		}
	}
	return rs
}

// Turns scripts the answers turn by turn (fake.Turns over ToolResults).
func (s *Server) Turns(turns ...func([]fake.ToolResult) Behaviour) {
	s.Script(fake.Turns(ToolResults, turns...))
}
