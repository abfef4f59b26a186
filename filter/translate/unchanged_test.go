package translate

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/config"
)

// TestUnchangedAgreesWithRequest: whenever Unchanged says a body goes as it
// is, Request, given any body with those facts, keeps the body (Body nil)
// and asks for the same path and headers; and it says so for the plain
// cases the upstream role relies on.
func TestUnchangedAgreesWithRequest(t *testing.T) {
	no := false
	bodies := []string{
		`{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]}`,
		`{"model":"m","stream":true,"stream_options":{"include_usage":false},"messages":[]}`,
		`{"model":"m","max_tokens":5,"temperature":1,"messages":[]}`,
		`{"model":"m","messages":[{"role":"assistant","content":"x","thinking_blocks":[{"type":"thinking"}]}]}`,
	}
	backends := map[string]*config.RBackend{
		"openai":         {Name: "o", Schema: "openai", Credential: "k"},
		"compatible":     {Name: "c", Schema: "openai-compatible", BasePath: "/v1x"},
		"no options":     {Name: "n", Schema: "openai-compatible", Compat: config.CompatOptions{StreamOptions: &no}},
		"drop":           {Name: "d", Schema: "openai", DropParams: []string{"temperature"}},
		"max field":      {Name: "f", Schema: "openai", Compat: config.CompatOptions{MaxTokensField: "max_completion_tokens"}},
		"azure":          {Name: "a", Schema: "azure-openai", Credential: "k", Azure: config.AzureOptions{APIVersion: "2024-10-21"}},
		"azure old":      {Name: "z", Schema: "azure-openai", Credential: "k", Azure: config.AzureOptions{APIVersion: "2024-02-01"}},
		"azure bearer":   {Name: "b", Schema: "azure-openai", Credential: "t", Azure: config.AzureOptions{APIVersion: "2024-10-21", Auth: "bearer"}},
		"compat default": {Name: "x", Schema: "openai-compatible", Compat: config.CompatOptions{MaxTokensField: ""}},
	}
	passes := 0
	for name, be := range backends {
		tr, err := For(be.Schema)
		if err != nil {
			t.Fatal(err)
		}
		un, ok := tr.(Unchanged)
		if !ok {
			t.Fatalf("%s: %T is no Unchanged", name, tr)
		}
		for _, served := range []string{"m", "other"} {
			for _, b := range bodies {
				body := []byte(b)
				stream := gjson.GetBytes(body, "stream").Bool()
				r := &Request{Body: body, Backend: be, ClientModel: "m", Model: served, Stream: stream,
					UsageRequested: gjson.GetBytes(body, "stream_options.include_usage").Bool()}
				f := BodyFacts{ThinkingBlocks: bytes.Contains(body, []byte(`"thinking_blocks"`)),
					StreamOptions: gjson.GetBytes(body, "stream_options").Exists()}
				want, ok := un.Unchanged(&Request{Backend: be, ClientModel: "m", Model: served, Stream: stream, UsageRequested: r.UsageRequested}, f)
				if !ok {
					continue
				}
				passes++
				got, err := tr.Request(r)
				if err != nil {
					t.Fatalf("%s %s: %v", name, b, err)
				}
				if got.Body != nil {
					t.Errorf("%s, model %s, %s: Unchanged said unchanged, Request sent %s", name, served, b, got.Body)
				}
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("%s %s: path/headers differ (-unchanged +request):\n%s", name, b, d)
				}
			}
		}
	}
	if passes < 10 {
		t.Errorf("only %d combinations pass unchanged", passes)
	}
	// The cases the upstream role relies on.
	plain := &Request{Backend: backends["openai"], ClientModel: "m", Model: "m"}
	if _, ok := (openAI{}).Unchanged(plain, BodyFacts{}); !ok {
		t.Error("a plain JSON request to openai needs its body")
	}
	plain.Stream = true
	if _, ok := (openAI{}).Unchanged(plain, BodyFacts{}); ok {
		t.Error("a stream without include_usage passes unchanged: llmproc adds it")
	}
	plain.UsageRequested = true
	if _, ok := (openAI{}).Unchanged(plain, BodyFacts{StreamOptions: true}); !ok {
		t.Error("a stream with include_usage needs its body")
	}
}
