package cache

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/llmproc/llmproc/filter/meaning"
)

func chatBody(system, earlier, turn string) []byte {
	msgs := []map[string]string{}
	if system != "" {
		msgs = append(msgs, map[string]string{"role": "system", "content": system})
	}
	if earlier != "" {
		msgs = append(msgs, map[string]string{"role": "user", "content": earlier}, map[string]string{"role": "assistant", "content": "Sure."})
	}
	msgs = append(msgs, map[string]string{"role": "user", "content": turn})
	b, _ := json.Marshal(map[string]any{"model": "mini", "temperature": 0, "messages": msgs})
	return b
}

func normKey(t *testing.T, api string, body []byte) (Key, bool) {
	t.Helper()
	k, ok, err := NormalizedKeyOf(KeyInput{Tenant: "t", ClientSchema: "openai", Endpoint: "/v1/chat/completions", Pool: "p", Model: "mini", Body: body}, api)
	if err != nil {
		t.Fatal(err)
	}
	return k, ok
}

func TestNormalizedKey(t *testing.T) {
	base, ok := normKey(t, APIChat, chatBody("Be brief.", "Hello", "What is your refund policy?"))
	if !ok {
		t.Fatal("no latest user turn found")
	}
	exact, err := KeyOf(KeyInput{Tenant: "t", ClientSchema: "openai", Endpoint: "/v1/chat/completions", Pool: "p", Model: "mini", Body: chatBody("Be brief.", "Hello", "What is your refund policy?")})
	if err != nil || exact == base {
		t.Fatalf("the normalized key equals the exact key (%v)", err)
	}
	for _, tc := range []struct {
		name string
		body []byte
		same bool
	}{
		{"contraction and punctuation", chatBody("Be brief.", "Hello", "what's your refund policy"), true},
		{"politeness", chatBody("Be brief.", "Hello", "Hi, what is your refund policy, please?"), true},
		{"system prompt is exact", chatBody("be brief", "Hello", "what's your refund policy"), false},
		{"earlier turns are exact", chatBody("Be brief.", "hello", "what's your refund policy"), false},
		{"a number", chatBody("Be brief.", "Hello", "What is your refund policy for 2 items?"), false},
		{"a negation", chatBody("Be brief.", "Hello", "What is not your refund policy?"), false},
		{"sampling is exact", []byte(strings.Replace(string(chatBody("Be brief.", "Hello", "what's your refund policy")), `"temperature":0`, `"temperature":0,"seed":1`, 1)), false},
	} {
		k, ok := normKey(t, APIChat, tc.body)
		if !ok || (k == base) != tc.same {
			t.Errorf("%s: same key %v (ok %v), want %v", tc.name, k == base, ok, tc.same)
		}
	}
	// The scope is exact too.
	k, _, _ := NormalizedKeyOf(KeyInput{Tenant: "other", ClientSchema: "openai", Endpoint: "/v1/chat/completions", Pool: "p", Model: "mini", Body: chatBody("Be brief.", "Hello", "what's your refund policy")}, APIChat)
	if k == base {
		t.Error("another tenant shares the normalized key")
	}
}

func TestNormalizedKeyAPIs(t *testing.T) {
	for _, tc := range []struct {
		name, api, a, b string
		ok, same        bool
	}{
		{"chat parts", APIChat, `{"messages":[{"role":"user","content":[{"type":"text","text":"What is it?"}]}]}`,
			`{"messages":[{"role":"user","content":[{"type":"text","text":"what is it"}]}]}`, true, true},
		{"chat image part stays exact", APIChat, `{"messages":[{"role":"user","content":[{"type":"text","text":"What is it?"},{"type":"image_url","image_url":{"url":"https://x/a.png"}}]}]}`,
			`{"messages":[{"role":"user","content":[{"type":"text","text":"what is it"},{"type":"image_url","image_url":{"url":"https://x/b.png"}}]}]}`, true, false},
		{"last message is the assistant's", APIChat, `{"messages":[{"role":"user","content":"Hi?"},{"role":"assistant","content":"Hel"}]}`, "", false, false},
		{"messages blocks", APIMessages, `{"max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"What's up?"}]}]}`,
			`{"max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"what is up"}]}]}`, true, true},
		{"responses string input", APIResponses, `{"input":"What's up?"}`, `{"input":"what is up"}`, true, true},
		{"responses items", APIResponses, `{"input":[{"role":"user","content":[{"type":"input_text","text":"What's up?"}]}]}`,
			`{"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"what is up"}]}]}`, true, false},
		{"responses function output", APIResponses, `{"input":[{"type":"function_call_output","call_id":"c","output":"5"}]}`, "", false, false},
		{"gemini", APIGemini, `{"contents":[{"role":"user","parts":[{"text":"What's up?"}]}]}`, `{"contents":[{"role":"user","parts":[{"text":"what is up"}]}]}`, true, true},
		{"embeddings are never normalized", "embeddings", `{"input":"What's up?"}`, "", false, false},
	} {
		ka, ok := normKey(t, tc.api, []byte(tc.a))
		if ok != tc.ok {
			t.Errorf("%s: ok %v, want %v", tc.name, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		kb, _ := normKey(t, tc.api, []byte(tc.b))
		if (ka == kb) != tc.same {
			t.Errorf("%s: same %v, want %v", tc.name, ka == kb, tc.same)
		}
	}
}

// apiBodies builds, for each client API the normalized tier covers, a
// request with a system prompt (or its API's equivalent), one earlier
// exchange where the API has turns, and turn as the latest user turn.
var apiBodies = []struct {
	name, api, schema, endpoint string
	body                        func(turn string) []byte
}{
	{"chat", APIChat, "openai", "/v1/chat/completions", func(turn string) []byte {
		return chatBody("You are a support agent.", "Hello", turn)
	}},
	{"messages", APIMessages, "anthropic", "/v1/messages", func(turn string) []byte {
		return marshal(map[string]any{"model": "mini", "max_tokens": 64, "system": "You are a support agent.", "messages": []any{
			map[string]any{"role": "user", "content": "Hello"}, map[string]any{"role": "assistant", "content": "Sure."},
			map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": turn}}}}})
	}},
	{"responses string", APIResponses, "openai", "/v1/responses", func(turn string) []byte {
		return marshal(map[string]any{"model": "mini", "temperature": 0, "instructions": "You are a support agent.", "input": turn})
	}},
	{"responses items", APIResponses, "openai", "/v1/responses", func(turn string) []byte {
		return marshal(map[string]any{"model": "mini", "temperature": 0, "instructions": "You are a support agent.", "input": []any{
			map[string]any{"role": "user", "content": "Hello"}, map[string]any{"role": "assistant", "content": "Sure."},
			map[string]any{"type": "message", "role": "user", "content": []any{map[string]any{"type": "input_text", "text": turn}}}}})
	}},
	{"gemini cli (context part, then the turn)", APIGemini, "gemini", "/v1beta/models/mini:streamGenerateContent", func(turn string) []byte {
		return marshal(map[string]any{"systemInstruction": map[string]any{"parts": []any{map[string]any{"text": "You are an interactive CLI agent."}}},
			"generationConfig": map[string]any{"temperature": 1, "topP": 0.95}, "contents": []any{
				map[string]any{"role": "user", "parts": []any{map[string]any{"text": sessionContext}, map[string]any{"text": turn}}}}})
	}},
	{"messages with a reminder block", APIMessages, "anthropic", "/v1/messages", func(turn string) []byte {
		return marshal(map[string]any{"model": "mini", "max_tokens": 64, "messages": []any{
			map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": "<system-reminder>Today's date is 2026-12-08.</system-reminder>"},
				map[string]any{"type": "text", "text": turn, "cache_control": map[string]any{"type": "ephemeral"}}}}}})
	}},
	{"gemini", APIGemini, "gemini", "/v1beta/models/mini:generateContent", func(turn string) []byte {
		return marshal(map[string]any{"systemInstruction": map[string]any{"parts": []any{map[string]any{"text": "You are a support agent."}}},
			"generationConfig": map[string]any{"temperature": 0}, "contents": []any{
				map[string]any{"role": "user", "parts": []any{map[string]any{"text": "Hello"}}}, map[string]any{"role": "model", "parts": []any{map[string]any{"text": "Sure."}}},
				map[string]any{"role": "user", "parts": []any{map[string]any{"text": turn}}}}})
	}},
}

// sessionContext is a long constant first part of the turn, as Gemini CLI
// sends its session context.
var sessionContext = "This is the Gemini CLI. We are setting up the context for our chat. Today's date is Tuesday, December 8, 2026. " +
	strings.Repeat("The workspace holds a Go module with many files and directories. ", 30)

func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestNormalizedTierPrecision scores the cache keys themselves on the
// labelled set: each pair's two turns as the latest user turn of otherwise
// equal requests, in each client API the tier covers. A hit is equal keys.
// The exact tier must hit no pair (no two turns are equal), the normalized
// tier no pair of different meaning, in any API; and each API must hit
// exactly the pairs chat does (the turn is found and normalized alike).
func TestNormalizedTierPrecision(t *testing.T) {
	pairs, err := meaning.LoadPairs("../meaning/testdata/pairs.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var chatHits map[string]bool
	for _, a := range apiBodies {
		t.Run(a.name, func(t *testing.T) {
			in := func(turn string) KeyInput {
				return KeyInput{Tenant: "t", ClientSchema: a.schema, Endpoint: a.endpoint, Pool: "p", Model: "mini", Body: a.body(turn)}
			}
			exact, wrongExact := meaning.Score(pairs, func(x, y string) bool {
				kx, _ := KeyOf(in(x))
				ky, _ := KeyOf(in(y))
				return kx == ky
			})
			hits := map[string]bool{}
			norm, wrong := meaning.Score(pairs, func(x, y string) bool {
				kx, okx, _ := NormalizedKeyOf(in(x), a.api)
				ky, oky, _ := NormalizedKeyOf(in(y), a.api)
				if !okx || !oky {
					t.Fatalf("no latest user turn found in %s", in(x).Body)
				}
				if kx == ky {
					hits[x+"\x00"+y] = true
				}
				return kx == ky
			})
			t.Logf("client API %s\n%s", a.name, meaning.Table([]string{"exact", "normalized"}, []map[string]meaning.Stats{exact, norm}))
			for _, p := range append(wrongExact, wrong...) {
				t.Errorf("a hit on a pair of different meaning (%s, %s): %q, %q", p.Lang, p.Kind, p.A, p.B)
			}
			if norm["all"].Precision() < 1 {
				t.Errorf("normalized tier precision %.2f%%, want 100%%", 100*norm["all"].Precision())
			}
			if chatHits == nil {
				chatHits = hits
			} else if len(hits) != len(chatHits) {
				t.Errorf("%d hits, chat has %d", len(hits), len(chatHits))
			} else {
				for h := range hits {
					if !chatHits[h] {
						t.Errorf("a hit chat does not have: %q", h)
					}
				}
			}
		})
	}
}

// TestNormalizedKeyProviderState: a Responses request that leans on the
// provider's state (an id llmproc did not expand, a conversation, a stored
// prompt, a background run) has no normalized key: llmproc cannot see the
// rest of its input.
func TestNormalizedKeyProviderState(t *testing.T) {
	for _, body := range []string{
		`{"previous_response_id":"resp_1","input":"What's up?"}`,
		`{"conversation":"conv_1","input":"What's up?"}`,
		`{"conversation":{"id":"conv_1"},"input":[{"role":"user","content":"What's up?"}]}`,
		`{"prompt":{"id":"pmpt_1","version":"2"},"input":"What's up?"}`,
		`{"background":true,"input":"What's up?"}`,
	} {
		if _, ok := normKey(t, APIResponses, []byte(body)); ok {
			t.Errorf("a normalized key for %s", body)
		}
	}
	for _, body := range []string{`{"previous_response_id":null,"input":"What's up?"}`, `{"previous_response_id":"","input":"What's up?"}`, `{"background":false,"input":"What's up?"}`} {
		if _, ok := normKey(t, APIResponses, []byte(body)); !ok {
			t.Errorf("no normalized key for %s", body)
		}
	}
}

// BenchmarkNormalizedKey: a 2 KB chat request (system prompt, two earlier
// turns, a 300-byte latest user turn).
func BenchmarkNormalizedKey(b *testing.B) {
	turn := strings.Repeat("Hi, what's your refund policy for orders over 50 dollars, please? ", 5)
	var body []byte
	for n := 20; len(body) < 2048; n++ {
		body = chatBody(strings.Repeat("You are a helpful support agent for an online shop. ", n), strings.Repeat("I ordered a laptop last week. ", 15), turn)
	}
	in := KeyInput{Tenant: "t", ClientSchema: "openai", Endpoint: "/v1/chat/completions", Pool: "p", Model: "mini", Body: body}
	b.Run("alone", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, ok, err := NormalizedKeyOf(in, APIChat); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	// The router's case: both keys from one parse (the normalized key's
	// own cost is the difference from BenchmarkKeyOf).
	b.Run("with-exact", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			d, err := Parse(body)
			if err != nil {
				b.Fatal(err)
			}
			d.Key(in)
			if _, ok := d.NormalizedKey(in, APIChat); !ok {
				b.Fatal("no turn")
			}
			d.Release()
		}
	})
	b.Run("ref", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, ok, err := refNormalizedKeyOf(in, APIChat); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
}
