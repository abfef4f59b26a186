package cache

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/llmproc/llmproc/filter/apierr"
)

const baseBody = `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"What is in this image?"},{"type":"image_url","image_url":{"url":"https://example.com/a.png","detail":"low"}}]}],"temperature":0,"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],"tool_choice":"auto","max_tokens":100}`

func baseInput() KeyInput {
	return KeyInput{Tenant: "acme", ClientSchema: "openai", Endpoint: "/v1/chat/completions",
		Pool: "cheap", Model: "gpt-4o-mini", Body: []byte(baseBody)}
}

func mustKey(t *testing.T, in KeyInput) Key {
	t.Helper()
	k, err := KeyOf(in)
	if err != nil {
		t.Fatalf("KeyOf(%s): %v", in.Body, err)
	}
	return k
}

// set returns baseBody with path set to the raw JSON value.
func set(t *testing.T, path, raw string) string {
	t.Helper()
	s, err := sjson.SetRaw(baseBody, path, raw)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func del(t *testing.T, path string) string {
	t.Helper()
	s, err := sjson.Delete(baseBody, path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestKeyOfSame(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"identical", baseBody},
		{"key order", `{"max_tokens":100,"tool_choice":"auto","tools":[{"function":{"parameters":{"properties":{"city":{"type":"string"}},"type":"object"},"name":"get_weather"},"type":"function"}],"temperature":0,"messages":[{"content":"Be brief.","role":"system"},{"content":[{"text":"What is in this image?","type":"text"},{"image_url":{"detail":"low","url":"https://example.com/a.png"},"type":"image_url"}],"role":"user"}],"model":"gpt-4o-mini"}`},
		{"whitespace", "\n {\n\t\"model\" : \"gpt-4o-mini\" ,\r\n" + strings.TrimPrefix(set(t, "model", `"gpt-4o-mini"`), `{"model":"gpt-4o-mini",`) + "\n"},
		{"1.0 for 0", set(t, "temperature", "0.0")},
		{"-0 for 0", set(t, "temperature", "-0")},
		{"0e5 for 0", set(t, "temperature", "0e5")},
		{"1e2 for 100", set(t, "max_tokens", "1e2")},
		{"100.00 for 100", set(t, "max_tokens", "100.00")},
		{"1000e-1 for 100", set(t, "max_tokens", "1000E-1")},
		{"0.1e3 for 100", set(t, "max_tokens", "0.1e+3")},
		{"escaped string", strings.Replace(baseBody, `"Be brief."`, `"Be \u0062rief\u002e"`, 1)},
		{"escaped key", strings.Replace(baseBody, `"tool_choice"`, `"tool\u005fchoice"`, 1)},
		{"stream true", set(t, "stream", "true")},
		{"stream false", set(t, "stream", "false")},
		{"stream_options", set(t, "stream_options", `{"include_usage":true}`)},
		{"stream and options", baseBody[:len(baseBody)-1] + `,"stream_options":{"include_usage":false},"stream":true}`},
	}
	want := mustKey(t, baseInput())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := baseInput()
			in.Body = []byte(tt.body)
			if got := mustKey(t, in); got != want {
				t.Errorf("key differs from the base request for\n%s", tt.body)
			}
		})
	}
}

func TestKeyOfDiffers(t *testing.T) {
	scope := func(f func(*KeyInput)) KeyInput {
		in := baseInput()
		f(&in)
		return in
	}
	body := func(b string) KeyInput {
		in := baseInput()
		in.Body = []byte(b)
		return in
	}
	tests := []struct {
		name string
		in   KeyInput
	}{
		{"tenant", scope(func(in *KeyInput) { in.Tenant = "globex" })},
		{"no tenant", scope(func(in *KeyInput) { in.Tenant = "" })},
		{"client schema", scope(func(in *KeyInput) { in.ClientSchema = "anthropic" })},
		{"endpoint", scope(func(in *KeyInput) { in.Endpoint = "/v1/messages" })},
		{"pool", scope(func(in *KeyInput) { in.Pool = "smart" })},
		{"model", scope(func(in *KeyInput) { in.Model = "auto" })},
		{"scope fields shifted", scope(func(in *KeyInput) { in.Tenant, in.ClientSchema = "acmeopenai", "" })},
		{"cache group named as the tenant", scope(func(in *KeyInput) { in.Group = in.Tenant })},
		{"cache group", scope(func(in *KeyInput) { in.Group = "shared" })},
		{"body model", body(set(t, "model", `"gpt-4o"`))},
		{"temperature", body(set(t, "temperature", "0.0001"))},
		{"top_p", body(set(t, "top_p", "0.5"))},
		{"seed", body(set(t, "seed", "42"))},
		{"seed other", body(set(t, "seed", "43"))},
		{"stop", body(set(t, "stop", `["\n"]`))},
		{"max_tokens", body(set(t, "max_tokens", "101"))},
		{"max_completion_tokens", body(set(t, "max_completion_tokens", "100"))},
		{"n", body(set(t, "n", "2"))},
		{"presence_penalty", body(set(t, "presence_penalty", "0.5"))},
		{"frequency_penalty", body(set(t, "frequency_penalty", "0.5"))},
		{"logit_bias", body(set(t, "logit_bias", `{"1234":-100}`))},
		{"logprobs", body(set(t, "logprobs", "true"))},
		{"top_logprobs", body(set(t, "top_logprobs", "3"))},
		{"reasoning_effort", body(set(t, "reasoning_effort", `"high"`))},
		{"response_format", body(set(t, "response_format", `{"type":"json_object"}`))},
		{"provider extra", body(set(t, "top_k", "40"))},
		{"user", body(set(t, "user", `"u1"`))},
		{"tool_choice", body(set(t, "tool_choice", `"required"`))},
		{"tool_choice object", body(set(t, "tool_choice", `{"type":"function","function":{"name":"get_weather"}}`))},
		{"no tools", body(del(t, "tools"))},
		{"tool description", body(set(t, "tools.0.function.description", `"Weather now"`))},
		{"tool parameter", body(set(t, "tools.0.function.parameters.properties.unit", `{"type":"string"}`))},
		{"parallel_tool_calls", body(set(t, "parallel_tool_calls", "false"))},
		{"image url", body(set(t, "messages.1.content.1.image_url.url", `"https://example.com/b.png"`))},
		{"image detail", body(set(t, "messages.1.content.1.image_url.detail", `"high"`))},
		{"text part", body(set(t, "messages.1.content.0.text", `"What is in this picture?"`))},
		{"extra part", body(set(t, "messages.1.content.-1", `{"type":"text","text":"Thanks"}`))},
		{"dropped part", body(del(t, "messages.1.content.1"))},
		{"part order", body(set(t, "messages.1.content", `[{"type":"image_url","image_url":{"url":"https://example.com/a.png","detail":"low"}},{"type":"text","text":"What is in this image?"}]`))},
		{"message role", body(set(t, "messages.0.role", `"developer"`))},
		{"message name", body(set(t, "messages.0.name", `"x"`))},
		{"extra message", body(set(t, "messages.-1", `{"role":"assistant","content":"?"}`))},
		{"string vs number", body(set(t, "max_tokens", `"100"`))},
		{"null vs absent", body(set(t, "seed", "null"))},
		{"false vs absent", body(set(t, "logprobs", "false"))},
		{"empty array vs object", body(set(t, "stop", "[]"))},
		{"0.1 vs 0.10000000000000001", body(set(t, "top_p", "0.10000000000000001"))},
		{"lone surrogate vs U+FFFD", body(set(t, "user", `"\ud800"`))},
		{"U+FFFD escaped", body(set(t, "user", `"\ufffd"`))},
		{"nested stream kept", body(set(t, "metadata", `{"stream":true}`))},
	}
	base := mustKey(t, baseInput())
	seen := map[Key]string{}
	for _, tt := range tests {
		k := mustKey(t, tt.in)
		if k == base {
			t.Errorf("%s: same key as the base request", tt.name)
		}
		if other, dup := seen[k]; dup {
			t.Errorf("%s: same key as %s", tt.name, other)
		}
		seen[k] = tt.name
	}
	// 0.1 and 0.10000000000000001 are the same float64, but not the same
	// number as written; the key keeps them apart (a miss, never a wrong hit).
	a, b := body(set(t, "top_p", "0.1")), body(set(t, "top_p", "0.10000000000000001"))
	if mustKey(t, a) == mustKey(t, b) {
		t.Error("numbers that differ in their decimal digits share a key")
	}
}

func TestKeyOfRejects(t *testing.T) {
	for _, b := range []string{``, `[]`, `"x"`, `1`, `null`, `{"a":}`, `{"a":1`, `{"a":1}x`, "{\"a\":\"\x00\"}"} {
		in := baseInput()
		in.Body = []byte(b)
		_, err := KeyOf(in)
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.Status != 400 {
			t.Errorf("KeyOf(%q) = %v, want a 400 apierr.Error", b, err)
		}
	}
}

func TestAppendNumber(t *testing.T) {
	tests := []struct{ in, want string }{
		{"0", "0"}, {"-0", "0"}, {"0.000", "0"}, {"0e-7", "0"},
		{"1", "1e1"}, {"1.0", "1e1"}, {"1e0", "1e1"}, {"10e-1", "1e1"}, {"0.1e1", "1e1"},
		{"-1", "-1e1"}, {"100", "1e3"}, {"1e2", "1e3"}, {"101", "101e3"},
		{"0.5", "5e0"}, {"0.05", "5e-1"}, {"5e-2", "5e-1"}, {"1.25", "125e1"},
		{"1.0005", "10005e1"}, {"100.001", "100001e3"},
		{"1e99999999999999999999", "r1e99999999999999999999"},
	}
	for _, tt := range tests {
		if got := string(appendNumber(nil, tt.in)); got != tt.want {
			t.Errorf("appendNumber(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// permute rewrites a JSON value with every object's members shuffled and
// random whitespace between tokens.
func permute(r *rand.Rand, v gjson.Result, top bool) string {
	ws := func() string { return [...]string{"", " ", "\n", "\t", "  "}[r.IntN(5)] }
	switch {
	case v.IsObject():
		var parts []string
		v.ForEach(func(k, e gjson.Result) bool {
			parts = append(parts, ws()+k.Raw+ws()+":"+ws()+permute(r, e, false)+ws())
			return true
		})
		r.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
		if top {
			parts = append(parts, `"stream":`+[...]string{"true", "false"}[r.IntN(2)])
		}
		return "{" + strings.Join(parts, ",") + "}"
	case v.IsArray():
		var parts []string
		v.ForEach(func(_, e gjson.Result) bool {
			parts = append(parts, ws()+permute(r, e, false)+ws())
			return true
		})
		return "[" + strings.Join(parts, ",") + "]"
	}
	return v.Raw
}

func FuzzKeyOf(f *testing.F) {
	f.Add([]byte(baseBody), uint64(1))
	f.Add([]byte(`{"a":{"b":[1,2,{"c":1.5e3}]},"stream":true}`), uint64(2))
	f.Add([]byte(`{"a":1,"a":2}`), uint64(3))
	f.Add([]byte(`[1]`), uint64(4))
	f.Add([]byte(`{"x":"\ud800"}`), uint64(5))
	f.Fuzz(func(t *testing.T, body []byte, seed uint64) {
		in := baseInput()
		in.Body = body
		k, err := KeyOf(in)
		if err != nil {
			return
		}
		root := gjson.ParseBytes(body)
		// Duplicate keys keep their relative order in the canonical form, so
		// shuffling them apart is not a permutation the key ignores.
		dup := false
		var walk func(v gjson.Result)
		walk = func(v gjson.Result) {
			if !v.IsObject() && !v.IsArray() {
				return // ForEach would call back with v itself
			}
			keys := map[string]bool{}
			v.ForEach(func(kk, e gjson.Result) bool {
				if v.IsObject() {
					if keys[kk.Str] {
						dup = true
					}
					keys[kk.Str] = true
				}
				walk(e)
				return true
			})
		}
		walk(root)
		if dup {
			return
		}
		in.Body = []byte(permute(rand.New(rand.NewPCG(seed, seed)), root, true))
		k2, err := KeyOf(in)
		if err != nil {
			t.Fatalf("permuted body rejected: %v\n%s", err, in.Body)
		}
		if k != k2 {
			t.Fatalf("permuted body has another key:\n%s\n%s", body, in.Body)
		}
	})
}

// requestOfSize builds a chat request of about n bytes: a system prompt,
// alternating turns, two tools and sampling parameters.
func requestOfSize(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"model":"gpt-4o-mini","temperature":0,"seed":7,"max_tokens":512,"tools":[{"type":"function","function":{"name":"lookup","description":"Look a thing up.","parameters":{"type":"object","properties":{"q":{"type":"string"},"limit":{"type":"integer"}},"required":["q"]}}},{"type":"function","function":{"name":"calc","parameters":{"type":"object","properties":{"expr":{"type":"string"}}}}}],"messages":[{"role":"system","content":"You are a helpful assistant."}`)
	for i := 0; b.Len() < n-40; i++ {
		role := [...]string{"user", "assistant"}[i%2]
		fmt.Fprintf(&b, `,{"role":%q,"content":"Turn %d: the quick brown fox jumps over the lazy dog, again and again and again."}`, role, i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// BenchmarkKeyOf measures key computation; compare runs with
// go test -run x -bench KeyOf -count 10 | benchstat.
func BenchmarkKeyOf(b *testing.B) {
	for _, size := range []int{2 << 10, 64 << 10} {
		in := baseInput()
		in.Body = requestOfSize(size)
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in.Body)))
			for b.Loop() {
				if _, err := KeyOf(in); err != nil {
					b.Fatal(err)
				}
			}
		})
		// The reference (key_ref_test.go), the key before Doc, measured in
		// the same run: on a loaded machine only the ratio means much.
		b.Run(fmt.Sprintf("%dKB/ref", size>>10), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in.Body)))
			for b.Loop() {
				if _, err := refKeyOf(in, keyVersion); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Tenants of one cache group share a key; the group replaces the tenant, so
// a tenant outside it, or the group's own name used as a tenant, does not.
func TestKeyOfGroupShared(t *testing.T) {
	key := func(tenant, group string) Key {
		in := baseInput()
		in.Tenant, in.Group = tenant, group
		k, err := KeyOf(in)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	if key("a", "shared") != key("b", "shared") {
		t.Error("two tenants of one group have different keys")
	}
	for _, other := range []Key{key("a", ""), key("shared", ""), key("a", "other")} {
		if other == key("a", "shared") {
			t.Error("a key outside the group equals the group's")
		}
	}
}
