package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// minimal is the smallest valid config; tests append to it.
const minimal = `
backends:
  - name: openai
    schema: openai
    url: https://api.openai.com
    credential: {env: OPENAI_API_KEY}
models:
  - name: gpt-4o-mini
    pool: cheap
pools:
  - name: cheap
    backends: [{backend: openai}]
`

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func mustParse(t *testing.T, yaml string) *Config {
	t.Helper()
	cfg, err := Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

func mustCompile(t *testing.T, yaml string) *Runtime {
	t.Helper()
	rt, err := Compile(mustParse(t, yaml), env("OPENAI_API_KEY", "sk-test", "ANTHROPIC_API_KEY", "sk-ant"))
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return rt
}

func TestQuickstart(t *testing.T) {
	cfg, err := Load("../../examples/quickstart/llmproc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rt, err := Compile(cfg, env("PRIMARY_API_KEY", "k1", "SECONDARY_API_KEY", "k2"))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(rt.Backends); got != 2 {
		t.Errorf("backends = %d, want 2", got)
	}
	cheap := rt.Pools["cheap"]
	if cheap == nil || len(cheap.Members) != 2 {
		t.Fatalf("pool cheap = %+v, want two members", cheap)
	}
	for i, want := range []string{"primary", "secondary"} {
		m := cheap.Members[i]
		if m.Backend.Name != want || m.Priority != i || m.Model != "gpt-4o-mini" {
			t.Errorf("cheap.Members[%d] = {%s %d %q}, want {%s %d gpt-4o-mini}", i, m.Backend.Name, m.Priority, m.Model, want, i)
		}
	}
	if got := rt.Backends["secondary"].Credential; got != "k2" {
		t.Errorf("secondary credential = %q, want k2", got)
	}
	d, ok := rt.Resolve("auto")
	if !ok || d.Pool.Name != "cheap" || d.Route != "auto" || d.Model != nil {
		t.Errorf("Resolve(auto) = %+v, %v", d, ok)
	}
}

func TestDefaults(t *testing.T) {
	cfg := mustParse(t, minimal)
	tests := []struct {
		field string
		got   any
		want  any
	}{
		{"listen.grpc", cfg.Listen.GRPC, DefaultGRPC},
		{"listen.http", cfg.Listen.HTTP, DefaultHTTP},
		{"listen.pprof", cfg.Listen.Pprof, false},
		{"log.level", cfg.Log.Level, "info"},
		{"log.format", cfg.Log.Format, "json"},
		{"limits.max_request_bytes", cfg.Limits.MaxRequestBytes, int64(DefaultMaxRequestBytes)},
		{"limits.max_json_depth", cfg.Limits.MaxJSONDepth, DefaultMaxJSONDepth},
		{"limits.max_answer_buffer_bytes", cfg.Limits.MaxAnswerBufferBytes, int64(DefaultMaxAnswerBufferBytes)},
		{"limits.max_buffered_bytes", cfg.Limits.MaxBufferedBytes, int64(DefaultMaxBufferedBytes)},
		{"limits.max_streams", cfg.Limits.MaxStreams, DefaultMaxStreams},
		{"limits.shutdown_grace", cfg.Limits.ShutdownGrace.Duration, DefaultShutdownGrace},
		{"limits.reload_interval", cfg.Limits.ReloadInterval.Duration, DefaultReloadInterval},
		{"envoy.listen", cfg.Envoy.Listen, DefaultEnvoyListen},
		{"envoy.admin", cfg.Envoy.Admin, DefaultEnvoyAdmin},
		{"envoy.llmproc", cfg.Envoy.LLMProc, DefaultGRPC},
		{"envoy.message_timeout", cfg.Envoy.MessageTimeout.Duration, DefaultMessageTimeout},
		{"envoy.num_retries", *cfg.Envoy.NumRetries, uint32(DefaultNumRetries)},
		{"envoy.per_try_timeout", cfg.Envoy.PerTryTimeout.Duration, DefaultPerTryTimeout},
		{"envoy.idle_timeout", cfg.Envoy.IdleTimeout.Duration, DefaultIdleTimeout},
		{"models[0].owned_by", cfg.Models[0].OwnedBy, "llmproc"},
		{"models[0].price.input.set", cfg.Models[0].Price.Input.Set, false},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.field, tt.got, tt.want)
		}
	}
}

func TestExplicitValuesKept(t *testing.T) {
	cfg := mustParse(t, `
listen: {grpc: "0.0.0.0:6000", http: "off", pprof: true}
limits: {reload_interval: 0s, shutdown_grace: 5s}
envoy: {llmproc: "llmproc.default.svc:6000", num_retries: 0}
`+minimal)
	tests := []struct {
		field string
		got   any
		want  any
	}{
		{"listen.http", cfg.Listen.HTTP, "off"},
		{"listen.pprof", cfg.Listen.Pprof, true},
		{"limits.reload_interval", cfg.Limits.ReloadInterval.Duration, time.Duration(0)},
		{"limits.shutdown_grace", cfg.Limits.ShutdownGrace.Duration, 5 * time.Second},
		{"envoy.llmproc", cfg.Envoy.LLMProc, "llmproc.default.svc:6000"},
		{"envoy.num_retries", *cfg.Envoy.NumRetries, uint32(0)},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.field, tt.got, tt.want)
		}
	}
}

const routed = `
backends:
  - name: openai
    schema: openai
    url: https://api.openai.com
    credential: {env: OPENAI_API_KEY}
  - name: anthropic
    schema: anthropic
    url: https://api.anthropic.com
    credential: {env: ANTHROPIC_API_KEY}
models:
  - name: gpt-4o-mini
    aliases: [mini]
    pool: cheap
    price: {input: 0.15, output: 0.60, cached_input: 0.075}
  - name: gpt-4o
    pool: flagship
    price: {input: 2.50, output: 10}
  - name: claude-haiku-4-5
    pool: claude
    price: {input: 1, output: 5}
pools:
  - name: cheap
    backends: [{backend: openai}, {backend: anthropic, model: claude-haiku-4-5}]
  - name: flagship
    backends: [{backend: openai}]
  - name: claude
    backends: [{backend: anthropic}]
routes:
  - name: auto
    match: {model: auto}
    pool: cheap
  - name: flagship-to-claude
    match: {models: [gpt-4o, gpt-4o-mini]}
    pool: claude
`

func TestResolve(t *testing.T) {
	rt := mustCompile(t, routed)
	tests := []struct {
		name      string
		model     string
		ok        bool
		wantRoute string
		wantPool  string
		wantModel string // "" for a routing-only name
	}{
		{"model's own pool", "claude-haiku-4-5", true, "model", "claude", "claude-haiku-4-5"},
		{"routing-only name", "auto", true, "auto", "cheap", ""},
		{"route listed before the model's pool wins", "gpt-4o", true, "flagship-to-claude", "claude", "gpt-4o"},
		{"alias follows its model's route", "mini", true, "flagship-to-claude", "claude", "gpt-4o-mini"},
		{"unknown model", "gpt-5", false, "", "", ""},
		{"empty name", "", false, "", "", ""},
		{"names are case-sensitive", "GPT-4o", false, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ok := rt.Resolve(tt.model)
			if ok != tt.ok {
				t.Fatalf("Resolve(%q) ok = %v, want %v", tt.model, ok, tt.ok)
			}
			if !ok {
				return
			}
			if d.Route != tt.wantRoute || d.Pool == nil || d.Pool.Name != tt.wantPool {
				t.Errorf("Resolve(%q) = route %q pool %v, want %q %q", tt.model, d.Route, d.Pool, tt.wantRoute, tt.wantPool)
			}
			gotModel := ""
			if d.Model != nil {
				gotModel = d.Model.Name
			}
			if gotModel != tt.wantModel {
				t.Errorf("Resolve(%q).Model = %q, want %q", tt.model, gotModel, tt.wantModel)
			}
		})
	}
}

func TestModelAndPriceFor(t *testing.T) {
	rt := mustCompile(t, routed)
	if m, ok := rt.Model("mini"); !ok || m.Name != "gpt-4o-mini" {
		t.Errorf("Model(mini) = %v, %v", m, ok)
	}
	if _, ok := rt.Model("auto"); ok {
		t.Error("Model(auto) found a routing-only name")
	}
	tests := []struct {
		served, requested string
		ok                bool
		input, output     int64
	}{
		{"claude-haiku-4-5", "gpt-4o", true, 1_000_000, 5_000_000}, // the served model's price wins
		{"gpt-4o-mini-2024-07-18", "mini", true, 150_000, 600_000}, // served name unknown: requested model
		{"gpt-4o-mini-2024-07-18", "auto", false, 0, 0},            // neither known
		{"gpt-4o", "", true, 2_500_000, 10_000_000},                // requested empty
		{"mini", "nothing", true, 150_000, 600_000},                // alias as served name
	}
	for _, tt := range tests {
		p, ok := rt.PriceFor(tt.served, tt.requested)
		if ok != tt.ok || p.Input.PicoPerToken != tt.input || p.Output.PicoPerToken != tt.output {
			t.Errorf("PriceFor(%q, %q) = in %d out %d ok %v, want %d %d %v",
				tt.served, tt.requested, p.Input.PicoPerToken, p.Output.PicoPerToken, ok, tt.input, tt.output, tt.ok)
		}
	}
	p, _ := rt.PriceFor("gpt-4o-mini", "")
	if !p.CachedInput.Set || p.CachedInput.PicoPerToken != 75_000 || p.CachedInput.Text != "0.075" {
		t.Errorf("cached_input = %+v", p.CachedInput)
	}
	p, _ = rt.PriceFor("gpt-4o", "")
	if p.CachedInput.Set {
		t.Errorf("unset cached_input = %+v, want Set false", p.CachedInput)
	}
}

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		in      string
		pico    int64
		wantErr string
	}{
		{"0.15", 150_000, ""},
		{"0.0375", 37_500, ""},
		{"2.50", 2_500_000, ""},
		{"10", 10_000_000, ""},
		{"0", 0, ""},
		{".5", 500_000, ""},
		{"3.", 3_000_000, ""},
		{"0.000001", 1, ""},
		{"0.1000000", 100_000, ""}, // trailing zeros are not extra precision
		{"1000000", 1_000_000_000_000, ""},
		{" 0.15 ", 150_000, ""},
		{"0.0000001", 0, "more than 6 decimal places"},
		{"0.1234567", 0, "more than 6 decimal places"},
		{"1e-3", 0, "want a non-negative decimal"},
		{"-0.15", 0, "want a non-negative decimal"},
		{"+1", 0, "want a non-negative decimal"},
		{"cheap", 0, "want a non-negative decimal"},
		{"", 0, "want a non-negative decimal"},
		{".", 0, "want a non-negative decimal"},
		{"1.2.3", 0, "want a non-negative decimal"},
		{"0x10", 0, "want a non-negative decimal"},
		{"1000001", 0, "out of range"},
		{"99999999999999999999", 0, "out of range"},
	}
	for _, tt := range tests {
		d, err := ParseDecimal(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseDecimal(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseDecimal(%q): %v", tt.in, err)
			continue
		}
		if d.PicoPerToken != tt.pico || !d.Set || d.Text != strings.TrimSpace(tt.in) {
			t.Errorf("ParseDecimal(%q) = %+v, want %d pico", tt.in, d, tt.pico)
		}
	}
}

func TestCompileCredentials(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "anthropic")
	if err := os.WriteFile(keyFile, []byte("sk-ant-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(dir, "empty")
	if err := os.WriteFile(emptyFile, []byte("  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFor := func(file string) string {
		return `
backends:
  - name: openai
    schema: openai
    url: https://api.openai.com
    credential: {env: OPENAI_API_KEY}
  - name: anthropic
    schema: anthropic
    url: https://api.anthropic.com
    credential: {file: "` + file + `"}
  - name: local
    schema: openai-compatible
    url: http://127.0.0.1:8000
models:
  - name: m
    pool: p
pools:
  - name: p
    backends: [{backend: openai}, {backend: anthropic}, {backend: local}]
`
	}
	t.Run("env and file", func(t *testing.T) {
		rt, err := Compile(mustParse(t, cfgFor(keyFile)), env("OPENAI_API_KEY", " sk-openai "))
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]string{"openai": "sk-openai", "anthropic": "sk-ant-from-file", "local": ""} {
			if got := rt.Backends[name].Credential; got != want {
				t.Errorf("%s credential = %q, want %q", name, got, want)
			}
		}
	})
	errTests := []struct {
		name string
		file string
		env  func(string) string
		want []string
	}{
		{"env unset", keyFile, env(), []string{"backends[0].credential.env: environment variable OPENAI_API_KEY is empty or unset"}},
		{"file missing", filepath.Join(dir, "nope"), env("OPENAI_API_KEY", "k"), []string{"backends[1].credential.file: open " + filepath.Join(dir, "nope")}},
		{"file empty", emptyFile, env("OPENAI_API_KEY", "k"), []string{"backends[1].credential.file: " + emptyFile + " is empty"}},
		{"both at once", emptyFile, env(), []string{"backends[0].credential.env:", "backends[1].credential.file:"}},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(mustParse(t, cfgFor(tt.file)), tt.env)
			if err == nil {
				t.Fatal("Compile succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Count(err.Error(), "\n")+1 != len(tt.want) {
				t.Errorf("error has %d lines, want %d: %v", strings.Count(err.Error(), "\n")+1, len(tt.want), err)
			}
		})
	}
	t.Run("topology needs no secrets", func(t *testing.T) {
		rt, err := Topology(mustParse(t, cfgFor(filepath.Join(dir, "nope"))))
		if err != nil {
			t.Fatal(err)
		}
		if got := len(rt.Pools["p"].Members); got != 3 {
			t.Errorf("pool members = %d, want 3", got)
		}
		for name, b := range rt.Backends {
			if b.Credential != "" {
				t.Errorf("%s credential = %q, want none", name, b.Credential)
			}
		}
	})
}

func TestCompileBackend(t *testing.T) {
	tests := []struct {
		url       string
		tls       bool
		host      string
		port      uint32
		basePath  string
		authority string
	}{
		{"https://api.openai.com", true, "api.openai.com", 443, "", "api.openai.com"},
		{"https://api.openai.com/", true, "api.openai.com", 443, "", "api.openai.com"},
		{"http://127.0.0.1:18081", false, "127.0.0.1", 18081, "", "127.0.0.1:18081"},
		{"https://res.openai.azure.com/openai/", true, "res.openai.azure.com", 443, "/openai", "res.openai.azure.com"},
		{"http://[::1]:8000/v1", false, "::1", 8000, "/v1", "[::1]:8000"},
		{"http://[::1]", false, "::1", 80, "", "[::1]"},
		{"https://example.com:80", true, "example.com", 80, "", "example.com:80"},
	}
	for _, tt := range tests {
		rt := mustCompile(t, strings.Replace(minimal, "https://api.openai.com", tt.url, 1))
		b := rt.Backends["openai"]
		if b.TLS != tt.tls || b.Host != tt.host || b.Port != tt.port || b.BasePath != tt.basePath || b.Authority() != tt.authority {
			t.Errorf("%s: got tls=%v host=%q port=%d base=%q authority=%q", tt.url, b.TLS, b.Host, b.Port, b.BasePath, b.Authority())
		}
	}
}

func TestCompileHeaders(t *testing.T) {
	rt := mustCompile(t, strings.Replace(minimal, "credential: {env: OPENAI_API_KEY}",
		"credential: {env: OPENAI_API_KEY}\n    headers: {set: {X-B: two, x-a: one}, remove: [X-Drop]}", 1))
	b := rt.Backends["openai"]
	want := [][2]string{{"x-a", "one"}, {"x-b", "two"}}
	if len(b.SetHeaders) != 2 || b.SetHeaders[0] != want[0] || b.SetHeaders[1] != want[1] {
		t.Errorf("SetHeaders = %v, want %v", b.SetHeaders, want)
	}
	if len(b.RemoveHeaders) != 1 || b.RemoveHeaders[0] != "x-drop" {
		t.Errorf("RemoveHeaders = %v, want [x-drop]", b.RemoveHeaders)
	}
}

// TestCompileUnvalidated checks that a Config built in code with dangling
// references fails to compile instead of yielding a Runtime with nil pools.
func TestCompileUnvalidated(t *testing.T) {
	cfg := &Config{
		Backends: []Backend{{Name: "b", Schema: "openai", URL: "http://127.0.0.1:1"}},
		Pools:    []Pool{{Name: "p", Backends: []PoolMember{{Backend: "b"}, {Backend: "gone"}}}},
		Models:   []Model{{Name: "m", Pool: "nowhere"}},
		Routes:   []Route{{Name: "r", Match: RouteMatch{Model: "auto"}, Pool: "missing"}},
	}
	_, err := Topology(cfg)
	want := `pools[0].backends[1].backend: unknown backend "gone"
models[0].pool: unknown pool "nowhere"
routes[0].pool: unknown pool "missing"`
	if err == nil || err.Error() != want {
		t.Errorf("Topology error =\n%v\nwant\n%s", err, want)
	}
}

func TestDecimalKeepsText(t *testing.T) {
	cfg := mustParse(t, strings.Replace(minimal, "pool: cheap\n", "pool: cheap\n    price: {input: \"0.10\", output: 1.250}\n", 1))
	p := cfg.Models[0].Price
	if p.Input.Text != "0.10" || p.Input.PicoPerToken != 100_000 || p.Output.Text != "1.250" || p.Output.PicoPerToken != 1_250_000 {
		t.Errorf("price = %+v", p)
	}
}

// FuzzParse checks that no input makes Parse panic, and that whatever it
// accepts also compiles without secrets.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte(routed))
	f.Add([]byte("backends: [{name: a, urll: x}]\nmodels: {a: b}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("models:\n  - price: {input: 0.1234567, output: [1]}\n"))
	f.Add([]byte("limits: {shutdown_grace: {a: 1}, max_request_bytes: x}\n---\n"))
	if data, err := os.ReadFile("../../examples/quickstart/llmproc.yaml"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if _, err := Topology(cfg); err != nil {
			t.Fatalf("Parse accepted a config Topology rejects: %v", err)
		}
	})
}

// BenchmarkResolve measures the per-request model lookup.
//
//	go test -run '^$' -bench Resolve -count 10 ./filter/config > new.txt && benchstat old.txt new.txt
func BenchmarkResolve(b *testing.B) {
	cfg, err := Parse([]byte(routed))
	if err != nil {
		b.Fatal(err)
	}
	rt, err := Topology(cfg)
	if err != nil {
		b.Fatal(err)
	}
	s := NewStore(rt)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.Load().Resolve("mini"); !ok {
			b.Fatal("not resolved")
		}
	}
}
