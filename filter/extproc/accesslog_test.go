package extproc

import (
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tidwall/gjson"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/usage"
)

// TestAccessLogCostAddsUp reads every provider's usage fixture (the usage
// package's, chat and Responses API, and every translator's OpenAI-shaped
// output) as the
// upstream role does, writes its access-log fields, renders them to JSON as
// Envoy's json_format does, and recomputes the cost from the LOGGED token
// fields and the example price table in exact decimal arithmetic: it must be
// the logged cost_usd to the pico-dollar, for every model of the table
// (prices with and without cached_input, cache_write and cache_write_1h).
func TestAccessLogCostAddsUp(t *testing.T) {
	c, err := config.Load("../../examples/prices/prices.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rt, err := config.Compile(c, func(string) string { return "test-key" })
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, g := range []string{"../usage/testdata/*", "../translate/testdata/*/*.out.json", "../translate/testdata/*/*.out.sse",
		"../translate/testdata/client_anthropic/*.in.json", "../translate/testdata/client_anthropic/*.in.sse"} {
		m, err := filepath.Glob(g)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	var seen usage.Usage // the largest count of each class among the fixtures
	fixtures := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		stream, responses := strings.HasSuffix(f, ".sse"), strings.HasPrefix(filepath.Base(f), "responses")
		tr, key := usage.NewTracker(stream), `"prompt_tokens"`
		if responses { // OpenAI's Responses API
			tr, key = usage.NewResponsesTracker(stream), `"input_tokens"`
		}
		tr.Write(b)
		res := tr.Finish()
		if !res.Known || !strings.Contains(string(b), key) {
			continue // no OpenAI usage in it: a request, an error, a client-side shape
		}
		fixtures++
		u := res.Usage
		seen = usage.Usage{Input: max(seen.Input, u.Input), CachedInput: max(seen.CachedInput, u.CachedInput),
			CacheWrite: max(seen.CacheWrite, u.CacheWrite), CacheWrite1h: max(seen.CacheWrite1h, u.CacheWrite1h),
			Output: max(seen.Output, u.Output), Reasoning: max(seen.Reasoning, u.Reasoning)}
		checkLoggedCost(t, f, u, c, rt)
	}
	// A provider's counts that do not nest (more cached than prompt tokens)
	// are logged as priced, so they add up too.
	checkLoggedCost(t, "inconsistent", usage.Usage{Input: 100, CachedInput: 80, CacheWrite: 50, CacheWrite1h: 70, Output: 3, Reasoning: 9}, c, rt)
	// The fixtures must exercise every priced class, or the sum proves little.
	if fixtures < 20 || seen.CachedInput == 0 || seen.CacheWrite == 0 || seen.CacheWrite1h == 0 || seen.Reasoning == 0 {
		t.Errorf("%d fixtures with usage, largest counts %+v: a token class is never exercised", fixtures, seen)
	}
}

func checkLoggedCost(t *testing.T, f string, u usage.Usage, c *config.Config, rt *config.Runtime) {
	t.Helper()
	for _, m := range c.Models {
		p, ok := rt.PriceFor(m.Name, m.Name)
		if !ok {
			t.Fatalf("no price for %s", m.Name)
		}
		md := map[string]*structpb.Value{}
		logUsage(md, u, usage.Cost(u, p))
		line, err := protojson.Marshal(&structpb.Struct{Fields: md})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := gjson.GetBytes(line, KeyCostUSD).Str, recomputeUSD(t, line, m.Price); got != want {
			t.Errorf("%s at %s prices: logged cost_usd %s, the logged tokens cost %s\n%s", f, m.Name, got, want, line)
		}
	}
}

// recomputeUSD is what a reader of the access log computes: every logged
// token class at its price (USD per million tokens, the price table's text),
// an unset cached_input or cache_write at the input price and an unset
// cache_write_1h at the cache_write price, as a 12-place decimal.
func recomputeUSD(t *testing.T, line []byte, p config.Price) string {
	t.Helper()
	n := func(k string) *big.Rat {
		v := gjson.GetBytes(line, k)
		if v.Type != gjson.Number {
			t.Fatalf("%s not logged as a number: %s", k, line)
		}
		return new(big.Rat).SetInt64(v.Int())
	}
	price := func(d config.Decimal, or *big.Rat) *big.Rat {
		if !d.Set {
			return or
		}
		r, ok := new(big.Rat).SetString(d.Text)
		if !ok {
			t.Fatalf("price %q", d.Text)
		}
		return r.Quo(r, big.NewRat(1_000_000, 1))
	}
	in := price(p.Input, new(big.Rat))
	write := price(p.CacheWrite, in)
	prompt, cached, written, written1h := n(KeyPromptTokens), n(KeyCachedTokens), n(KeyCacheWriteTokens), n(KeyCacheWrite1hTokens)
	uncached := new(big.Rat).Sub(prompt, cached)
	uncached.Sub(uncached, written)
	sum := new(big.Rat)
	add := func(tokens, price *big.Rat) { sum.Add(sum, new(big.Rat).Mul(tokens, price)) }
	add(uncached, in)
	add(cached, price(p.CachedInput, in))
	add(new(big.Rat).Sub(written, written1h), write)
	add(written1h, price(p.CacheWrite1h, write))
	add(n(KeyCompletionTokens), price(p.Output, new(big.Rat)))
	return sum.FloatString(12)
}

func TestTraceID(t *testing.T) {
	const id = "4bf92f3577b34da6a3ce929d0e0e4736"
	tests := []struct{ in, want string }{
		{"00-" + id + "-00f067aa0ba902b7-01", id},
		{" 00-" + id + "-00f067aa0ba902b7-00 ", id},
		{"01-" + id + "-00f067aa0ba902b7-01-future", id}, // a later version may append fields
		{"00-" + id + "-00f067aa0ba902b7-01-x", ""},      // version 00 may not
		{"ff-" + id + "-00f067aa0ba902b7-01", ""},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""},
		{"00-" + id + "-0000000000000000-01", ""},
		{"00-" + strings.ToUpper(id) + "-00f067aa0ba902b7-01", ""},
		{"00-" + id + "-00f067aa0ba902b7", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := traceID(tt.in); got != tt.want {
			t.Errorf("traceID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNewRequestID(t *testing.T) {
	a, b := newRequestID(), newRequestID()
	if a == b || len(a) != 36 || a[14] != '4' || !strings.ContainsAny(a[19:20], "89ab") || strings.Count(a, "-") != 4 {
		t.Errorf("request ids %q, %q: want distinct version-4 UUIDs", a, b)
	}
}

// TestRequestID: a request without x-request-id gets one the router sets on
// the request (so Envoy's logs show it) and hands the upstream role, whose
// answer carries it; one with Envoy's x-request-id keeps it; immediate
// responses carry it and the access-log fields the router knew.
func TestRequestID(t *testing.T) {
	h := newHarness(t)
	const body = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	routed, dec := h.route(t, openAIClient("/v1/chat/completions", body), body)
	id := ""
	for _, hv := range routed {
		if hv.Key == "x-request-id" {
			id = string(hv.RawValue)
		}
	}
	if len(id) != 36 || dec[KeyRequestID] != id {
		t.Fatalf("x-request-id %q set on the request, decision %q", id, dec[KeyRequestID])
	}
	s := h.stream(RoleUpstream)
	attrs := map[string]string{AttrBackend: "primary", AttrCluster: PoolClusterPrefix + "cheap"}
	roundTrip(t, s, withDecisions(reqHeaders(routed.message(), attrs), dec))
	roundTrip(t, s, withDecisions(reqBody(body), dec))
	r := roundTrip(t, s, respHeaders(false, ":status", "200", "content-type", "application/json"))
	_ = s.CloseSend()
	if got := mutationHeader(r.GetResponseHeaders().GetResponse().GetHeaderMutation(), HeaderRequestID); got != id {
		t.Errorf("answer %s %q, want %q", HeaderRequestID, got, id)
	}

	client := append(openAIClient("/v1/chat/completions", body), &corev3.HeaderValue{Key: "x-request-id", RawValue: []byte("envoy-id")},
		&corev3.HeaderValue{Key: "traceparent", RawValue: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")})
	routed, dec = h.route(t, client, body)
	if n := slices.IndexFunc(routed, func(hv *corev3.HeaderValue) bool {
		return hv.Key == "x-request-id" && string(hv.RawValue) != "envoy-id"
	}); n >= 0 ||
		dec[KeyRequestID] != "envoy-id" || dec[KeyTraceID] != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("Envoy's id not kept: %v %v", routed, dec)
	}

	reply := h.routeReply(t, client, `{"model":"no-such-model","messages":[{"role":"user","content":"hi"}]}`)
	im := reply.GetImmediateResponse()
	if got := mutationHeader(im.GetHeaders(), HeaderRequestID); im == nil || got != "envoy-id" {
		t.Errorf("immediate response %s %q: %v", HeaderRequestID, got, im)
	}
	if d := decided(reply); d[KeyClient] != clientOpenAI || d[KeyTraceID] != "4bf92f3577b34da6a3ce929d0e0e4736" || d[KeyRequestedModel] != "no-such-model" {
		t.Errorf("immediate response's metadata %v", d)
	}
}

func mutationHeader(m *extprocv3.HeaderMutation, name string) string {
	for _, o := range m.GetSetHeaders() {
		if o.GetHeader().GetKey() == name {
			return string(o.GetHeader().GetRawValue())
		}
	}
	return ""
}
