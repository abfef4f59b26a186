package semantic

import (
	"strings"
	"testing"
	"time"

	"github.com/llmproc/llmproc/filter/cache"
	"github.com/llmproc/llmproc/filter/meaning"
)

func TestSplit(t *testing.T) {
	const (
		chat, msgs, resp, gem = cache.APIChat, cache.APIMessages, cache.APIResponses, cache.APIGemini
	)
	cases := []struct {
		name, api, body, text string
		ok                    bool
	}{
		{"string", chat, `{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi there"}]}`, "hi there", true},
		{"text parts", chat, `{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}`, "b", true},
		{"image part", chat, `{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"x"}}]}]}`, "", false},
		{"last is assistant", chat, `{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}`, "", false},
		{"tool result", chat, `{"messages":[{"role":"tool","content":"42","tool_call_id":"c"}]}`, "", false},
		{"anthropic blocks", msgs, `{"system":"s","messages":[{"role":"user","content":[{"type":"text","text":"hello"}]}]}`, "hello", true},
		{"anthropic tool_result", msgs, `{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"x","content":"1"}]}]}`, "", false},
		{"blank", chat, `{"messages":[{"role":"user","content":"  "}]}`, "", false},
		{"no messages", chat, `{"input":"x"}`, "", false},
		{"not json", chat, `{`, "", false},
		{"unknown api", "embeddings", `{"input":"x"}`, "", false},

		{"responses string input", resp, `{"model":"m","instructions":"be brief","input":"hi there"}`, "hi there", true},
		{"responses message items", resp, `{"input":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"type":"message","role":"user","content":[{"type":"input_text","text":"c"},{"type":"input_text","text":"d"}]}]}`, "d", true},
		{"responses string content", resp, `{"input":[{"role":"user","content":"hello"}]}`, "hello", true},
		{"responses image part", resp, `{"input":[{"role":"user","content":[{"type":"input_text","text":"a"},{"type":"input_image","image_url":"https://x/a.png"}]}]}`, "", false},
		{"responses chat-style text part", resp, `{"input":[{"role":"user","content":[{"type":"text","text":"a"}]}]}`, "", false},
		{"responses function output", resp, `{"input":[{"role":"user","content":"a"},{"type":"function_call_output","call_id":"c","output":"5"}]}`, "", false},
		{"responses last is the assistant's", resp, `{"input":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}`, "", false},
		{"responses developer message", resp, `{"input":[{"role":"developer","content":"a"}]}`, "", false},
		{"responses previous_response_id", resp, `{"previous_response_id":"resp_1","input":"What is my name?"}`, "", false},
		{"responses null previous_response_id", resp, `{"previous_response_id":null,"input":"What is my name?"}`, "What is my name?", true},
		{"responses conversation", resp, `{"conversation":"conv_1","input":"And then?"}`, "", false},
		{"responses stored prompt", resp, `{"prompt":{"id":"pmpt_1"},"input":"Go."}`, "", false},
		{"responses background", resp, `{"background":true,"input":"Go."}`, "", false},
		{"responses blank", resp, `{"input":" "}`, "", false},
		{"responses messages member is not its turn", resp, `{"messages":[{"role":"user","content":"x"}]}`, "", false},

		{"gemini", gem, `{"systemInstruction":{"parts":[{"text":"s"}]},"contents":[{"role":"user","parts":[{"text":"hi"},{"text":"there"}]}]}`, "there", true},
		{"gemini without a role", gem, `{"contents":[{"parts":[{"text":"hi"}]}]}`, "hi", true},
		{"gemini inline data", gem, `{"contents":[{"role":"user","parts":[{"text":"what is it"},{"inlineData":{"mimeType":"image/png","data":"AA=="}}]}]}`, "", false},
		{"gemini text with more members", gem, `{"contents":[{"role":"user","parts":[{"text":"what is it","fileData":{"fileUri":"gs://x"}}]}]}`, "", false},
		{"gemini function response", gem, `{"contents":[{"role":"user","parts":[{"functionResponse":{"name":"f","response":{}}}]}]}`, "", false},
		{"gemini last is the model's", gem, `{"contents":[{"role":"user","parts":[{"text":"a"}]},{"role":"model","parts":[{"text":"b"}]}]}`, "", false},
		{"gemini parts as a string", gem, `{"contents":[{"role":"user","parts":"hi"}]}`, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text, ok := Split(c.api, []byte(c.body))
			if ok != c.ok || text != c.text {
				t.Fatalf("Split = %q, %v; want %q, %v", text, ok, c.text, c.ok)
			}
		})
	}
}

// requestBucket is the bucket of body: parsed, its turn found (Turn), blanked
// (BucketOf).
func requestBucket(t *testing.T, api string, in cache.KeyInput, body string) Bucket {
	t.Helper()
	d, err := cache.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Release()
	_, at, ok := Turn(d, api)
	if !ok {
		t.Fatalf("Turn refused %s", body)
	}
	return BucketOf(d, in, at)
}

// TestBucketIsBlankedKey: a bucket is the exact key (endpoint marked) of the
// body with the turn's string set to "" (for an array of parts, the last
// part's text; the others stay as sent).
func TestBucketIsBlankedKey(t *testing.T) {
	in := cache.KeyInput{Tenant: "t", ClientSchema: "openai", Endpoint: "/v1/x", Pool: "p", Model: "m"}
	for _, c := range []struct{ api, body, blanked string }{
		{cache.APIChat, `{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"hi \u00e9"}]}`,
			`{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":""}]}`},
		{cache.APIMessages, `{"messages":[{"role":"user","content":[{"type":"text","text":"a","cache_control":{"type":"ephemeral"}},{"type":"text","text":"b"}]}]}`,
			`{"messages":[{"role":"user","content":[{"type":"text","text":"a","cache_control":{"type":"ephemeral"}},{"type":"text","text":""}]}]}`},
		{cache.APIResponses, `{"instructions":"s","input":"hi","stream":true}`, `{"instructions":"s","input":""}`},
		{cache.APIResponses, `{"input":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"type":"message","role":"user","content":[{"type":"input_text","text":"c"}]}]}`,
			`{"input":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"type":"message","role":"user","content":[{"type":"input_text","text":""}]}]}`},
		{cache.APIGemini, `{"contents":[{"role":"user","parts":[{"text":"a"}]},{"role":"model","parts":[{"text":"b"}]},{"parts":[{"text":"c"},{"text":"d"}]}],"generationConfig":{"temperature":0}}`,
			`{"contents":[{"role":"user","parts":[{"text":"a"}]},{"role":"model","parts":[{"text":"b"}]},{"parts":[{"text":"c"},{"text":""}]}],"generationConfig":{"temperature":0}}`},
	} {
		marked := in
		marked.Endpoint += bucketMark
		marked.Body = []byte(c.blanked)
		want, err := cache.KeyOf(marked)
		if err != nil {
			t.Fatal(err)
		}
		if got := requestBucket(t, c.api, in, c.body); got != Bucket(want) {
			t.Errorf("%s: the bucket of %s is not the marked key of %s", c.api, c.body, c.blanked)
		}
	}
}

// TestBucket: the bucket is everything but the latest user turn, exact.
func TestBucket(t *testing.T) {
	in := cache.KeyInput{Tenant: "t", ClientSchema: "openai", Endpoint: "/v1/chat/completions", Pool: "p", Model: "m"}
	bucket := func(in cache.KeyInput, body string) Bucket {
		t.Helper()
		return requestBucket(t, cache.APIChat, in, body)
	}
	base := bucket(in, `{"model":"m","temperature":0,"messages":[{"role":"system","content":"s"},{"role":"user","content":"what is the refund policy"}]}`)
	same := bucket(in, `{"temperature":0,"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"refund policy?"}],"stream":true}`)
	if base != same {
		t.Errorf("turn text, member order or stream changed the bucket")
	}
	for name, b := range map[string]Bucket{
		"system":      bucket(in, `{"model":"m","temperature":0,"messages":[{"role":"system","content":"S"},{"role":"user","content":"x"}]}`),
		"temperature": bucket(in, `{"model":"m","temperature":0.5,"messages":[{"role":"system","content":"s"},{"role":"user","content":"x"}]}`),
		"earlier":     bucket(in, `{"model":"m","temperature":0,"messages":[{"role":"system","content":"s"},{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"x"}]}`),
		"tenant":      bucket(cache.KeyInput{Tenant: "u", ClientSchema: "openai", Endpoint: "/v1/chat/completions", Pool: "p", Model: "m"}, `{"model":"m","temperature":0,"messages":[{"role":"system","content":"s"},{"role":"user","content":"x"}]}`),
		"client api":  bucket(cache.KeyInput{Tenant: "t", ClientSchema: "anthropic", Endpoint: "/v1/chat/completions", Pool: "p", Model: "m"}, `{"model":"m","temperature":0,"messages":[{"role":"system","content":"s"},{"role":"user","content":"x"}]}`),
	} {
		if b == base {
			t.Errorf("%s did not change the bucket", name)
		}
	}
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"x"}]}`)
	k, _ := cache.KeyOf(cache.KeyInput{Endpoint: "/e", Body: body})
	if b := requestBucket(t, cache.APIChat, cache.KeyInput{Endpoint: "/e"}, string(body)); b == Bucket(k) {
		t.Errorf("a bucket equals an exact key")
	}
}

// TestBucketAPIs: for the Responses API and Gemini too, the bucket is
// everything but the latest user turn, exact; stream is framing only.
func TestBucketAPIs(t *testing.T) {
	bucket := func(api, endpoint, body string) Bucket {
		t.Helper()
		return requestBucket(t, api, cache.KeyInput{Tenant: "t", ClientSchema: "openai", Endpoint: endpoint, Pool: "p", Model: "m"}, body)
	}
	for _, c := range []struct {
		name, api, endpoint, base, same string
		other                           map[string]string
	}{
		{"responses", cache.APIResponses, "/v1/responses",
			`{"model":"m","instructions":"s","input":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"what is the refund policy"}]}`,
			`{"stream":true,"model":"m","instructions":"s","input":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"refund policy?"}]}`,
			map[string]string{
				"instructions": `{"model":"m","instructions":"S","input":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"x"}]}`,
				"earlier":      `{"model":"m","instructions":"s","input":[{"role":"user","content":"A"},{"role":"assistant","content":"b"},{"role":"user","content":"x"}]}`,
				"tools":        `{"model":"m","instructions":"s","tools":[{"type":"web_search"}],"input":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"x"}]}`,
				"reasoning":    `{"model":"m","instructions":"s","reasoning":{"effort":"high"},"input":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"x"}]}`,
				"string input": `{"model":"m","instructions":"s","input":"x"}`,
			}},
		{"gemini", cache.APIGemini, "/v1beta/models/m:generateContent",
			`{"systemInstruction":{"parts":[{"text":"s"}]},"generationConfig":{"temperature":0},"contents":[{"role":"user","parts":[{"text":"what is the refund policy"}]}]}`,
			`{"generationConfig":{"temperature":0},"systemInstruction":{"parts":[{"text":"s"}]},"contents":[{"role":"user","parts":[{"text":"refund policy?"}]}]}`,
			map[string]string{
				"system":                   `{"systemInstruction":{"parts":[{"text":"S"}]},"generationConfig":{"temperature":0},"contents":[{"role":"user","parts":[{"text":"x"}]}]}`,
				"sampling":                 `{"systemInstruction":{"parts":[{"text":"s"}]},"generationConfig":{"temperature":0.7},"contents":[{"role":"user","parts":[{"text":"x"}]}]}`,
				"safety":                   `{"systemInstruction":{"parts":[{"text":"s"}]},"generationConfig":{"temperature":0},"safetySettings":[{"category":"HARM_CATEGORY_HARASSMENT","threshold":"BLOCK_NONE"}],"contents":[{"role":"user","parts":[{"text":"x"}]}]}`,
				"earlier":                  `{"systemInstruction":{"parts":[{"text":"s"}]},"generationConfig":{"temperature":0},"contents":[{"role":"user","parts":[{"text":"a"}]},{"role":"model","parts":[{"text":"b"}]},{"role":"user","parts":[{"text":"x"}]}]}`,
				"another part of the turn": `{"systemInstruction":{"parts":[{"text":"s"}]},"generationConfig":{"temperature":0},"contents":[{"role":"user","parts":[{"text":"<session_context>"},{"text":"x"}]}]}`,
				"tools":                    `{"systemInstruction":{"parts":[{"text":"s"}]},"generationConfig":{"temperature":0},"tools":[{"googleSearch":{}}],"contents":[{"role":"user","parts":[{"text":"x"}]}]}`,
			}},
	} {
		base := bucket(c.api, c.endpoint, c.base)
		if bucket(c.api, c.endpoint, c.same) != base {
			t.Errorf("%s: turn text, member order, parts or stream changed the bucket", c.name)
		}
		for name, body := range c.other {
			if bucket(c.api, c.endpoint, body) == base {
				t.Errorf("%s: %s did not change the bucket", c.name, name)
			}
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	r := rec("hello", t0)
	got, err := decodeRecord(r.encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.Entry != r.Entry || got.Text != r.Text || got.RequestID != r.RequestID || !got.Stored.Equal(r.Stored) || len(got.Vector) != len(r.Vector) {
		t.Fatalf("round trip: %+v != %+v", got, r)
	}
	for i := range r.Vector {
		if got.Vector[i] != r.Vector[i] {
			t.Fatalf("vector[%d] %v != %v", i, got.Vector[i], r.Vector[i])
		}
	}
	enc := r.encode()
	for n := range len(enc) {
		if _, err := decodeRecord(enc[:n]); err == nil {
			t.Fatalf("a record cut at %d decoded", n)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(rec("x", t0).encode())
	f.Add([]byte("S\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err == nil && len(r.Vector) == 0 {
			t.Fatalf("a record without a vector decoded")
		}
	})
}

// TestLongConstantPart: a client that sends a long constant text part
// before the question in the same turn (Gemini CLI's session context,
// Claude Code's reminder blocks) must not make two questions look alike:
// only the last part is compared, the context stays exact in the bucket.
// Joined, "refund" and "return" policies were 0.99 similar.
func TestLongConstantPart(t *testing.T) {
	context := "This is the Gemini CLI. " + strings.Repeat("The workspace holds a Go module with many files and directories. ", 40)
	body := func(q string) []byte {
		return marshal(map[string]any{"contents": []any{map[string]any{"role": "user", "parts": []any{map[string]any{"text": context}, map[string]any{"text": q}}}}})
	}
	tier, err := NewTier(Options{Threshold: DefaultThreshold, MaxEntries: 8, MaxBucketEntries: 8, TTL: time.Hour,
		Vectors: StandInVectors{Dims: 256}, Guard: meaning.SameMeaningTokens, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	in := cache.KeyInput{Tenant: "t", ClientSchema: "gemini", Endpoint: "/v1beta/models/m:generateContent", Pool: "p", Model: "m"}
	split := func(q string) (string, Bucket) {
		d, err := cache.Parse(body(q))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Release()
		text, at, ok := Turn(d, cache.APIGemini)
		if !ok {
			t.Fatalf("Turn refused %q", q)
		}
		return strings.Clone(text), BucketOf(d, in, at)
	}
	text, b := split("What is your refund policy?")
	if err := tier.Store(t.Context(), b, text, entryOf("refund"), "req", t0); err != nil {
		t.Fatal(err)
	}
	if text, b := split("What is your return policy?"); true {
		if _, ok, _ := tier.Lookup(t.Context(), b, text); ok {
			t.Errorf("the return-policy question got the refund-policy answer")
		}
	}
	if text, b := split("what is your refund policy"); true {
		if m, ok, _ := tier.Lookup(t.Context(), b, text); !ok || m.Entry != entryOf("refund") {
			t.Errorf("the same question spelled otherwise missed")
		}
	}
}
