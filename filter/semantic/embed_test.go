package semantic_test

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/llmproc/llmproc/e2e/fake"
	"github.com/llmproc/llmproc/e2e/fakegemini"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/semantic"
	"github.com/llmproc/llmproc/filter/translate"
)

func backendAt(t *testing.T, name, schema, addr, credential string) *config.RBackend {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return &config.RBackend{Name: name, Schema: schema, Host: host, Port: uint32(p), Credential: credential}
}

// TestEmbedder: the vector comes from the pool's backend, in any schema the
// translators speak, is cached by text, and a pool that cannot answer is an
// error (the caller's miss), after trying every member.
func TestEmbedder(t *testing.T) {
	oai := fakeopenai.New(fakeopenai.Options{})
	defer oai.Close()
	gem := fakegemini.New(fakegemini.Options{Key: "gkey"})
	defer gem.Close()
	down := backendAt(t, "down", "openai", "127.0.0.1:1", "")
	cases := []struct {
		name    string
		members []*config.RMember
	}{
		{"openai", []*config.RMember{{Backend: backendAt(t, "oai", "openai", oai.Addr(), "sk")}}},
		{"gemini translated", []*config.RMember{{Backend: backendAt(t, "gem", "gemini", gem.Addr(), "gkey"), Model: "gemini-embedding-001"}}},
		{"fallback past a dead member", []*config.RMember{{Backend: down}, {Backend: backendAt(t, "oai", "openai", oai.Addr(), "sk")}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var mu sync.Mutex
			counts := map[string]int{}
			e := semantic.NewEmbedder(semantic.EmbedderOptions{
				Pool: &config.RPool{Name: "emb", Members: c.members}, Model: "text-embedding-3-small", Dims: 64,
				Timeout: 5 * time.Second, Translators: translate.NewSet(translate.SetOptions{}),
				OnEmbed: func(r string) { mu.Lock(); counts[r]++; mu.Unlock() },
			})
			text := "What is your refund policy?"
			want := semantic.Normalize(toF32(fake.Vector(text, 64)))
			for range 2 {
				v, err := e.Embed(context.Background(), text)
				if err != nil {
					t.Fatal(err)
				}
				if len(v) != len(want) {
					t.Fatalf("dims %d, want %d", len(v), len(want))
				}
				for i := range v {
					if d := v[i] - want[i]; d > 1e-6 || d < -1e-6 {
						t.Fatalf("v[%d] = %v, want %v", i, v[i], want[i])
					}
				}
			}
			if counts[semantic.EmbedCalled] != 1 || counts[semantic.EmbedLocal] != 1 {
				t.Errorf("counts %v: want one call, then one cached answer", counts)
			}
		})
	}
	t.Run("all members down", func(t *testing.T) {
		e := semantic.NewEmbedder(semantic.EmbedderOptions{Pool: &config.RPool{Name: "emb", Members: []*config.RMember{{Backend: down}}},
			Model: "m", Timeout: 5 * time.Second})
		if _, err := e.Embed(context.Background(), "x"); err == nil {
			t.Fatal("no error from a pool that cannot answer")
		}
	})
	t.Run("provider error status", func(t *testing.T) {
		bad := fakeopenai.New(fakeopenai.Options{Default: fakeopenai.Behaviour{Status: 500}})
		defer bad.Close()
		e := semantic.NewEmbedder(semantic.EmbedderOptions{Pool: &config.RPool{Name: "emb", Members: []*config.RMember{{Backend: backendAt(t, "b", "openai", bad.Addr(), "")}}},
			Model: "m", Timeout: 5 * time.Second})
		if _, err := e.Embed(context.Background(), "x"); err == nil {
			t.Fatal("a 500 gave a vector")
		}
	})
}

func toF32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}
