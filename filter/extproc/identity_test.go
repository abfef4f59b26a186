package extproc

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/tidwall/gjson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/identity"
)

const keysConfig = `
limits: {max_request_bytes: 1048576}
identity:
  source: client_keys
  keys_file: %s
  tenants:
    - {name: a, models: ["gpt-*"]}
backends:
  - {name: primary, schema: openai, url: "http://127.0.0.1:1", credential: {env: KEY_A}}
models:
  - {name: gpt-4o-mini, aliases: [mini], pool: cheap, price: {input: 0.15, output: 0.60}}
  - {name: claude-sonnet-4-5, pool: cheap, price: {input: 3, output: 15}}
pools:
  - {name: cheap, backends: [{backend: primary}]}
routing: {tenant_header: x-tenant}
`

func TestRouterClientKeys(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "keys.json")
	keyA, _, err := identity.Create(path, identity.Key{Tenant: "a"}, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	keyB, _, _ := identity.Create(path, identity.Key{Tenant: "b", Models: []string{"claude-*"}}, now, nil)
	expired := now.Add(-time.Minute)
	keyOld, _, _ := identity.Create(path, identity.Key{Tenant: "a", Expires: &expired}, now, nil)
	keyGone, kGone, _ := identity.Create(path, identity.Key{Tenant: "a"}, now, nil)
	if err := identity.Revoke(path, kGone.ID, now); err != nil {
		t.Fatal(err)
	}
	h := newHarnessOpts(t, Options{Config: fixedRuntime{compileTest(t, fmt.Sprintf(keysConfig, path))}, Now: func() time.Time { return now }})

	const chat, messages = "/v1/chat/completions", "/v1/messages"
	body := func(model string) string {
		return `{"model":"` + model + `","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`
	}
	tests := []struct {
		name       string
		path       string
		headers    []string
		model      string
		wantStatus int    // 0: routed
		wantCode   string // OpenAI error.code, or Anthropic error.type
		wantTenant string
	}{
		{"bearer key", chat, []string{"authorization", "Bearer " + keyA}, "gpt-4o-mini", 0, "", "a"},
		{"alias allowed through its model", chat, []string{"authorization", "Bearer " + keyA}, "mini", 0, "", "a"},
		{"x-api-key", messages, []string{"x-api-key", keyB}, "claude-sonnet-4-5", 0, "", "b"},
		{"x-goog-api-key", chat, []string{"x-goog-api-key", keyB}, "claude-sonnet-4-5", 0, "", "b"},
		{"spoofed tenant header ignored", chat, []string{"authorization", "Bearer " + keyB, "x-tenant", "a"}, "claude-sonnet-4-5", 0, "", "b"},
		{"no key", chat, []string{"x-tenant", "a"}, "", 401, "missing_api_key", ""},
		{"no key, anthropic shape", messages, nil, "", 401, "authentication_error", ""},
		{"provider key", chat, []string{"authorization", "Bearer sk-proj-123"}, "", 401, "malformed_api_key", ""},
		{"wrong secret", chat, []string{"authorization", "Bearer " + keyA[:len(keyA)-4] + "0000"}, "", 401, "unknown_api_key", ""},
		{"expired", chat, []string{"authorization", "Bearer " + keyOld}, "", 401, "expired_api_key", ""},
		{"revoked", chat, []string{"authorization", "Bearer " + keyGone}, "", 401, "revoked_api_key", ""},
		{"tenant allow-list", chat, []string{"authorization", "Bearer " + keyA}, "claude-sonnet-4-5", 403, "model_not_allowed", ""},
		{"key allow-list, anthropic shape", messages, []string{"x-api-key", keyB}, "gpt-4o-mini", 403, "permission_error", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := h.stream(RoleRouter)
			resp := roundTrip(t, s, reqHeaders(hdrs(false, append([]string{":method", "POST", ":path", tt.path}, tt.headers...)...), nil))
			if resp.GetImmediateResponse() == nil {
				resp = roundTrip(t, s, reqBody(body(tt.model)))
			}
			ir := resp.GetImmediateResponse()
			if tt.wantStatus == 0 {
				if ir != nil {
					t.Fatalf("refused: %d %s", ir.Status.Code, ir.Body)
				}
				d := decided(resp)
				if d[KeyCallerTenant] != tt.wantTenant || d[KeyKeyID] == "" {
					t.Fatalf("decisions %v, want tenant %q and a key id", d, tt.wantTenant)
				}
				return
			}
			if ir == nil {
				t.Fatalf("routed, want %d", tt.wantStatus)
			}
			code := gjson.GetBytes(ir.Body, "error.code").String()
			if tt.path == messages {
				code = gjson.GetBytes(ir.Body, "error.type").String()
			}
			if int(ir.Status.Code) != tt.wantStatus || code != tt.wantCode {
				t.Fatalf("got %d %s, want %d %s", ir.Status.Code, ir.Body, tt.wantStatus, tt.wantCode)
			}
			if tt.wantStatus == 403 && !gjson.GetBytes(ir.Body, "error.message").Exists() {
				t.Fatalf("no message: %s", ir.Body)
			}
		})
	}
	// GET /v1/models lists what the caller may use; another model is unknown to it.
	for _, tc := range []struct{ key, path, want string }{
		{keyA, "/v1/models", `["gpt-4o-mini"]`},
		{keyB, "/v1/models", `["claude-sonnet-4-5"]`},
		{keyA, "/v1/models/claude-sonnet-4-5", `404`},
		{keyB, "/v1/models/claude-sonnet-4-5", `["claude-sonnet-4-5"]`},
	} {
		s := h.stream(RoleRouter)
		ir := roundTrip(t, s, reqHeaders(hdrs(true, ":method", "GET", ":path", tc.path, "authorization", "Bearer "+tc.key), nil)).GetImmediateResponse()
		got := gjson.GetBytes(ir.GetBody(), "data.#.id").Raw
		if !gjson.GetBytes(ir.GetBody(), "data").Exists() {
			got = gjson.GetBytes(ir.GetBody(), "id").String()
			if got != "" {
				got = `["` + got + `"]`
			} else {
				got = fmt.Sprint(int(ir.GetStatus().GetCode()))
			}
		}
		if got != tc.want {
			t.Errorf("GET %s: %s, want %s (%s)", tc.path, got, tc.want, ir.GetBody())
		}
	}
	if got := counter(t, h.reg, "llmproc_auth_total", map[string]string{"source": "client_keys", "result": "revoked"}); got != 1 {
		t.Errorf("llmproc_auth_total{client_keys,revoked} = %v, want 1", got)
	}
}

// Under client_keys a client-sent tenant header is removed with the
// client's x-llmproc-* headers, so it never reaches the provider.
func TestRouterClientKeysDropsTenantHeader(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "keys.json")
	key, _, err := identity.Create(path, identity.Key{Tenant: "a"}, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessOpts(t, Options{Config: fixedRuntime{compileTest(t, fmt.Sprintf(keysConfig, path))}, Now: func() time.Time { return now }})
	s := h.stream(RoleRouter)
	resp := roundTrip(t, s, reqHeaders(hdrs(false, ":method", "POST", ":path", "/v1/chat/completions",
		"authorization", "Bearer "+key, "x-tenant", "b", "x-llmproc-pool", "x"), nil))
	removed := resp.GetRequestHeaders().GetResponse().GetHeaderMutation().GetRemoveHeaders()
	if !slices.Contains(removed, "x-tenant") || !slices.Contains(removed, "x-llmproc-pool") {
		t.Fatalf("removed %v, want x-tenant and x-llmproc-pool", removed)
	}
}

type sharedKeys struct{ k *identity.Keys }

func (s *sharedKeys) Keys() *identity.Keys { return s.k }

// identity.redis: a key not in the keys file is looked up in the shared
// store's copy; before the first copy is read the answer is 503, not 401.
func TestRouterSharedKeys(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	filePath, sharedPath := filepath.Join(dir, "keys.json"), filepath.Join(dir, "shared.json")
	inFile, _, _ := identity.Create(filePath, identity.Key{Tenant: "file"}, now, nil)
	inShared, _, _ := identity.Create(sharedPath, identity.Key{Tenant: "shared"}, now, nil)
	sharedCopy, err := identity.Load(sharedPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(fmt.Sprintf(keysConfig, filePath), "  tenants:", "  redis: {addr: \"127.0.0.1:1\"}\n  tenants:", 1)
	src := &sharedKeys{}
	h := newHarnessOpts(t, Options{Config: fixedRuntime{compileTest(t, cfg)}, Now: func() time.Time { return now }, SharedKeys: src})
	ask := func(key string) (int, string) {
		s := h.stream(RoleRouter)
		resp := roundTrip(t, s, reqHeaders(hdrs(false, ":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer "+key), nil))
		if ir := resp.GetImmediateResponse(); ir != nil {
			return int(ir.Status.Code), gjson.GetBytes(ir.Body, "error.code").String()
		}
		d := decided(roundTrip(t, s, reqBody(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)))
		return 200, d[KeyCallerTenant]
	}
	for _, tc := range []struct {
		name   string
		shared *identity.Keys
		key    string
		status int
		got    string
	}{
		{"file key, store not read yet", nil, inFile, 200, "file"},
		{"shared key, store not read yet", nil, inShared, 503, "key_store_unavailable"},
		{"shared key", sharedCopy, inShared, 200, "shared"},
		{"file key", sharedCopy, inFile, 200, "file"},
		{"neither", sharedCopy, identity.Prefix + "0123456789ab_" + strings.Repeat("0", 64), 401, "unknown_api_key"},
	} {
		src.k = tc.shared
		if status, got := ask(tc.key); status != tc.status || got != tc.got {
			t.Errorf("%s: %d %s, want %d %s", tc.name, status, got, tc.status, tc.got)
		}
	}
}

const jwtMeshConfig = `
limits: {max_request_bytes: 1048576}
identity:
%s
backends:
  - {name: primary, schema: openai, url: "http://127.0.0.1:1", credential: {env: KEY_A}}
models:
  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60}}
pools:
  - {name: cheap, backends: [{backend: primary}]}
routing: {tenant_header: x-tenant}
`

// identity.source jwt and mesh: the tenant comes from the verified payload
// jwt_authn forwarded, or the peer's identity; a client's tenant header is
// removed and never read.
func TestRouterJWTAndMesh(t *testing.T) {
	payload := func(fields map[string]any) *corev3.Metadata {
		p, err := structpb.NewStruct(fields)
		if err != nil {
			t.Fatal(err)
		}
		return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
			JWTNamespace: {Fields: map[string]*structpb.Value{JWTPayloadKey: structpb.NewStructValue(p)}}}}
	}
	const iss = "https://id.test"
	jwtRT := compileTest(t, fmt.Sprintf(jwtMeshConfig, `  source: jwt
  jwt: {issuer: "`+iss+`", jwks_file: /dev/null, tenant_claim: org.id, team_claim: team}`))
	meshRT := compileTest(t, fmt.Sprintf(jwtMeshConfig, `  source: mesh
  principals:
    - {principal: "spiffe://cluster.local/ns/team-a/*", tenant: a, team: ml}
    - {principal: "spiffe://cluster.local/ns/b/sa/app", tenant: b}`))
	for _, tc := range []struct {
		name   string
		rt     *config.Runtime
		md     *corev3.Metadata
		attrs  map[string]string
		status int
		want   string // the tenant, or the error code
	}{
		{"jwt", jwtRT, payload(map[string]any{"iss": iss, "org": map[string]any{"id": "a"}}), nil, 0, "a"},
		{"jwt without payload", jwtRT, nil, nil, 401, "missing_jwt"},
		{"jwt of another issuer", jwtRT, payload(map[string]any{"iss": "x", "org": map[string]any{"id": "a"}}), nil, 401, "invalid_jwt"},
		{"jwt without the claim", jwtRT, payload(map[string]any{"iss": iss, "org": "a"}), nil, 401, "invalid_jwt"},
		{"jwt with a number claim", jwtRT, payload(map[string]any{"iss": iss, "org": map[string]any{"id": 7}}), nil, 401, "invalid_jwt"},
		{"mesh glob", meshRT, nil, map[string]string{AttrPeerURISAN: "spiffe://cluster.local/ns/team-a/sa/x"}, 0, "a"},
		{"mesh exact", meshRT, nil, map[string]string{AttrPeerURISAN: "spiffe://cluster.local/ns/b/sa/app"}, 0, "b"},
		{"mesh source.principal first", meshRT, nil, map[string]string{AttrSourcePrincipal: "spiffe://cluster.local/ns/b/sa/app", AttrPeerURISAN: "spiffe://x"}, 0, "b"},
		{"mesh unmapped", meshRT, nil, map[string]string{AttrPeerURISAN: "spiffe://cluster.local/ns/c/sa/app"}, 403, "principal_not_allowed"},
		{"mesh without a certificate", meshRT, nil, nil, 401, "missing_peer_identity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarnessOpts(t, Options{Config: fixedRuntime{tc.rt}})
			s := h.stream(RoleRouter)
			req := reqHeaders(hdrs(false, ":method", "POST", ":path", "/v1/chat/completions", "x-tenant", "spoofed"), tc.attrs)
			req.MetadataContext = tc.md
			resp := roundTrip(t, s, req)
			if ir := resp.GetImmediateResponse(); ir != nil {
				if code := gjson.GetBytes(ir.Body, "error.code").String(); int(ir.Status.Code) != tc.status || code != tc.want {
					t.Fatalf("got %d %s, want %d %s", ir.Status.Code, ir.Body, tc.status, tc.want)
				}
				return
			}
			if tc.status != 0 {
				t.Fatalf("routed, want %d", tc.status)
			}
			if removed := resp.GetRequestHeaders().GetResponse().GetHeaderMutation().GetRemoveHeaders(); !slices.Contains(removed, "x-tenant") {
				t.Errorf("x-tenant not removed: %v", removed)
			}
			d := decided(roundTrip(t, s, reqBody(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)))
			if d[KeyCallerTenant] != tc.want {
				t.Fatalf("tenant %q, want %q", d[KeyCallerTenant], tc.want)
			}
		})
	}
}

// Routing rules read who is calling: caller.tier and caller.team from the
// identity source (a mesh principal's entry) or, failing that, from
// identity.tenants[].
func TestRouterCallerRules(t *testing.T) {
	rt := compileTest(t, `
limits: {max_request_bytes: 1048576}
identity:
  source: mesh
  principals:
    - {principal: "spiffe://a", tenant: a, tier: low}
    - {principal: "spiffe://b", tenant: b}
    - {principal: "spiffe://c", tenant: c}
  tenants: [{name: b, team: ml, tier: gold}]
backends:
  - {name: primary, schema: openai, url: "http://127.0.0.1:1", credential: {env: KEY_A}}
models:
  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60}}
  - {name: gpt-4o, pool: big, price: {input: 2.5, output: 10}}
pools:
  - {name: cheap, backends: [{backend: primary}]}
  - {name: big, backends: [{backend: primary}]}
routes:
  - {name: low-tier, match: {model: auto, when: 'caller.tier == "low"'}, pool: cheap}
  - {name: gold-ml, match: {model: auto, when: 'caller.tier == "gold" && caller.team == "ml" && caller.source == "mesh"'}, pool: big}
`)
	h := newHarnessOpts(t, Options{Config: fixedRuntime{rt}})
	for principal, want := range map[string]string{"spiffe://a": "low-tier", "spiffe://b": "gold-ml", "spiffe://c": "400"} {
		s := h.stream(RoleRouter)
		roundTrip(t, s, reqHeaders(hdrs(false, ":method", "POST", ":path", "/v1/chat/completions"), map[string]string{AttrPeerURISAN: principal}))
		resp := roundTrip(t, s, reqBody(`{"model":"auto","messages":[{"role":"user","content":"hi"}]}`))
		got := decided(resp)[KeyRoute]
		if ir := resp.GetImmediateResponse(); ir != nil {
			got = strconv.Itoa(int(ir.Status.Code))
		}
		if got != want {
			t.Errorf("%s: %s, want %s", principal, got, want)
		}
	}
}

// identity.tenants[].tools: a request offering a tool outside the tenant's
// patterns is refused 403 naming the tool, in every client API's shape of
// tools; tenants without a list may offer any.
func TestAllowTools(t *testing.T) {
	rt := compileTest(t, `
limits: {max_request_bytes: 1048576}
identity:
  allow_client_tenant: true
  tenants: [{name: a, tools: ["get_*", web_search, googleSearch]}]
backends:
  - {name: primary, schema: openai, url: "http://127.0.0.1:1", credential: {env: KEY_A}}
models:
  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60}}
pools:
  - {name: cheap, backends: [{backend: primary}]}
routing: {tenant_header: x-tenant}
`)
	s := New(Options{Config: fixedRuntime{rt}})
	for _, tc := range []struct {
		name, tenant, body, refused string
	}{
		{"openai allowed", "a", `{"tools":[{"type":"function","function":{"name":"get_weather"}}]}`, ""},
		{"openai refused", "a", `{"tools":[{"type":"function","function":{"name":"get_weather"}},{"type":"function","function":{"name":"rm_rf"}}]}`, "rm_rf"},
		{"legacy functions", "a", `{"functions":[{"name":"exec"}]}`, "exec"},
		{"anthropic and responses by name", "a", `{"tools":[{"name":"get_x","input_schema":{}},{"type":"function","name":"send_mail"}]}`, "send_mail"},
		{"built-in by type", "a", `{"tools":[{"type":"web_search"},{"type":"code_interpreter"}]}`, "code_interpreter"},
		{"gemini declarations", "a", `{"tools":[{"functionDeclarations":[{"name":"get_a"},{"name":"delete_b"}]}]}`, "delete_b"},
		{"gemini built-in", "a", `{"tools":[{"googleSearch":{}},{"codeExecution":{}}]}`, "codeExecution"},
		{"no tools", "a", `{"messages":[]}`, ""},
		{"tenant without a list", "b", `{"tools":[{"type":"function","function":{"name":"rm_rf"}}]}`, ""},
	} {
		r := &router{s: s, rt: rt, tenant: tc.tenant}
		err := r.allowTools([]byte(tc.body))
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.refused != "" && (err == nil || err.Status != 403 || err.Code != "tool_not_allowed" || !strings.Contains(err.Message, "`"+tc.refused+"`")):
			t.Errorf("%s: %+v, want 403 naming %s", tc.name, err, tc.refused)
		}
	}
}

// identity.tenants[].apis: a client API outside the tenant's list is
// refused 403 naming it, in that API's error shape.
func TestAllowAPIs(t *testing.T) {
	rt := compileTest(t, `
limits: {max_request_bytes: 1048576}
identity:
  allow_client_tenant: true
  tenants: [{name: a, apis: [chat]}]
backends:
  - {name: primary, schema: openai, url: "http://127.0.0.1:1", credential: {env: KEY_A}}
models:
  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60}}
pools:
  - {name: cheap, backends: [{backend: primary}]}
routing: {tenant_header: x-tenant}
`)
	h := newHarnessOpts(t, Options{Config: fixedRuntime{rt}})
	for _, tc := range []struct {
		tenant, path, body string
		status             int
		typ                string // error.type
	}{
		{"a", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`, 0, ""},
		{"a", "/v1/messages", `{"model":"gpt-4o-mini","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`, 403, "permission_error"},
		{"a", "/v1/embeddings", `{"model":"gpt-4o-mini","input":"hi"}`, 403, "invalid_request_error"},
		{"b", "/v1/messages", `{"model":"gpt-4o-mini","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`, 0, ""},
	} {
		s := h.stream(RoleRouter)
		resp := roundTrip(t, s, reqHeaders(hdrs(false, ":method", "POST", ":path", tc.path, "x-tenant", tc.tenant), nil))
		if resp.GetImmediateResponse() == nil {
			resp = roundTrip(t, s, reqBody(tc.body))
		}
		ir := resp.GetImmediateResponse()
		switch {
		case tc.status == 0 && ir != nil && int(ir.Status.Code) == 403:
			t.Errorf("%s %s: refused %s", tc.tenant, tc.path, ir.Body)
		case tc.status != 0 && (ir == nil || int(ir.Status.Code) != tc.status || gjson.GetBytes(ir.Body, "error.type").String() != tc.typ ||
			!strings.Contains(gjson.GetBytes(ir.Body, "error.message").String(), "API is not allowed")):
			t.Errorf("%s %s: %v, want %d %s", tc.tenant, tc.path, ir, tc.status, tc.typ)
		}
	}
}

// identity.tenants[].max_request_bytes bounds that tenant's bodies (413),
// content-length and body alike; others keep limits.max_request_bytes.
func TestTenantMaxRequestBytes(t *testing.T) {
	rt := compileTest(t, `
limits: {max_request_bytes: 1048576}
identity:
  allow_client_tenant: true
  tenants: [{name: small, max_request_bytes: 100}]
backends:
  - {name: primary, schema: openai, url: "http://127.0.0.1:1", credential: {env: KEY_A}}
models:
  - {name: gpt-4o-mini, pool: cheap, price: {input: 0.15, output: 0.60}}
pools:
  - {name: cheap, backends: [{backend: primary}]}
routing: {tenant_header: x-tenant}
`)
	h := newHarnessOpts(t, Options{Config: fixedRuntime{rt}})
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("x", 200) + `"}]}`
	for _, tc := range []struct {
		tenant, clen string
		want         int
	}{
		{"small", strconv.Itoa(len(body)), 413}, // refused on content-length
		{"small", "", 413},                      // refused on the body
		{"big", strconv.Itoa(len(body)), 0},
	} {
		s := h.stream(RoleRouter)
		kv := []string{":method", "POST", ":path", "/v1/chat/completions", "x-tenant", tc.tenant}
		if tc.clen != "" {
			kv = append(kv, "content-length", tc.clen)
		}
		resp := roundTrip(t, s, reqHeaders(hdrs(false, kv...), nil))
		if resp.GetImmediateResponse() == nil {
			resp = roundTrip(t, s, reqBody(body))
		}
		got := 0
		if ir := resp.GetImmediateResponse(); ir != nil {
			got = int(ir.Status.Code)
		}
		if got != tc.want {
			t.Errorf("%s (content-length %q): %d, want %d", tc.tenant, tc.clen, got, tc.want)
		}
	}
}
