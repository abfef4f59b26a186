package semantic

import (
	"testing"

	"github.com/llmproc/llmproc/filter/cache"
)

func TestSplit(t *testing.T) {
	cases := []struct {
		name, body, text string
		ok               bool
	}{
		{"string", `{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi there"}]}`, "hi there", true},
		{"text parts", `{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}`, "a\nb", true},
		{"image part", `{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"x"}}]}]}`, "", false},
		{"last is assistant", `{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}`, "", false},
		{"tool result", `{"messages":[{"role":"tool","content":"42","tool_call_id":"c"}]}`, "", false},
		{"anthropic blocks", `{"system":"s","messages":[{"role":"user","content":[{"type":"text","text":"hello"}]}]}`, "hello", true},
		{"anthropic tool_result", `{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"x","content":"1"}]}]}`, "", false},
		{"blank", `{"messages":[{"role":"user","content":"  "}]}`, "", false},
		{"no messages", `{"input":"x"}`, "", false},
		{"not json", `{`, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text, _, ok := Split([]byte(c.body))
			if ok != c.ok || text != c.text {
				t.Fatalf("Split = %q, %v; want %q, %v", text, ok, c.text, c.ok)
			}
		})
	}
}

// TestBucket: the bucket is everything but the latest user turn, exact.
func TestBucket(t *testing.T) {
	in := cache.KeyInput{Tenant: "t", ClientSchema: "openai", Endpoint: "/v1/chat/completions", Pool: "p", Model: "m"}
	bucket := func(in cache.KeyInput, body string) Bucket {
		t.Helper()
		_, rest, ok := Split([]byte(body))
		if !ok {
			t.Fatalf("Split refused %s", body)
		}
		b, err := BucketOf(in, rest)
		if err != nil {
			t.Fatal(err)
		}
		return b
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
	_, rest, _ := Split(body)
	if b, _ := BucketOf(cache.KeyInput{Endpoint: "/e"}, rest); b == Bucket(k) {
		t.Errorf("a bucket equals an exact key")
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
