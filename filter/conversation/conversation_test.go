package conversation

import (
	"bytes"
	"testing"

	"github.com/tidwall/gjson"
)

func TestExpand(t *testing.T) {
	rec := Record{
		Input:    []byte(`[{"type":"message","role":"user","content":"What is 2+2?"}]`),
		Response: []byte(`{"id":"resp_1","object":"response","status":"completed","output":[{"type":"function_call","call_id":"c1","name":"add","arguments":"{}"}]}`),
	}
	tests := []struct{ name, body, want string }{
		{"item input",
			`{"model":"m","previous_response_id":"resp_1","input":[{"type":"function_call_output","call_id":"c1","output":"4"}],"instructions":"Be brief."}`,
			`{"model":"m","input":[{"type":"message","role":"user","content":"What is 2+2?"},{"type":"function_call","call_id":"c1","name":"add","arguments":"{}"},{"type":"function_call_output","call_id":"c1","output":"4"}],"instructions":"Be brief."}`},
		{"string input",
			`{"model":"m","input":"And 3+3?","previous_response_id":"resp_1"}`,
			`{"model":"m","input":[{"type":"message","role":"user","content":"What is 2+2?"},{"type":"function_call","call_id":"c1","name":"add","arguments":"{}"},{"type":"message","role":"user","content":"And 3+3?"}]}`},
		{"no input", `{"previous_response_id":"resp_1","model":"m"}`,
			`{"model":"m","input":[{"type":"message","role":"user","content":"What is 2+2?"},{"type":"function_call","call_id":"c1","name":"add","arguments":"{}"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Expand([]byte(tt.body), rec)
			if err != nil {
				t.Fatal(err)
			}
			if !gjson.ValidBytes(got) || !jsonEqual(got, []byte(tt.want)) {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
	if _, err := Expand([]byte(`{"input":7,"previous_response_id":"resp_1"}`), rec); err == nil {
		t.Error("a numeric input expanded")
	}
}

// jsonEqual compares two JSON texts member by member, in order.
func jsonEqual(a, b []byte) bool {
	return gjson.ParseBytes(a).Get("@ugly").Raw == gjson.ParseBytes(b).Get("@ugly").Raw
}

func TestRecordRoundTrip(t *testing.T) {
	rec := Record{Input: []byte(`[{"role":"user","content":"hi"}]`), Response: []byte(`{"id":"resp_9","output":[]}`)}
	enc := rec.Encode()
	if len(enc) != rec.Size() {
		t.Errorf("Size %d, encoded %d bytes", rec.Size(), len(enc))
	}
	got, err := Decode(enc)
	if err != nil || !bytes.Equal(got.Input, rec.Input) || !bytes.Equal(got.Response, rec.Response) || got.ID() != "resp_9" {
		t.Errorf("Decode: %+v, %v", got, err)
	}
	for _, bad := range []string{``, `{}`, `{"input":{},"response":{}}`, `{"input":[],"response":[]}`, `{"input":[`} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q) succeeded", bad)
		}
	}
}

func TestKeyScopesTenants(t *testing.T) {
	if Key("a", "resp_1") == Key("b", "resp_1") || Key("a", "resp_1") == Key("a", "resp_2") || Key("ab", "c") == Key("a", "bc") {
		t.Error("keys collide")
	}
	if k1, k2 := Key("a", "resp_1"), Key("a", "resp_1"); k1 != k2 {
		t.Error("key not stable")
	}
}

func FuzzExpand(f *testing.F) {
	f.Add([]byte(`{"input":"hi","previous_response_id":"r"}`), []byte(`[{"role":"user","content":"x"}]`), []byte(`{"id":"r","output":[{"type":"message"}]}`))
	f.Add([]byte(`{"input":[{"a":1}]}`), []byte(`[]`), []byte(`{"id":"r"}`))
	f.Fuzz(func(t *testing.T, body, input, resp []byte) {
		if !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() {
			return
		}
		rec, err := Decode(Record{Input: input, Response: resp}.Encode())
		if err != nil {
			return
		}
		out, err := Expand(body, rec)
		if err != nil {
			return
		}
		if !gjson.ValidBytes(out) || gjson.GetBytes(out, "previous_response_id").Exists() || !gjson.GetBytes(out, "input").IsArray() {
			t.Fatalf("Expand(%s) = %s", body, out)
		}
	})
}
