package usage

import (
	"testing"

	"github.com/tidwall/gjson"
)

// scanKeysRef is scanKeys by its definition: a walk over every member of
// a valid JSON value, at any depth, matching names as written.
func scanKeysRef(data []byte) eventKeys {
	var k eventKeys
	var walk func(v gjson.Result)
	walk = func(v gjson.Result) {
		v.ForEach(func(key, val gjson.Result) bool {
			switch key.Raw {
			case `"usage"`:
				k.usage = k.usage || val.IsObject()
			case `"error"`:
				k.error = k.error || val.IsObject()
			case `"finish_reason"`:
				k.finish = k.finish || val.Type == gjson.String
			case `"delta"`:
				if val.IsObject() {
					k.text += textLen(val)
				}
			}
			if val.IsObject() || val.IsArray() {
				walk(val)
			}
			return true
		})
	}
	walk(gjson.ParseBytes(data))
	return k
}

var scanSeeds = []string{
	`{"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"tok "},"logprobs":null,"finish_reason":null}],"usage":null}`,
	`{"id":"c","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}`,
	`{"error":{"message":"boom","type":"server_error"}}`,
	`{"choices":[{"delta":{},"finish_reason":"stop"}]}`,
	`{"choices":[{"delta":{"content":"say \"usage\": {x} and \"delta\":{\"content\":\"no\"}"}}]}`,
	`{"choices":[{"delta":{"content":"a\\"},"finish_reason" : "length"}]}`,
	`{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{\"usage\":{}}"}}]}},{"delta" : {"refusal":"no"}}]}`,
	`{"choices":[{"delta":{"reasoning_content":"\\\\"}}],"usage" :{"total_tokens":3}}`,
}

func TestScanKeys(t *testing.T) {
	for _, s := range scanSeeds {
		if got, want := scanKeys([]byte(s)), scanKeysRef([]byte(s)); got != want {
			t.Errorf("scanKeys(%s) = %+v, want %+v", s, got, want)
		}
	}
	// A name inside a string value is text, not a member.
	if k := scanKeys([]byte(`{"content":"\"usage\":{\"error\":{}}"}`)); k.usage || k.error {
		t.Errorf("names in a string counted: %+v", k)
	}
}

// FuzzScanKeys: on valid JSON, the one pass finds what the walk finds.
func FuzzScanKeys(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := scanKeys(b) // never panics, valid or not
		if !gjson.ValidBytes(b) {
			return
		}
		if want := scanKeysRef(b); got != want {
			t.Fatalf("scanKeys(%s) = %+v, want %+v", b, got, want)
		}
	})
}
