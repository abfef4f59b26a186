package cache

import "testing"

// TestEmbeddingsAssembler: a complete embeddings answer is stored byte for
// byte, split at any boundary; a cut, failed, usage-less, non-embeddings
// or too large one is not.
func TestEmbeddingsAssembler(t *testing.T) {
	const ok = `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.25,-0.5]}],"model":"m","usage":{"prompt_tokens":3,"total_tokens":3}}`
	for _, c := range []struct {
		name, body string
		max        int
		skip       string
	}{
		{"ok", ok, 0, ""},
		{"cut", ok[:len(ok)-3], 0, SkipCut},
		{"error", `{"error":{"message":"x"}}`, 0, SkipInvalid},
		{"no data", `{"object":"list","usage":{"prompt_tokens":3}}`, 0, SkipInvalid},
		{"no usage", `{"object":"list","data":[]}`, 0, SkipNoUsage},
		{"too large", ok, 20, SkipTooLarge},
	} {
		a := NewEmbeddingsAssembler(c.max)
		for i := 0; i < len(c.body); i += 5 {
			a.Write([]byte(c.body[i:min(i+5, len(c.body))]))
		}
		got, stored := a.Finish()
		switch {
		case c.skip == "" && (!stored || string(got) != c.body):
			t.Errorf("%s: stored %v %s (%s)", c.name, stored, got, a.Reason())
		case c.skip != "" && (stored || a.Reason() != c.skip):
			t.Errorf("%s: stored %v, reason %q, want %q", c.name, stored, a.Reason(), c.skip)
		}
	}
}
