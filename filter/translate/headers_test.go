package translate

import (
	"slices"
	"testing"

	"github.com/llmproc/llmproc/filter/config"
)

// TestSetHeadersAreDeclared: every header a translator sets is among its
// Headers, which the upstream role removes from every attempt; a header
// missing there would survive into the next attempt for another backend.
func TestSetHeadersAreDeclared(t *testing.T) {
	bedrockSession := testBedrockBackend()
	bedrockSession.Credential += ":session-token"
	backends := []*config.RBackend{
		{Name: "o", Schema: "openai", Credential: "k"},
		{Name: "c", Schema: "openai-compatible", Credential: "k"},
		{Name: "a", Schema: "azure-openai", Credential: "k", Azure: config.AzureOptions{APIVersion: "2024-10-21"}},
		{Name: "ab", Schema: "azure-openai", Credential: "k", Azure: config.AzureOptions{APIVersion: "2024-10-21", Auth: "bearer"}},
		{Name: "an", Schema: "anthropic", Credential: "k"},
		{Name: "g", Schema: "gemini", Credential: "k"},
		vertexBackend("ya29.token"),
		testBedrockBackend(),
		bedrockSession,
	}
	set := NewSet(SetOptions{})
	for _, be := range backends {
		tr, err := set.For(be.Schema)
		if err != nil {
			t.Fatal(err)
		}
		for _, stream := range []bool{false, true} {
			up, err := tr.Request(&Request{Body: []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`),
				Backend: be, ClientModel: "m", Model: "m", Stream: stream})
			if err != nil {
				t.Fatalf("%s: %v", be.Name, err)
			}
			for _, kv := range up.SetHeaders {
				if !slices.Contains(tr.Headers(), kv[0]) {
					t.Errorf("%s (%s) sets %s, which its Headers %v do not declare", be.Name, be.Schema, kv[0], tr.Headers())
				}
				if !slices.Contains(set.Headers(), kv[0]) {
					t.Errorf("Set.Headers lacks %s", kv[0])
				}
			}
		}
	}
}
