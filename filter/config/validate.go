package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Schemas lists every backend schema the config accepts.
var Schemas = []string{"openai", "azure-openai", "anthropic", "gemini", "vertex", "bedrock", "openai-compatible"}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// Validate checks the whole config and returns every problem at once, joined,
// each starting with the path of the field it is about.
func (c *Config) Validate() error {
	v := &validator{}
	v.addr("listen.grpc", c.Listen.GRPC)
	if c.Listen.HTTP != "off" {
		v.addr("listen.http", c.Listen.HTTP)
	}
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "json", "text")
	if c.Limits.MaxRequestBytes < 1024 || c.Limits.MaxRequestBytes > 1<<30 {
		v.add("limits.max_request_bytes", "must be between 1024 and 1073741824, got %d", c.Limits.MaxRequestBytes)
	}
	// A chat request nests six levels before any free-form JSON (body,
	// messages, a message, content, a part, image_url); the validator
	// recurses once per level, so the bound has a ceiling.
	if c.Limits.MaxJSONDepth < 8 || c.Limits.MaxJSONDepth > 1024 {
		v.add("limits.max_json_depth", "must be between 8 and 1024, got %d", c.Limits.MaxJSONDepth)
	}
	if c.Limits.MaxAnswerBufferBytes < 64<<10 || c.Limits.MaxAnswerBufferBytes > 1<<30 {
		v.add("limits.max_answer_buffer_bytes", "must be between 65536 and 1073741824, got %d", c.Limits.MaxAnswerBufferBytes)
	} else if c.Limits.MaxBufferedBytes < c.Limits.MaxAnswerBufferBytes || c.Limits.MaxBufferedBytes > 1<<40 {
		v.add("limits.max_buffered_bytes", "must be between limits.max_answer_buffer_bytes (%d) and 1099511627776, got %d",
			c.Limits.MaxAnswerBufferBytes, c.Limits.MaxBufferedBytes)
	}
	if c.Limits.MaxStreams < 1 || c.Limits.MaxStreams > MaxMaxStreams {
		v.add("limits.max_streams", "must be between 1 and %d, got %d", MaxMaxStreams, c.Limits.MaxStreams)
	}
	v.addr("envoy.listen", c.Envoy.Listen)
	v.addr("envoy.admin", c.Envoy.Admin)
	if c.Envoy.LLMProc != c.Listen.GRPC { // the default copy is checked above
		v.addr("envoy.llmproc", c.Envoy.LLMProc)
	}
	if n := c.Envoy.MaxConcurrentRequests; n > MaxConcurrentRequests {
		v.add("envoy.max_concurrent_requests", "must be at most %d, got %d", MaxConcurrentRequests, n)
	}

	backends := map[string]bool{}
	for i, b := range c.Backends {
		p := fmt.Sprintf("backends[%d]", i)
		v.name(p+".name", b.Name, backends, "backend")
		v.oneOf(p+".schema", b.Schema, Schemas...)
		v.backendURL(p+".url", b.URL)
		if b.Credential.Env != "" && b.Credential.File != "" {
			v.add(p+".credential", "set env or file, not both")
		}
		v.credentialNext(p, b)
		v.schemaOptions(p, b)
		for j, d := range b.DropParams {
			switch d {
			case "", "model", "messages", "stream":
				v.add(fmt.Sprintf("%s.drop_params[%d]", p, j), "%q cannot be dropped", d)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(b.Headers.Set)) {
			if !validHeaderName(k) {
				v.add(p+".headers.set", "invalid header name %q", k)
			}
		}
		for j, k := range b.Headers.Remove {
			if !validHeaderName(k) {
				v.add(fmt.Sprintf("%s.headers.remove[%d]", p, j), "invalid header name %q", k)
			}
		}
	}
	if len(c.Backends) == 0 {
		v.add("backends", "at least one backend is required")
	}

	pools := map[string]bool{}
	for i, p := range c.Pools {
		path := fmt.Sprintf("pools[%d]", i)
		v.name(path+".name", p.Name, pools, "pool")
		if len(p.Backends) == 0 {
			v.add(path+".backends", "a pool needs at least one backend")
		}
		seen := map[string]bool{}
		for j, m := range p.Backends {
			mp := fmt.Sprintf("%s.backends[%d]", path, j)
			switch {
			case m.Backend == "":
				v.add(mp+".backend", "is required")
			case !backends[m.Backend]:
				v.add(mp+".backend", "unknown backend %q", m.Backend)
			case seen[m.Backend]:
				v.add(mp+".backend", "backend %q is already in this pool", m.Backend)
			}
			seen[m.Backend] = true
		}
	}
	if len(c.Pools) == 0 {
		v.add("pools", "at least one pool is required")
	}

	names := map[string]string{} // model name or alias -> path that defined it
	type glob struct {
		pattern, field string
		model          int
	}
	var globs []glob
	for i, m := range c.Models {
		p := fmt.Sprintf("models[%d]", i)
		v.modelName(p+".name", m.Name, names)
		for j, a := range m.Aliases {
			field := fmt.Sprintf("%s.aliases[%d]", p, j)
			v.modelName(field, a, names)
			if !isGlob(a) {
				continue
			}
			for _, g := range globs {
				if g.model != i && globsOverlap(g.pattern, a) {
					v.add(field, "pattern %q overlaps %s %q of another model: some name would match both", a, g.field, g.pattern)
				}
			}
			globs = append(globs, glob{a, field, i})
		}
		if m.Kind != "" {
			v.oneOf(p+".kind", m.Kind, KindChat, KindEmbedding)
		}
		if m.Pool == "" {
			v.add(p+".pool", "is required")
		} else if !pools[m.Pool] {
			v.add(p+".pool", "unknown pool %q", m.Pool)
		}
	}

	v.validateRouting(c, pools, names)
	v.oneOf("cache.mode", c.Cache.Mode, "off", "deterministic", "all")
	if c.Cache.Match != "" {
		v.oneOf("cache.match", c.Cache.Match, MatchExact, MatchNormalized, MatchSemantic)
	}
	if c.Cache.MaxEntryBytes < 0 {
		v.add("cache.max_entry_bytes", "must not be negative")
	}
	if c.Cache.MemoryMB < 0 {
		v.add("cache.memory_mb", "must not be negative")
	}
	if c.Cache.TenantHeader != "" && !validHeaderName(c.Cache.TenantHeader) {
		v.add("cache.tenant_header", "invalid header name %q", c.Cache.TenantHeader)
	}
	conv := c.Cache.Conversations
	v.oneOf("cache.conversations.mode", conv.Mode, "on", "off")
	if conv.MaxBytes < 0 {
		v.add("cache.conversations.max_bytes", "must not be negative")
	}
	if conv.MemoryMB < 0 {
		v.add("cache.conversations.memory_mb", "must not be negative")
	}
	if r := c.Cache.Redis; r != nil {
		v.addr("cache.redis.addr", r.Addr)
		if r.Password.Env != "" && r.Password.File != "" {
			v.add("cache.redis.password", "set env or file, not both")
		}
	}
	fb := c.Feedback
	v.oneOf("feedback.mode", fb.Mode, "on", "off")
	if fb.Window.Duration < 0 || fb.Window.Duration > MaxFeedbackWindow {
		v.add("feedback.window", "must be positive and at most %s, got %s", MaxFeedbackWindow, fb.Window.Duration)
	}
	if fb.MaxRecords < 0 {
		v.add("feedback.max_records", "must not be negative")
	}
	v.validateSemantic(c, pools)
	v.validateBudgets(c)
	v.validateIdentity(c)
	v.validateTracing(c.Tracing)
	return errors.Join(v.errs...)
}

type validator struct{ errs []error }

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

func (v *validator) name(path, name string, seen map[string]bool, kind string) {
	switch {
	case name == "":
		v.add(path, "is required")
	case !nameRE.MatchString(name):
		v.add(path, "%q must be lowercase letters, digits, '.', '_' or '-' (at most 63)", name)
	case seen[name]:
		v.add(path, "duplicate %s name %q", kind, name)
	}
	seen[name] = true
}

func (v *validator) modelName(path, name string, seen map[string]string) {
	switch {
	case name == "":
		v.add(path, "is required")
	case strings.TrimSpace(name) != name || len(name) > 256:
		v.add(path, "%q has surrounding spaces or is longer than 256", name)
	case seen[name] != "":
		v.add(path, "model name %q is already used by %s", name, seen[name])
	default:
		seen[name] = path
	}
}

func (v *validator) oneOf(path, got string, allowed ...string) {
	for _, a := range allowed {
		if got == a {
			return
		}
	}
	if got == "" {
		v.add(path, "is required (one of %s)", strings.Join(allowed, ", "))
		return
	}
	v.add(path, "unknown value %q (want one of %s)", got, strings.Join(allowed, ", "))
}

func (v *validator) addr(path, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(path, "want host:port, got %q", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add(path, "want a port from 0 to 65535, got %q", addr)
	}
	if strings.ContainsAny(host, " /") {
		v.add(path, "bad host in %q", addr)
	}
}

func (v *validator) backendURL(path, raw string) {
	if raw == "" {
		v.add(path, "is required")
		return
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		shown := raw
		if err == nil {
			shown = u.Redacted()
		}
		v.add(path, "want an http or https URL like https://api.openai.com, got %q", shown)
		return
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		v.add(path, "must not carry a query, fragment or user info (put secrets in credential): %q", u.Redacted())
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			v.add(path, "want a port from 1 to 65535, got %q", u.Redacted())
		}
	}
}

func validHeaderName(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// credentialNext checks backends[].credential_next: env or file, only next
// to a credential, and not the same source (a rotation needs two keys).
func (v *validator) credentialNext(p string, b Backend) {
	n := b.CredentialNext
	switch {
	case n.Env == "" && n.File == "":
		return
	case n.Env != "" && n.File != "":
		v.add(p+".credential_next", "set env or file, not both")
	case b.Credential.Env == "" && b.Credential.File == "":
		v.add(p+".credential_next", "needs %s.credential, the key in use; a backend without one sends no key", p)
	case n == b.Credential:
		v.add(p+".credential_next", "names the same source as %s.credential; a rotation needs the new key apart", p)
	}
}

// schemaOptions checks that only the options block of the backend's schema is
// set, and that its required fields are there.
func (v *validator) schemaOptions(p string, b Backend) {
	blocks := []struct {
		key, schema string
		set         bool
	}{
		{"anthropic", "anthropic", b.Anthropic != nil},
		{"azure", "azure-openai", b.Azure != nil},
		{"vertex", "vertex", b.Vertex != nil},
		{"bedrock", "bedrock", b.Bedrock != nil},
		{"compat", "openai-compatible", b.Compat != nil},
	}
	for _, bl := range blocks {
		if bl.set && b.Schema != bl.schema {
			v.add(p+"."+bl.key, "only allowed with schema %s", bl.schema)
		}
	}
	switch b.Schema {
	case "vertex":
		if b.Vertex == nil || b.Vertex.Project == "" {
			v.add(p+".vertex.project", "is required for schema vertex")
		}
		if b.Vertex == nil || b.Vertex.Region == "" {
			v.add(p+".vertex.region", "is required for schema vertex")
		}
	case "bedrock":
		if b.Bedrock == nil || b.Bedrock.Region == "" {
			v.add(p+".bedrock.region", "is required for schema bedrock")
		}
		if b.Bedrock != nil {
			switch b.Bedrock.AnthropicAPI {
			case "", AnthropicAPIAuto, AnthropicAPINative, AnthropicAPIConverse:
			default:
				v.add(p+".bedrock.anthropic_api", "unknown value %q (want auto, native or converse)", b.Bedrock.AnthropicAPI)
			}
		}
	case "azure-openai":
		if b.Azure != nil && b.Azure.Auth != "" && b.Azure.Auth != "api-key" && b.Azure.Auth != "bearer" {
			v.add(p+".azure.auth", "unknown value %q (want api-key or bearer)", b.Azure.Auth)
		}
	case "openai-compatible":
		if b.Compat != nil {
			switch b.Compat.MaxTokensField {
			case "", "max_tokens", "max_completion_tokens":
			default:
				v.add(p+".compat.max_tokens_field", "unknown value %q (want max_tokens or max_completion_tokens)", b.Compat.MaxTokensField)
			}
		}
	case "anthropic":
		if b.Anthropic != nil && b.Anthropic.MaxTokens < 0 {
			v.add(p+".anthropic.max_tokens", "must not be negative")
		}
	}
}
