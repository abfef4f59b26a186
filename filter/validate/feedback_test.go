package validate

import (
	"testing"

	"github.com/llmproc/llmproc/filter/apierr"
)

func TestFeedback(t *testing.T) {
	for _, c := range []struct{ body, code, param string }{
		{`{"request_id":"r","score":1}`, "", ""},
		{`{"request_id":"r","score":1,"label":"wrong","comment":null}`, "", ""},
		{`{"request_id":"r","score":5.0,"label":null,"comment":"long answer"}`, "", ""},
		{`{"request_id":"r","score":2.5}`, "invalid_type", "score"},
		{`{"score":1}`, "missing_required_parameter", "request_id"},
		{`{"request_id":"r"}`, "missing_required_parameter", "score"},
		{`{"request_id":"","score":1}`, "invalid_value", "request_id"},
		{`{"request_id":7,"score":1}`, "invalid_type", "request_id"},
		{`{"request_id":"r","score":"5"}`, "invalid_type", "score"},
		{`{"request_id":"r","score":null}`, "invalid_type", "score"},
		{`{"request_id":"r","score":6}`, "integer_above_max_value", "score"},
		{`{"request_id":"r","score":0}`, "integer_below_min_value", "score"},
		{`{"request_id":"r","score":-1}`, "integer_below_min_value", "score"},
		{`{"request_id":"r","score":1e999}`, "", "score"}, // infinity: refused by number()
		{`{"request_id":"r","score":1,"label":3}`, "invalid_type", "label"},
		{`{"request_id":"r","score":1,"rating":5}`, "unknown_parameter", "rating"},
		{`[]`, "invalid_json", ""},
		{`{"request_id":"r","score":1`, "invalid_json", ""},
		{`{"request_id":"r","score":1} x`, "invalid_json", ""},
	} {
		err := Feedback([]byte(c.body), Options{})
		if c.code == "" && c.param == "" {
			if err != nil {
				t.Errorf("%s: %v", c.body, err)
			}
			continue
		}
		e, ok := err.(*apierr.Error)
		if !ok {
			t.Errorf("%s: %v, want a 400", c.body, err)
			continue
		}
		if e.Status != 400 || (c.code != "" && e.Code != c.code) || e.Param != c.param {
			t.Errorf("%s: %d %s param %q (%s), want %s param %q", c.body, e.Status, e.Code, e.Param, e.Message, c.code, c.param)
		}
	}
}
