package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/e2e/fakegemini"
	"github.com/llmproc/llmproc/e2e/fakeopenai"
)

// The normalized and semantic tiers for a Responses API client and a Gemini
// client, as for chat (TestCacheNormalizedTier, TestSemanticCacheAcrossReplicas):
// a near-identical latest user turn is served from the first answer in the
// client's own shape, JSON and streamed, naming the stored request; a
// different question, another earlier turn, or a conversation llmproc
// cannot see whole goes to the provider. Embeddings for the semantic tier
// come from the OpenAI fake's /v1/embeddings (fake.Vector, the stand-in).

const tiersAPIsConfig = `
identity: {allow_client_tenant: true} # the tenant header as sent: a test
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
log: {level: debug, format: text}
limits: {max_request_bytes: 65536, shutdown_grace: 2s}
envoy: {listen: "127.0.0.1:0", num_retries: 0}
backends:
  - {name: openai, schema: openai, url: "%s", credential: {env: OPENAI_KEY}}
  - {name: gemini, schema: gemini, url: "%s", credential: {env: GEMINI_KEY}}
models:
  - {name: gpt-4o-mini, pool: openai, price: {input: 0.15, output: 0.60}}
  - {name: gemini-2.5-flash, pool: gemini, price: {input: 0.30, output: 2.50}}
  - {name: text-embedding-3-small, kind: embedding, pool: emb, price: {input: 0.02}}
pools:
  - {name: openai, backends: [{backend: openai}]}
  - {name: gemini, backends: [{backend: gemini}]}
  - {name: emb, backends: [{backend: openai}]}
cache:
  mode: deterministic
  match: %s
  ttl: 1h
  tenant_header: x-tenant
  conversations: {ttl: 1h}
  semantic: {embeddings_pool: emb, dimensions: 256, threshold: 0.9, timeout: 2s}
`

type tiersEnv struct {
	*env
	openai  *fakeopenai.Server
	gemini  *fakegemini.Server
	answers atomic.Int64 // chat answers either provider gave ("answer-N")
	tier    string       // normalized or semantic
}

func startTiers(t *testing.T, tier string) *tiersEnv {
	t.Helper()
	e := &tiersEnv{openai: fakeopenai.New(fakeopenai.Options{}), gemini: fakegemini.New(fakegemini.Options{Key: "gemini-secret"}), tier: tier}
	t.Cleanup(func() { e.openai.Close(); e.gemini.Close() })
	e.openai.Script(func(r fakeopenai.Request) fakeopenai.Behaviour {
		if strings.HasSuffix(r.Path, "/embeddings") {
			return fakeopenai.Behaviour{Usage: fakeopenai.Usage{Prompt: 8}}
		}
		return fakeopenai.Behaviour{Content: fmt.Sprintf("answer-%d is here", e.answers.Add(1)), Usage: fakeopenai.Usage{Prompt: 20, Completion: 4}}
	})
	e.gemini.Script(func(fakegemini.Request) fakegemini.Behaviour {
		return fakegemini.Behaviour{Text: fmt.Sprintf("answer-%d is here", e.answers.Add(1)), Usage: fakegemini.Usage{Prompt: 20, Candidates: 4}}
	})
	st, accessLog, log := startStack(t, fmt.Sprintf(tiersAPIsConfig, e.openai.URL(), e.gemini.URL(), tier),
		map[string]string{"OPENAI_KEY": "sk-openai", "GEMINI_KEY": "gemini-secret"})
	e.env = &env{Stack: st, accessLog: accessLog, log: log}
	return e
}

// stored waits, on the semantic tier, until a miss's latest turn was added
// to its bucket (the upstream role adds it in the background once the
// entry is stored): each miss embeds its turn twice, at the lookup and at
// the store; misses counts the misses so far. The normalized tier stores
// in process before the answer's last byte leaves: nothing to wait for.
func (e *tiersEnv) stored(t *testing.T, misses int) {
	t.Helper()
	if e.tier != "semantic" {
		return
	}
	want := float64(2 * misses)
	e.metricsWhen(t, func(m map[string][]sample) bool {
		return sum(m["llmproc_cache_semantic_embeddings_total"], nil) >= want
	})
}

// hitWord is x-llmproc-cache on the tier's hit.
func (e *tiersEnv) hitWord() string { return "hit-" + e.tier }

// variant is a near-identical spelling of "What is your refund policy?"
// each tier matches (other is a second one): the normalized tier folds
// contractions, case and punctuation; to the stand-in embedding casing and
// punctuation are no change at all (similarity 1.00) and a "Please, " a
// small one (0.90).
func (e *tiersEnv) variant(other bool) string {
	switch {
	case e.tier == "semantic" && other:
		return "Please, what is your refund policy?"
	case e.tier == "semantic":
		return "what is your refund policy"
	case other:
		return "WHAT'S YOUR REFUND POLICY"
	}
	return "what's your refund policy"
}

func wantHit(t *testing.T, what string, r result, word, firstID, text, firstText string) {
	t.Helper()
	if r.header.Get("x-llmproc-cache") != word || text != firstText || r.header.Get("x-llmproc-cache-request-id") != firstID {
		t.Errorf("%s: x-llmproc-cache %q, text %q, original request %q; want %s with %q from %q", what,
			r.header.Get("x-llmproc-cache"), text, r.header.Get("x-llmproc-cache-request-id"), word, firstText, firstID)
	}
	if word == "hit-semantic" && !strings.HasPrefix(r.header.Get("x-llmproc-cache-similarity"), "0.9") && r.header.Get("x-llmproc-cache-similarity") != "1.00" {
		t.Errorf("%s: x-llmproc-cache-similarity %q", what, r.header.Get("x-llmproc-cache-similarity"))
	}
}

func wantMiss(t *testing.T, what string, r result, text, firstText string) {
	t.Helper()
	if r.header.Get("x-llmproc-cache") != "miss" || text == firstText {
		t.Errorf("%s: x-llmproc-cache %q, text %q: shared the first entry (%q)", what, r.header.Get("x-llmproc-cache"), text, firstText)
	}
}

func TestCacheTiersResponsesClient(t *testing.T) {
	for _, tier := range []string{"normalized", "semantic"} {
		t.Run(tier, func(t *testing.T) {
			e := startTiers(t, tier)
			misses := 0
			ask := func(body string) (result, string) {
				t.Helper()
				r, resp := e.respond(t, "shop", body)
				if r.header.Get("x-llmproc-cache") == "miss" {
					misses++
				}
				return r, responsesText(resp)
			}
			str := func(turn, extra string) string {
				return `{"model":"gpt-4o-mini","temperature":0,` + extra + `"instructions":"You answer for the shop.","input":` + strconv.Quote(turn) + `}`
			}

			// input as a string, JSON and streamed.
			first, firstText := ask(str("What is your refund policy?", ""))
			firstID := first.header.Get("x-llmproc-request-id")
			if first.header.Get("x-llmproc-cache") != "miss" || firstID == "" {
				t.Fatalf("first: x-llmproc-cache %q, request id %q", first.header.Get("x-llmproc-cache"), firstID)
			}
			e.stored(t, misses)
			r, text := ask(str(e.variant(false), ""))
			wantHit(t, "string input", r, e.hitWord(), firstID, text, firstText)
			r, text = ask(str(e.variant(true), `"stream":true,`))
			wantHit(t, "streamed", r, e.hitWord(), firstID, text, firstText)
			if evs := responsesEvents(t, r.body); evs[0].Get("type").Str != "response.created" || evs[len(evs)-1].Get("type").Str != "response.completed" {
				t.Errorf("the streamed hit is not a Responses stream:\n%s", r.body)
			}
			for _, turn := range []string{"What is your refund policy for 2 items?", "What is not your refund policy?"} {
				r, text = ask(str(turn, ""))
				wantMiss(t, turn, r, text, firstText)
			}

			// input as items: the earlier turns stay exact.
			items := func(earlier, turn string) string {
				return `{"model":"gpt-4o-mini","temperature":0,"input":[{"role":"user","content":` + strconv.Quote(earlier) + `},` +
					`{"role":"assistant","content":"Hello."},{"type":"message","role":"user","content":[{"type":"input_text","text":` + strconv.Quote(turn) + `}]}]}`
			}
			itemsFirst, itemsText := ask(items("Hi, I bought a lamp.", "What is your refund policy?"))
			e.stored(t, misses)
			r, text = ask(items("Hi, I bought a lamp.", e.variant(false)))
			wantHit(t, "items", r, e.hitWord(), itemsFirst.header.Get("x-llmproc-request-id"), text, itemsText)
			r, text = ask(items("Hi, I bought a chair.", e.variant(false)))
			wantMiss(t, "another earlier turn", r, text, itemsText)

			// previous_response_id: one llmproc keeps is expanded into the
			// whole input before the lookup, so the tier applies; one it
			// does not keep (passed to OpenAI, which holds the rest) leaves
			// the latest turn to the exact tier alone.
			_, intro := e.respond(t, "shop", `{"model":"gpt-4o-mini","temperature":0,"input":"Hi, I am Ann."}`)
			misses++
			cont := func(prev, turn string) string {
				return fmt.Sprintf(`{"model":"gpt-4o-mini","temperature":0,"previous_response_id":%q,"input":%q}`, prev, turn)
			}
			contFirst, contText := ask(cont(intro.Get("id").Str, "What is your refund policy?"))
			if contFirst.header.Get("x-llmproc-cache") != "miss" {
				t.Errorf("continued conversation: x-llmproc-cache %q", contFirst.header.Get("x-llmproc-cache"))
			}
			if got := inputTexts(e.openai.Requests()[len(e.openai.Requests())-1].Body); len(got) != 3 {
				t.Errorf("the continued conversation was not expanded: %q", got)
			}
			e.stored(t, misses)
			r, text = ask(cont(intro.Get("id").Str, e.variant(false)))
			wantHit(t, "expanded previous_response_id", r, e.hitWord(), contFirst.header.Get("x-llmproc-request-id"), text, contText)
			_, ownText := ask(cont("resp_openai_own", "What is your refund policy?"))
			e.stored(t, misses)
			r, text = ask(cont("resp_openai_own", e.variant(false)))
			wantMiss(t, "previous_response_id llmproc does not keep", r, text, ownText)
			if got := gjson.GetBytes(e.openai.Requests()[len(e.openai.Requests())-1].Body, "previous_response_id").Str; got != "resp_openai_own" {
				t.Errorf("OpenAI got previous_response_id %q", got)
			}

			// Hits never reached the provider: it answered each miss once.
			if n := e.answers.Load(); n != int64(misses) {
				t.Errorf("the provider answered %d requests, want %d (the misses)", n, misses)
			}
			m := e.metrics(t)
			if n := sum(m["llmproc_cache_requests_total"], map[string]string{"result": e.hitWord()}); n != 4 {
				t.Errorf("llmproc_cache_requests_total{result=%s} = %v, want 4", e.hitWord(), n)
			}
		})
	}
}

func TestCacheTiersGeminiClient(t *testing.T) {
	for _, tier := range []string{"normalized", "semantic"} {
		t.Run(tier, func(t *testing.T) {
			e := startTiers(t, tier)
			misses := 0
			const (
				generate = "/v1beta/models/gemini-2.5-flash:generateContent"
				sse      = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
				array    = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
			)
			ask := func(path, body string) (result, string) {
				t.Helper()
				req, err := http.NewRequest(http.MethodPost, e.URL()+path, strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("content-type", "application/json")
				req.Header.Set("x-goog-api-key", "AIza-client-key")
				req.Header.Set("x-tenant", "shop")
				r := do(t, req)
				if r.status != 200 || r.err != nil {
					t.Fatalf("POST %s: %d %v %s", path, r.status, r.err, r.body)
				}
				if r.header.Get("x-llmproc-cache") == "miss" {
					misses++
				}
				return r, geminiText(t, path, r)
			}
			body := func(earlier, turn string) string {
				var contents string
				if earlier != "" {
					contents = `{"role":"user","parts":[{"text":` + strconv.Quote(earlier) + `}]},{"role":"model","parts":[{"text":"Hello."}]},`
				}
				return `{"systemInstruction":{"parts":[{"text":"You answer for the shop."}]},"generationConfig":{"temperature":0},` +
					`"contents":[` + contents + `{"role":"user","parts":[{"text":` + strconv.Quote(turn) + `}]}]}`
			}

			first, firstText := ask(generate, body("", "What is your refund policy?"))
			firstID := first.header.Get("x-llmproc-request-id")
			if first.header.Get("x-llmproc-cache") != "miss" || firstID == "" {
				t.Fatalf("first: x-llmproc-cache %q, request id %q", first.header.Get("x-llmproc-cache"), firstID)
			}
			e.stored(t, misses)
			r, text := ask(generate, body("", e.variant(false)))
			wantHit(t, "generateContent", r, e.hitWord(), firstID, text, firstText)
			for _, turn := range []string{"What is your refund policy for 2 items?", "What is not your refund policy?"} {
				r, text = ask(generate, body("", turn))
				wantMiss(t, turn, r, text, firstText)
			}
			r, text = ask(generate, body("Hi, I bought a lamp.", e.variant(false)))
			wantMiss(t, "another earlier turn", r, text, firstText)

			// Streams: streamGenerateContent is its own endpoint (the exact
			// tier's key includes the method), SSE and the JSON array alike.
			streamFirst, streamText := ask(sse, body("", "What is your refund policy?"))
			if streamFirst.header.Get("x-llmproc-cache") != "miss" {
				t.Fatalf("first stream: x-llmproc-cache %q", streamFirst.header.Get("x-llmproc-cache"))
			}
			e.stored(t, misses)
			for _, path := range []string{sse, array} {
				r, text = ask(path, body("", e.variant(true)))
				wantHit(t, path, r, e.hitWord(), streamFirst.header.Get("x-llmproc-request-id"), text, streamText)
			}

			if n := e.answers.Load(); n != int64(misses) {
				t.Errorf("the provider answered %d requests, want %d (the misses)", n, misses)
			}
			for _, req := range e.gemini.Requests() {
				if req.Header.Get("x-goog-api-key") != "gemini-secret" {
					t.Errorf("the Gemini fake got key %q", req.Header.Get("x-goog-api-key"))
				}
			}
		})
	}
}

// geminiText is the text of a Gemini answer: JSON, SSE or a JSON array of
// chunks, each checked to be well formed (every chunk a candidate, the last
// one finished).
func geminiText(t *testing.T, path string, r result) string {
	t.Helper()
	var chunks []gjson.Result
	switch {
	case strings.HasSuffix(path, ":generateContent"):
		if !strings.HasPrefix(r.header.Get("content-type"), "application/json") {
			t.Errorf("%s: content-type %q", path, r.header.Get("content-type"))
		}
		chunks = []gjson.Result{gjson.ParseBytes(r.body)}
	case strings.Contains(path, "alt=sse"):
		if !strings.HasPrefix(r.header.Get("content-type"), "text/event-stream") {
			t.Errorf("%s: content-type %q", path, r.header.Get("content-type"))
		}
		for _, ev := range sseEvents(t, r.body) {
			if !gjson.Valid(ev) {
				t.Fatalf("%s: an event is not JSON: %q", path, ev)
			}
			chunks = append(chunks, gjson.Parse(ev))
		}
	default:
		a := gjson.ParseBytes(r.body)
		if !gjson.ValidBytes(r.body) || !a.IsArray() {
			t.Fatalf("%s: not a JSON array: %s", path, r.body)
		}
		chunks = a.Array()
	}
	if len(chunks) == 0 {
		t.Fatalf("%s: no answer in %s", path, r.body)
	}
	var text strings.Builder
	for i, c := range chunks {
		if !c.Get("candidates.0").Exists() {
			t.Errorf("%s: chunk %d has no candidate: %s", path, i, c.Raw)
		}
		text.WriteString(c.Get("candidates.0.content.parts.0.text").Str)
	}
	if fr := chunks[len(chunks)-1].Get("candidates.0.finishReason").Str; fr != "STOP" {
		t.Errorf("%s: the last chunk's finishReason %q in %s", path, fr, r.body)
	}
	return text.String()
}

// TestGeminiCLICacheTiers: the real Gemini CLI, run twice in one workspace
// with one HOME (so its session context, sent as the first part of the
// turn, is the same), asks the same question spelled two ways: the second
// run is answered by the tier from the first run's answer, as a stream the
// CLI reads to the end, and never reaches the provider. (Its requests carry
// temperature 1, so the route caches with mode all.)
func TestGeminiCLICacheTiers(t *testing.T) {
	clientBin(t, "gemini") // skips when the clients are not installed
	for _, tier := range []string{"normalized", "semantic"} {
		t.Run(tier, func(t *testing.T) {
			e := &tiersEnv{openai: fakeopenai.New(fakeopenai.Options{}), gemini: fakegemini.New(fakegemini.Options{Key: "gemini-secret"}), tier: tier}
			t.Cleanup(func() { e.openai.Close(); e.gemini.Close() })
			var turns atomic.Int64
			e.gemini.Script(func(r fakegemini.Request) fakegemini.Behaviour {
				if isSideRequest(r.Body) {
					return fakegemini.Behaviour{Text: `{"reasoning":"The question is answered.","next_speaker":"user"}`}
				}
				return fakegemini.Behaviour{Text: fmt.Sprintf("Refunds within 30 days (answer %d).", turns.Add(1)), Usage: fakegemini.Usage{Prompt: 900, Candidates: 8}}
			})
			cfg := strings.Replace(fmt.Sprintf(tiersAPIsConfig, e.openai.URL(), e.gemini.URL(), tier), "mode: deterministic", "mode: all", 1)
			st, accessLog, log := startStack(t, cfg, map[string]string{"OPENAI_KEY": "sk-openai", "GEMINI_KEY": "gemini-secret"})
			e.env = &env{Stack: st, accessLog: accessLog, log: log}
			home, work := t.TempDir(), t.TempDir()
			first := geminiCLIHome(t, home, st.URL(), work, "gemini-2.5-flash", "What is your refund policy?")
			if !strings.Contains(first.Get("response").Str, "answer 1") {
				t.Fatalf("first run: %s", first.Raw)
			}
			e.stored(t, 1)
			second := geminiCLIHome(t, home, st.URL(), work, "gemini-2.5-flash", e.variant(true))
			if !strings.Contains(second.Get("response").Str, "answer 1") {
				t.Errorf("second run did not get the first run's answer: %s", second.Raw)
			}
			if n := turns.Load(); n != 1 {
				t.Errorf("the provider answered %d turns, want 1", n)
			}
			if n := sum(e.metrics(t)["llmproc_cache_requests_total"], map[string]string{"result": e.hitWord()}); n != 1 {
				t.Errorf("llmproc_cache_requests_total{result=%s} = %v, want 1", e.hitWord(), n)
			}
		})
	}
}
