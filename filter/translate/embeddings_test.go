package translate

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
)

// embedSidecar is testdata/embeddings/<case>.json: the backend and model
// of the attempt, the provider answer's headers, and the upstream request
// expected (-update writes it).
type embedSidecar struct {
	Backend struct {
		Schema     string   `json:"schema"`
		Model      string   `json:"model"`
		Credential string   `json:"credential,omitempty"`
		BasePath   string   `json:"base_path,omitempty"`
		DropParams []string `json:"drop_params,omitempty"`
	} `json:"backend"`
	AnswerHeaders map[string]string `json:"answer_headers,omitempty"`
	Upstream      *wantUpstream     `json:"upstream,omitempty"`
	// Estimated is whether the answer's usage is llmproc's estimate.
	Estimated bool `json:"estimated,omitempty"`
}

// embedClock fixes the SigV4 date of the Bedrock goldens.
var embedClock = func() time.Time { return time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC) }

func embedSet() *Set {
	s := NewSet(SetOptions{})
	s.bedrock.now = embedClock
	return s
}

func embedBackend(sc *embedSidecar) *config.RBackend {
	return &config.RBackend{Name: "be-" + sc.Backend.Schema, Schema: sc.Backend.Schema, BasePath: sc.Backend.BasePath,
		Credential: sc.Backend.Credential, DropParams: sc.Backend.DropParams, Host: "provider.example", Port: 443, TLS: true,
		Vertex: config.VertexOptions{Project: "proj-1", Region: "us-central1"}, Bedrock: config.BedrockOptions{Region: "us-east-1"}}
}

// TestEmbeddingsGolden runs testdata/embeddings/<case>.in.json (an OpenAI
// embeddings body) through the backend's embeddings translation and
// compares: the provider request with <case>.req.json and the path and
// headers with the sidecar's upstream (or the refusal with <case>.err.json);
// then, when <case>.resp.json holds a provider answer, the OpenAI answer
// with <case>.out.json, fed whole and split at every byte.
func TestEmbeddingsGolden(t *testing.T) {
	ins, err := filepath.Glob(filepath.Join("testdata", "embeddings", "*.in.json"))
	if err != nil || len(ins) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	s := embedSet()
	defer s.Close()
	for _, in := range ins {
		base := strings.TrimSuffix(in, ".in.json")
		t.Run(filepath.Base(base), func(t *testing.T) {
			body := readFile(t, in)
			var sc embedSidecar
			if err := json.Unmarshal(readFile(t, base+".json"), &sc); err != nil {
				t.Fatalf("%s.json: %v", base, err)
			}
			orig := bytes.Clone(body)
			up, call, err := s.Embeddings(&Request{Body: body, Backend: embedBackend(&sc),
				ClientModel: gjson.GetBytes(body, "model").Str, Model: sc.Backend.Model})
			if !bytes.Equal(body, orig) {
				t.Error("the client's body was modified in place")
			}
			if err != nil {
				e := apierr.From(err)
				if e.Status != 400 {
					t.Errorf("status %d, want 400", e.Status)
				}
				golden(t, base+".err.json", append(e.JSON(), '\n'))
				return
			}
			if _, err := os.Stat(base + ".err.json"); err == nil {
				t.Fatalf("translated, but %s.err.json expects a refusal", base)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, up.Body, "", "  "); err != nil {
				t.Fatalf("provider body is not JSON: %v\n%s", err, up.Body)
			}
			golden(t, base+".req.json", append(pretty.Bytes(), '\n'))
			got := &wantUpstream{Path: up.Path, SetHeaders: up.SetHeaders, BodyReplaced: true}
			if *update {
				sc.Upstream = got
				js, _ := json.MarshalIndent(sc, "", "  ")
				writeFile(t, base+".json", append(js, '\n'))
			} else if diff := cmp.Diff(sc.Upstream, got); diff != "" {
				t.Errorf("upstream request (-want +got):\n%s", diff)
			}
			resp, err := os.ReadFile(base + ".resp.json")
			if err != nil {
				return
			}
			var estimated bool
			out := splitEverywhere(t, resp, func() Body {
				ans := call.Response(&Response{Status: 200, ContentType: "application/json", Model: sc.Backend.Model,
					Header: func(name string) string { return sc.AnswerHeaders[name] }})
				return estimatedBody{ans.Body, call, &estimated}
			})
			if !json.Valid(out) {
				t.Fatalf("answer is not JSON: %s", out)
			}
			golden(t, base+".out.json", append(out, '\n'))
			if estimated != sc.Estimated {
				t.Errorf("UsageEstimated %v, sidecar says %v", estimated, sc.Estimated)
			}
			checkEmbeddingsAnswer(t, body, out)
		})
	}
}

// estimatedBody records the call's UsageEstimated once the body ended.
type estimatedBody struct {
	Body
	call *EmbeddingsCall
	out  *bool
}

func (e estimatedBody) Chunk(c []byte, eos bool) ([]byte, bool) {
	o, p := e.Body.Chunk(c, eos)
	if eos {
		*e.out = e.call.UsageEstimated()
	}
	return o, p
}

// checkEmbeddingsAnswer states the answer goldens' rules, so a careless
// -update cannot bless a wrong one: OpenAI's shape, one embedding per input
// in order, the encoding asked for, prompt_tokens = total_tokens > 0.
func checkEmbeddingsAnswer(t *testing.T, req, out []byte) {
	t.Helper()
	v := gjson.ParseBytes(out)
	n := 1
	if in := gjson.GetBytes(req, "input"); in.IsArray() {
		n = len(in.Array())
	}
	b64 := gjson.GetBytes(req, "encoding_format").Str == "base64"
	data := v.Get("data").Array()
	if v.Get("object").Str != "list" || len(data) != n || v.Get("model").Str == "" {
		t.Errorf("answer shape: %s", out)
	}
	for i, d := range data {
		if d.Get("object").Str != "embedding" || d.Get("index").Int() != int64(i) {
			t.Errorf("data[%d]: %s", i, d.Raw)
		}
		if e := d.Get("embedding"); b64 && e.Type != gjson.String || !b64 && !e.IsArray() {
			t.Errorf("data[%d].embedding in the wrong encoding: %s", i, e.Raw)
		}
	}
	if p := v.Get("usage.prompt_tokens").Int(); p <= 0 || v.Get("usage.total_tokens").Int() != p {
		t.Errorf("usage %s", v.Get("usage").Raw)
	}
}

// TestEmbeddingsBase64 checks the base64 encoding against float32 bytes
// worked out by hand: 1.0 is 0x3f800000, -2.5 0xc0200000, 0.1 rounds to
// 0x3dcccccd, each little-endian; the largest float32 and the smallest
// subnormal survive, and the decoded values equal the float32 nearest to
// each number the provider wrote.
func TestEmbeddingsBase64(t *testing.T) {
	for _, c := range []struct{ vec, want string }{
		{`[1.0, -2.5, 0.1]`, "AACAPwAAIMDNzMw9"},
		{`[3.4028234663852886e38,1e-45]`, "//9/fwEAAAA="},
		{`[]`, ""},
	} {
		out, ok := appendBase64Vector(nil, gjson.Parse(c.vec))
		if !ok || string(out) != `"`+c.want+`"` {
			t.Errorf("%s: %s, want %q", c.vec, out, c.want)
		}
	}
	vec := `[0.0123456789,-0.987654321,1e-7,-0]`
	out, _ := appendBase64Vector(nil, gjson.Parse(vec))
	raw, err := base64.StdEncoding.DecodeString(strings.Trim(string(out), `"`))
	if err != nil || len(raw) != 16 {
		t.Fatalf("%s: %v", out, err)
	}
	for i, want := range []float32{0.0123456789, -0.987654321, 1e-7, float32(math.Copysign(0, -1))} {
		got := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Errorf("value %d: %v, want %v", i, got, want)
		}
	}
	for _, bad := range []string{`[1,"x"]`, `{"a":1}`, `[1,[2]]`, `[1e999]`} {
		if _, ok := appendBase64Vector(nil, gjson.Parse(bad)); ok {
			t.Errorf("%s encoded", bad)
		}
	}
}

// TestEmbeddingsAnswerErrors: provider errors come back normalized by the
// backend's translator, in OpenAI's shape; a 2xx that is cut, not JSON, or
// has the wrong number of vectors is a 502, never a silent success.
func TestEmbeddingsAnswerErrors(t *testing.T) {
	s := embedSet()
	defer s.Close()
	gem := &config.RBackend{Name: "g", Schema: "gemini", Credential: "k"}
	_, call, err := s.Embeddings(&Request{Body: []byte(`{"model":"m","input":["a","b"]}`), Backend: gem, Model: "gemini-embedding-001"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		status int
		body   string
		want   int
		code   string
	}{
		{429, `{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}`, 429, "rate_limit_exceeded"},
		{200, `{"embeddings":[{"values":[1,2]}`, 502, "upstream_error"},
		{200, `{"embeddings":[{"values":[1,2]}]}`, 502, "upstream_error"},
		{200, `{"embeddings":[{"values":[1,2]},{"values":"x"}]}`, 502, "upstream_error"},
	} {
		ans := call.Response(&Response{Status: c.status, Model: "gemini-embedding-001"})
		out := feedBody(ans.Body, []byte(c.body))
		e := gjson.ParseBytes(out)
		if e.Get("error.code").Str != c.code || (c.status == 200 && !strings.Contains(string(out), "embedding")) {
			t.Errorf("%d %s: %s", c.status, c.body, out)
		}
	}
	br := &config.RBackend{Name: "b", Schema: "bedrock", Credential: "AKID:secret", Host: "h", Port: 443, Bedrock: config.BedrockOptions{Region: "us-east-1"}}
	_, call, err = s.Embeddings(&Request{Body: []byte(`{"model":"m","input":"a"}`), Backend: br, Model: "amazon.titan-embed-text-v2:0"})
	if err != nil {
		t.Fatal(err)
	}
	ans := call.Response(&Response{Status: 429, Header: func(n string) string {
		return map[string]string{"x-amzn-errortype": "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"}[n]
	}})
	if out := feedBody(ans.Body, []byte(`{"message":"slow down"}`)); gjson.GetBytes(out, "error.code").Str != "rate_limit_exceeded" {
		t.Errorf("bedrock throttling: %s", out)
	}
}

// FuzzEmbeddingsRequest: any body either is refused with a 400 or becomes
// a valid JSON request for every backend kind; nothing panics.
func FuzzEmbeddingsRequest(f *testing.F) {
	for _, seed := range []string{
		`{"model":"m","input":"hello"}`,
		`{"model":"m","input":["a","b"],"dimensions":256,"encoding_format":"base64"}`,
		`{"model":"m","input":[[1,2,3]]}`,
		`{"model":"m","input":["a",[1]],"dimensions":null,"encoding_format":null}`,
		`{"model":"m","input":"\u0000\ud83d\ude00\"","dimensions":1e3}`,
		`{"input":[]}`, `[]`, `{"input":{}}`, `{"input":"x","dimensions":-1}`,
	} {
		f.Add([]byte(seed))
	}
	s := embedSet()
	defer s.Close()
	backends := []struct{ schema, model string }{
		{"gemini", "gemini-embedding-001"}, {"vertex", "text-embedding-005"}, {"vertex", "gemini-embedding-001"},
		{"bedrock", "amazon.titan-embed-text-v2:0"}, {"bedrock", "cohere.embed-english-v3"}, {"bedrock", "cohere.embed-v4:0"},
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, b := range backends {
			be := &config.RBackend{Name: "x", Schema: b.schema, Credential: "AKID:secret", Host: "h", Port: 443,
				Vertex: config.VertexOptions{Project: "p", Region: "r"}, Bedrock: config.BedrockOptions{Region: "us-east-1"}}
			up, _, err := s.Embeddings(&Request{Body: body, Backend: be, Model: b.model})
			if err != nil {
				if e := apierr.From(err); e.Status != 400 {
					t.Fatalf("%s %s: status %d: %v", b.schema, b.model, e.Status, err)
				}
				continue
			}
			if !json.Valid(up.Body) {
				t.Fatalf("%s: invalid provider body %s", b.schema, up.Body)
			}
		}
	})
}

// FuzzEmbeddingsAnswer: whatever a provider answers, each kind of answer
// translation writes valid JSON (an embeddings list or an error) and never
// panics; a float answer's vectors re-encoded as base64 decode to 4 bytes a
// number.
func FuzzEmbeddingsAnswer(f *testing.F) {
	for _, seed := range []string{
		`{"embeddings":[{"values":[1,-2.5e-3, 0.1]},{"values":[]}]}`,
		`{"predictions":[{"embeddings":{"statistics":{"token_count":2},"values":[0.25,-0.125]}}]}`,
		`{"embedding":[0.1,-0.2],"inputTextTokenCount":6}`,
		`{"embeddings":{"float":[[0.5],[1e-45,3.4e38]]}}`,
		`{"embeddings":[[1,[2]],[true]]}`, `{"embeddings":[{"values":[1,"x"]}]}`, `[`, `{}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, answer []byte) {
		for _, kind := range []embedKind{embedGemini, embedVertex, embedTitan, embedCohere} {
			for _, b64 := range []bool{false, true} {
				a := &embedAnswer{kind: kind, req: embedRequest{texts: []string{"a", "b"}, base64: b64}, model: "m"}
				out, _ := a.Chunk(answer, true)
				if !json.Valid(out) {
					t.Fatalf("kind %d base64 %v: invalid JSON %s", kind, b64, out)
				}
			}
		}
	})
}
