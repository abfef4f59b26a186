package translate

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/config"
)

// TestGeminiSignaturesThroughResponses: Gemini's thought signatures reach
// a Responses client inside the reasoning item's encrypted_content, bound
// to the Gemini backend, and go back on the parts they came with when the
// next turn goes to that backend; another backend (another Gemini one
// included) gets none, and Gemini gets no other backend's.
func TestGeminiSignaturesThroughResponses(t *testing.T) {
	gem := &config.RBackend{Name: "gem", Schema: "gemini"}
	cases := []struct {
		fixture string
		stream  bool
		want    []string // the model turn's parts with their signatures, as sent to gem
	}{
		{"thought_signatures.response.json", false, []string{
			`{"functionCall":{"name":"get_weather","args":{"city":"Paris"}},"thoughtSignature":"R2VtaW5pU2lnQQ=="}`,
			`{"functionCall":{"name":"get_weather","args":{"city":"Rome"}}}`,
		}},
		{"thought_signatures.stream.sse", true, []string{
			`{"text":"Looking it up.","thoughtSignature":"U2lnRW5k"}`,
			`{"functionCall":{"name":"get_weather","args":{"city":"Oslo"}},"thoughtSignature":"U2lnT3Nsbw=="}`,
		}},
	}
	for _, c := range cases {
		t.Run(c.fixture, func(t *testing.T) {
			req := `{"model":"m","input":"Weather?","include":["reasoning.encrypted_content"],"tools":[{"type":"function","name":"get_weather"}]`
			if c.stream {
				req += `,"stream":true`
			}
			_, meta, err := ResponsesRequestToChat([]byte(req+"}"), gem)
			if err != nil {
				t.Fatal(err)
			}
			// Gemini's answer → hub → Responses, split at every byte.
			in := readFile(t, filepath.Join("testdata", "gemini", c.fixture))
			tr := gemini{now: geminiClock}
			out := splitEverywhere(t, in, func() Body {
				return chainBodies{tr.Response(&Response{Status: 200, ContentType: "application/json", Stream: c.stream, Model: "m", Reasoning: true}).Body,
					ResponsesResponse(meta, c.stream, 200, "m")}
			})
			final := gjson.ParseBytes(out)
			if c.stream {
				final = respCheckStream(t, out)
			}
			var next, outputs []string
			var enc string
			final.Get("output").ForEach(func(_, it gjson.Result) bool {
				if it.Get("type").Str == "reasoning" {
					enc = it.Get("encrypted_content").Str
				}
				next = append(next, it.Raw)
				if it.Get("type").Str == "function_call" {
					outputs = append(outputs, `{"type":"function_call_output","call_id":`+it.Get("call_id").Raw+`,"output":"ok"}`)
				}
				return true
			})
			if !strings.HasPrefix(enc, "llmproc:v1:gemini:gem:") || strings.Contains(enc, "R2VtaW5p") || strings.Contains(enc, "U2ln") {
				t.Fatalf("encrypted_content %q (output %s)", enc, final.Get("output").Raw)
			}
			body := `{"model":"m","input":[{"role":"user","content":"Weather?"},` + strings.Join(append(next, outputs...), ",") + `]}`
			for _, be := range []*config.RBackend{gem, {Name: "gem-eu", Schema: "gemini"}, {Name: "claude", Schema: "anthropic"}} {
				chat, _, err := ResponsesRequestToChat([]byte(body), be)
				if err != nil {
					t.Fatal(err)
				}
				if be.Schema != "gemini" {
					if strings.Contains(string(chat), "thinking_blocks") {
						t.Errorf("to %s: %s", be.Name, chat)
					}
					continue
				}
				up, err := tr.Request(&Request{Body: chat, Backend: be, Model: "m"})
				if err != nil {
					t.Fatal(err)
				}
				parts := gjson.GetBytes(up.Body, `contents.#(role=="model").parts`)
				if be != gem {
					// No signature of its own: the skip marker, as for any foreign history.
					if strings.Contains(parts.Raw, "U2ln") || strings.Contains(parts.Raw, "R2VtaW5p") || !strings.Contains(parts.Raw, thoughtSkip) {
						t.Errorf("to %s: parts %s", be.Name, parts.Raw)
					}
					continue
				}
				var got []string
				parts.ForEach(func(_, p gjson.Result) bool { got = append(got, p.Raw); return true })
				if strings.Join(got, ",") != strings.Join(c.want, ",") {
					t.Errorf("to %s: parts\n got %s\nwant %s", be.Name, strings.Join(got, ","), strings.Join(c.want, ","))
				}
			}
		})
	}
}

// TestGeminiSignaturesNotToClaude: a chat history carrying a Gemini
// signature sends none of it to Anthropic or Bedrock, and Gemini none of
// Anthropic's.
func TestGeminiSignaturesNotToClaude(t *testing.T) {
	const body = `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":null,"thinking_blocks":[{"type":"thought_signature","signature":"R2VtU2ln","tool_call_id":"call_0"},{"type":"thinking","thinking":"t","signature":"QW50U2ln"}],"tool_calls":[{"id":"call_0","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"call_0","content":"ok"}]}`
	for _, c := range []struct {
		tr         Translator
		be         *config.RBackend
		want, deny string
	}{
		{anthropicTest, &config.RBackend{Name: "a", Schema: "anthropic"}, "QW50U2ln", "R2VtU2ln"},
		{testBedrock(), testBedrockBackend(), "QW50U2ln", "R2VtU2ln"},
		{gemini{}, &config.RBackend{Name: "g", Schema: "gemini"}, "R2VtU2ln", "QW50U2ln"},
	} {
		up, err := c.tr.Request(&Request{Body: []byte(body), Backend: c.be, Model: "m"})
		if err != nil {
			t.Fatalf("%s: %v", c.be.Schema, err)
		}
		if s := string(up.Body); !strings.Contains(s, c.want) || strings.Contains(s, c.deny) {
			t.Errorf("%s: body %s", c.be.Schema, s)
		}
	}
}

// chainBodies feeds a backend translator's output to a client translator,
// as the filter chains them.
type chainBodies [2]Body

func (c chainBodies) Chunk(chunk []byte, eos bool) ([]byte, bool) {
	out, pass := c[0].Chunk(chunk, eos)
	if pass {
		out = chunk
	}
	out, pass = c[1].Chunk(out, eos)
	if pass {
		return out, false
	}
	return out, false
}
