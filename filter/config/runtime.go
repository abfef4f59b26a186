package config

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/llmproc/llmproc/filter/identity"
	"github.com/llmproc/llmproc/filter/route"
)

// Runtime is the compiled, immutable form of a Config. It is built once per
// load and swapped atomically on reload; nothing in it changes afterwards.
type Runtime struct {
	Source   *Config
	Backends map[string]*RBackend
	Pools    map[string]*RPool
	// Models is the client-facing model list in config order.
	Models []*RModel

	// RedisPassword is cache.redis.password, read like a credential.
	RedisPassword string
	// BudgetRedisPassword is budget_store.redis.password.
	BudgetRedisPassword string
	// IdentityRedisPassword is identity.redis.password.
	IdentityRedisPassword string

	// Classifier computes request features for rules (routing.classifier).
	Classifier *route.Classifier
	// TenantHeader is Config.TenantHeader(): lowercased, "" when none.
	TenantHeader string
	// RouteHeaders are the lowercased request headers rules may read.
	RouteHeaders []string
	// ClientKeys is identity.source client_keys: the tenant comes from the
	// key in Keys, the tenant header is not read.
	ClientKeys bool
	// IdentitySource is identity.source with its default applied.
	IdentitySource string
	// Keys is the identity.keys_file as loaded with this Runtime (nil when
	// topology only, or another source).
	Keys *identity.Keys

	tenantModels map[string][]string // identity.tenants[].models

	byName        map[string]*RModel // names and exact aliases
	fieldOf       map[string]string  // name or exact alias → the field that defined it
	patterns      []modelPattern     // glob aliases, in config order
	routingNames  map[string]bool    // names only rules declare, e.g. "auto"
	rules         []rrule
	needsFeatures bool
}

// RBackend is a backend with its URL split and credential loaded.
type RBackend struct {
	Name   string
	Schema string
	TLS    bool
	Host   string // without port
	Port   uint32
	// BasePath is the URL path prefix without a trailing slash ("" or "/openai").
	BasePath string
	// Credential is the secret read from env or file; "" when none is configured.
	Credential string
	// CredentialNext is backends[].credential_next, the second key of a
	// rotation; "" when none is configured.
	CredentialNext string
	SetHeaders     [][2]string // lowercased names, config order sorted by name
	RemoveHeaders  []string    // lowercased
	DropParams     []string
	// ReasoningContent: the model's thinking reaches OpenAI chat clients
	// (backends[].reasoning_content).
	ReasoningContent bool

	// Schema options with defaults applied (zero values for other schemas).
	Anthropic AnthropicOptions
	Azure     AzureOptions
	Vertex    VertexOptions
	Bedrock   BedrockOptions
	Compat    CompatOptions
}

// Authority is host[:port] as sent in the Host header.
func (b *RBackend) Authority() string {
	if (b.TLS && b.Port == 443) || (!b.TLS && b.Port == 80) {
		if strings.Contains(b.Host, ":") {
			return "[" + b.Host + "]" // IPv6 literal
		}
		return b.Host
	}
	return net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
}

// RPool is a fallback chain; Members[i] has Envoy priority i.
type RPool struct {
	Name    string
	Members []*RMember
}

// Member returns the pool member for a backend name.
func (p *RPool) Member(backend string) (*RMember, bool) {
	for _, m := range p.Members {
		if m.Backend.Name == backend {
			return m, true
		}
	}
	return nil, false
}

// RMember is one backend of a pool.
type RMember struct {
	Backend  *RBackend
	Model    string // override; "" keeps the client's model
	Priority int
}

// RModel is a client-facing model.
type RModel struct {
	Name    string
	Aliases []string
	Pool    *RPool
	Price   Price
	OwnedBy string
	Kind    string // KindChat or KindEmbedding
}

// Model kinds (Model.Kind).
const (
	KindChat      = "chat"
	KindEmbedding = "embedding"
)

// Resolve decides a request by its model name alone, as Decide does for a
// request with no other features; false when the name is unknown, no rule
// matched it, or a deny rule did.
func (r *Runtime) Resolve(model string) (Decision, bool) {
	d, err := r.Decide(&route.Features{Model: model})
	return d, err == nil && d.Deny == ""
}

// cacheMode is a route's cache mode, or cache.mode when the route sets none.
func (r *Runtime) cacheMode(route string) string {
	if route != "" {
		return route
	}
	if r.Source == nil || r.Source.Cache.Mode == "" {
		return "off"
	}
	return r.Source.Cache.Mode
}

// Cache match values (Cache.Match, RouteCache.Match).
const (
	MatchExact      = "exact"
	MatchNormalized = "normalized"
	MatchSemantic   = "semantic"
)

// cacheMatch is a route's cache match, or cache.match when the route sets
// none; exact by default.
func (r *Runtime) cacheMatch(route string) string {
	if route != "" {
		return route
	}
	if r.Source == nil || r.Source.Cache.Match == "" {
		return MatchExact
	}
	return r.Source.Cache.Match
}

// Model returns the registry entry for a name, an alias or a name a glob
// alias matches.
func (r *Runtime) Model(name string) (*RModel, bool) {
	m := r.lookup(name)
	return m, m != nil
}

// PriceFor returns the price of what was served: the backend model's entry if
// the registry has one, else the requested model's.
func (r *Runtime) PriceFor(servedModel, requestedModel string) (Price, bool) {
	if m := r.lookup(servedModel); m != nil {
		return m.Price, true
	}
	if m := r.lookup(requestedModel); m != nil {
		return m.Price, true
	}
	return Price{}, false
}

// CredentialFiles lists the files credentials are read from, for reload.
func (c *Config) CredentialFiles() []string {
	var out []string
	for _, b := range c.Backends {
		for _, c := range []Credential{b.Credential, b.CredentialNext} {
			if c.File != "" {
				out = append(out, c.File)
			}
		}
	}
	if r := c.Cache.Redis; r != nil && r.Password.File != "" {
		out = append(out, r.Password.File)
	}
	if c.Identity.Source == SourceClientKeys && c.Identity.KeysFile != "" {
		out = append(out, c.Identity.KeysFile) // re-read like a credential: revocation
	}
	if cc := c.Routing.Classifier; cc.Examples != "" && cc.Kind != route.KindKeywords {
		out = append(out, cc.Examples) // a changed examples file re-adapts the model
	}
	return out
}

// Compile turns a validated Config into a Runtime, reading credentials through
// getenv and the file system. Every problem is reported, each with its path.
func Compile(c *Config, getenv func(string) string) (*Runtime, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	return compile(c, getenv, true)
}

// Topology compiles without reading credentials, for rendering Envoy config on
// a machine that holds no secrets.
func Topology(c *Config) (*Runtime, error) { return compile(c, nil, false) }

func compile(c *Config, getenv func(string) string, secrets bool) (*Runtime, error) {
	var errs []error
	rt := &Runtime{
		Source:   c,
		Backends: make(map[string]*RBackend, len(c.Backends)),
		Pools:    make(map[string]*RPool, len(c.Pools)),
		byName:   map[string]*RModel{},
		fieldOf:  map[string]string{},
	}
	for i, b := range c.Backends {
		rb, err := compileBackend(b, getenv, secrets)
		if err != nil {
			errs = append(errs, fmt.Errorf("backends[%d].%w", i, err))
			continue
		}
		rt.Backends[b.Name] = rb
	}
	// Compile may be handed a Config that never went through Validate, so the
	// references the hot path follows without checking are checked here.
	declared := map[string]bool{}
	for _, b := range c.Backends {
		declared[b.Name] = true
	}
	for i, p := range c.Pools {
		rp := &RPool{Name: p.Name}
		for j, m := range p.Backends {
			b := rt.Backends[m.Backend]
			switch {
			case b != nil:
				rp.Members = append(rp.Members, &RMember{Backend: b, Model: m.Model, Priority: j})
			case !declared[m.Backend]:
				errs = append(errs, fmt.Errorf("pools[%d].backends[%d].backend: unknown backend %q", i, j, m.Backend))
			}
		}
		rt.Pools[p.Name] = rp
	}
	for i, m := range c.Models {
		if rt.Pools[m.Pool] == nil {
			errs = append(errs, fmt.Errorf("models[%d].pool: unknown pool %q", i, m.Pool))
		}
		rm := &RModel{Name: m.Name, Aliases: m.Aliases, Pool: rt.Pools[m.Pool], Price: m.Price, OwnedBy: m.OwnedBy, Kind: cmp.Or(m.Kind, KindChat)}
		rt.Models = append(rt.Models, rm)
		rt.byName[m.Name] = rm
		rt.fieldOf[m.Name] = fmt.Sprintf("models[%d].name", i)
		for j, a := range m.Aliases {
			field := fmt.Sprintf("models[%d].aliases[%d]", i, j)
			if isGlob(a) {
				rt.patterns = append(rt.patterns, modelPattern{glob: a, field: field, model: rm})
				continue
			}
			rt.byName[a] = rm
			rt.fieldOf[a] = field
		}
	}
	errs = append(errs, rt.compileRouting(c)...)
	if err := rt.compileIdentity(c, secrets); err != nil {
		errs = append(errs, err)
	}
	if r := c.Cache.Redis; r != nil && secrets {
		pw, err := readSecret(r.Password, getenv)
		if err != nil {
			errs = append(errs, fmt.Errorf("cache.redis.password.%w", err))
		}
		rt.RedisPassword = pw
	}
	if r := c.BudgetStore.Redis; r != nil && secrets {
		pw, err := readSecret(r.Password, getenv)
		if err != nil {
			errs = append(errs, fmt.Errorf("budget_store.redis.password.%w", err))
		}
		rt.BudgetRedisPassword = pw
	}
	if r := c.Identity.Redis; r != nil && secrets && c.Identity.Source == SourceClientKeys {
		pw, err := readSecret(r.Password, getenv)
		if err != nil {
			errs = append(errs, fmt.Errorf("identity.redis.password.%w", err))
		}
		rt.IdentityRedisPassword = pw
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return rt, nil
}

func compileBackend(b Backend, getenv func(string) string, secrets bool) (*RBackend, error) {
	u, err := url.Parse(b.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	rb := &RBackend{
		Name:     b.Name,
		Schema:   b.Schema,
		TLS:      u.Scheme == "https",
		Host:     u.Hostname(),
		BasePath: strings.TrimRight(u.Path, "/"),
	}
	rb.Port = 80
	if rb.TLS {
		rb.Port = 443
	}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("url: bad port %q", p)
		}
		rb.Port = uint32(n)
	}
	if secrets {
		cred, err := readSecret(b.Credential, getenv)
		if err != nil {
			return nil, fmt.Errorf("credential.%w", err)
		}
		rb.Credential = cred
		if rb.CredentialNext, err = readSecret(b.CredentialNext, getenv); err != nil {
			return nil, fmt.Errorf("credential_next.%w", err)
		}
	}
	rb.DropParams = b.DropParams
	rb.ReasoningContent = b.ReasoningContent
	rb.Anthropic = AnthropicOptions{Version: "2023-06-01", MaxTokens: 4096}
	if o := b.Anthropic; o != nil {
		if o.Version != "" {
			rb.Anthropic.Version = o.Version
		}
		if o.MaxTokens > 0 {
			rb.Anthropic.MaxTokens = o.MaxTokens
		}
	}
	rb.Azure = AzureOptions{APIVersion: "2024-10-21", Auth: "api-key"}
	if o := b.Azure; o != nil {
		if o.APIVersion != "" {
			rb.Azure.APIVersion = o.APIVersion
		}
		if o.Auth != "" {
			rb.Azure.Auth = o.Auth
		}
	}
	if b.Vertex != nil {
		rb.Vertex = *b.Vertex
	}
	if b.Bedrock != nil {
		rb.Bedrock = *b.Bedrock
	}
	if rb.Bedrock.AnthropicAPI == "" {
		rb.Bedrock.AnthropicAPI = AnthropicAPIAuto
	}
	streamOptions := true
	rb.Compat = CompatOptions{StreamOptions: &streamOptions}
	if o := b.Compat; o != nil {
		if o.StreamOptions != nil {
			rb.Compat.StreamOptions = o.StreamOptions
		}
		rb.Compat.MaxTokensField = o.MaxTokensField
	}
	for k, v := range b.Headers.Set {
		rb.SetHeaders = append(rb.SetHeaders, [2]string{strings.ToLower(k), v})
	}
	slices.SortFunc(rb.SetHeaders, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	for _, k := range b.Headers.Remove {
		rb.RemoveHeaders = append(rb.RemoveHeaders, strings.ToLower(k))
	}
	return rb, nil
}

// readSecret reads a credential from its env var or file ("" when neither is
// set); errors start with "env: " or "file: " for the caller's field path.
func readSecret(c Credential, getenv func(string) string) (string, error) {
	switch {
	case c.Env != "":
		v := strings.TrimSpace(getenv(c.Env))
		if v == "" {
			return "", fmt.Errorf("env: environment variable %s is empty or unset", c.Env)
		}
		return v, nil
	case c.File != "":
		data, err := os.ReadFile(c.File)
		if err != nil {
			return "", fmt.Errorf("file: %w", err)
		}
		v := strings.TrimSpace(string(data))
		if v == "" {
			return "", fmt.Errorf("file: %s is empty", c.File)
		}
		return v, nil
	}
	return "", nil
}
