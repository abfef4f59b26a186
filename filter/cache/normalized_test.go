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

// TestNormalizedTierPrecision scores the cache keys themselves on the
// labelled set: each pair's two turns as the latest user turn of otherwise
// equal chat requests. A hit is equal keys. The exact tier must hit no pair
// (no two turns are equal), the normalized tier no pair of different
// meaning.
func TestNormalizedTierPrecision(t *testing.T) {
	pairs, err := meaning.LoadPairs("../meaning/testdata/pairs.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	in := func(turn string) KeyInput {
		return KeyInput{Tenant: "t", ClientSchema: "openai", Endpoint: "/v1/chat/completions", Pool: "p", Model: "mini", Body: chatBody("You are a support agent.", "", turn)}
	}
	exact, wrongExact := meaning.Score(pairs, func(a, b string) bool {
		ka, _ := KeyOf(in(a))
		kb, _ := KeyOf(in(b))
		return ka == kb
	})
	norm, wrong := meaning.Score(pairs, func(a, b string) bool {
		ka, _, _ := NormalizedKeyOf(in(a), APIChat)
		kb, _, _ := NormalizedKeyOf(in(b), APIChat)
		return ka == kb
	})
	t.Logf("\n%s", meaning.Table([]string{"exact", "normalized"}, []map[string]meaning.Stats{exact, norm}))
	for _, p := range append(wrongExact, wrong...) {
		t.Errorf("a hit on a pair of different meaning (%s, %s): %q, %q", p.Lang, p.Kind, p.A, p.B)
	}
	if norm["all"].Precision() < 1 {
		t.Errorf("normalized tier precision %.2f%%, want 100%%", 100*norm["all"].Precision())
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
