package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/llmproc/llmproc/filter/identity"
)

// Identity sources: where a request's tenant comes from.
const (
	// SourceHeader takes the tenant from the tenant header as sent: safe
	// only when a hop in front of llmproc sets it (and drops a client's).
	SourceHeader = "header"
	// SourceClientKeys takes it from llmproc's own client API keys.
	SourceClientKeys = "client_keys"
	// SourceJWT takes it from a claim of a JWT Envoy's jwt_authn filter
	// verified, handed to llmproc as dynamic metadata.
	SourceJWT = "jwt"
	// SourceMesh takes it from the caller's workload identity (the peer
	// certificate's principal or URI SAN), mapped by identity.principals.
	SourceMesh = "mesh"
)

// Where identity.trusted_setter is (identity.setter).
const (
	SetterEnvoyFilter = "envoy_filter"
	SetterFrontProxy  = "front_proxy"
)

// Identity says who a caller is. Absent, the tenant header is read as sent
// (see Warnings).
type Identity struct {
	// Source is "header" (the tenant header, set by a trusted hop) or
	// "client_keys" (llmproc's API keys in Authorization: Bearer, x-api-key
	// or x-goog-api-key). Default "header".
	Source string `yaml:"source"`
	// TrustedSetter names the hop that sets the tenant header, e.g.
	// "ext_authz (authz.corp)"; for source header, where it is required
	// (unless AllowClientTenant) whenever a tenant header is read.
	TrustedSetter string `yaml:"trusted_setter"`
	// Setter says where that hop is: SetterEnvoyFilter (default), an HTTP
	// filter in Envoy's chain ahead of llmproc's router filter (ext_authz,
	// Lua, jwt_authn claim_to_headers, Istio outputClaimToHeaders): the
	// rendered Envoy config removes a client-sent copy before every
	// filter (early_header_mutation), so only that filter can set it; or
	// SetterFrontProxy, a proxy in front of Envoy that overwrites the
	// header: Envoy cannot tell its copy from a client's, so only that
	// proxy may be able to reach Envoy's listener.
	Setter string `yaml:"setter"`
	// AllowClientTenant accepts a tenant header nobody vouches for (a test,
	// or one tenant): any client can then claim any tenant.
	AllowClientTenant bool `yaml:"allow_client_tenant"`
	// KeysFile is the keys file `llmproc keys` writes (source client_keys).
	// It is re-read every limits.reload_interval, which bounds how long a
	// revoked key keeps working.
	KeysFile string `yaml:"keys_file"`
	// Redis, for source client_keys, is a key store every replica shares
	// (`llmproc keys -redis`); with keys_file too, a key is looked up in
	// the file first. Read at start, like budget_store.redis.
	Redis *IdentityRedis `yaml:"redis"`
	// Refresh is how often each replica re-reads the Redis key store (when
	// it changed): the bound on how long a new key waits and a revoked key
	// keeps working. Default 5s.
	Refresh Duration `yaml:"refresh"`
	// JWT, for source jwt, is the issuer whose tokens Envoy verifies.
	JWT *JWT `yaml:"jwt"`
	// Principals, for source mesh, map workload identities to tenants.
	Principals []Principal `yaml:"principals"`
	// Tenants limits what each tenant may use; a tenant not listed may use
	// every model.
	Tenants []TenantAccess `yaml:"tenants"`
}

// JWT is the token issuer of identity.source jwt. The rendered Envoy config
// verifies tokens with jwt_authn (signature against the JWKS, issuer,
// audiences, exp and nbf) and hands the payload to llmproc as dynamic
// metadata; llmproc reads the tenant from a claim.
type JWT struct {
	Issuer string `yaml:"issuer"`
	// Audiences, when set, are the aud values accepted (any one).
	Audiences []string `yaml:"audiences"`
	// JWKSURI is where Envoy fetches the issuer's keys (remote_jwks);
	// JWKSFile a file holding them (local_jwks). Exactly one is set.
	JWKSURI  string `yaml:"jwks_uri"`
	JWKSFile string `yaml:"jwks_file"`
	// TenantClaim names the claim holding the tenant, "." separating
	// nested objects (default "tenant"); TeamClaim and TierClaim, when
	// set, the team and tier routing rules can read.
	TenantClaim string `yaml:"tenant_claim"`
	TeamClaim   string `yaml:"team_claim"`
	TierClaim   string `yaml:"tier_claim"`
}

// TenantClaimPath is tenant_claim with its default.
func (j *JWT) TenantClaimPath() string {
	if j.TenantClaim == "" {
		return "tenant"
	}
	return j.TenantClaim
}

// Principal maps a workload identity to a tenant (identity.source mesh).
type Principal struct {
	// Principal is a glob over the caller's identity: Istio's
	// source.principal ("cluster.local/ns/team-a/sa/app") or the peer
	// certificate's URI SAN ("spiffe://cluster.local/ns/team-a/sa/app").
	Principal string `yaml:"principal"`
	Tenant    string `yaml:"tenant"`
	Team      string `yaml:"team"`
	Tier      string `yaml:"tier"`
}

// IdentityRedis is the shared client-key store.
type IdentityRedis struct {
	Addr     string     `yaml:"addr"`
	Password Credential `yaml:"password"`
	// Prefix starts its Redis keys (default "llmproc:"): <prefix>keys is
	// the hash of keys, <prefix>keys:version its write counter.
	Prefix string `yaml:"prefix"`
	// Timeout bounds each Redis call (default 1s); requests never wait on
	// Redis, only the refresh does.
	Timeout Duration `yaml:"timeout"`
}

// DefaultIdentityRefresh is identity.refresh's default.
const DefaultIdentityRefresh = 5 * time.Second

// RefreshInterval is identity.refresh with its default applied.
func (id Identity) RefreshInterval() time.Duration {
	if id.Refresh.Duration > 0 {
		return id.Refresh.Duration
	}
	return DefaultIdentityRefresh
}

// TenantAccess is what one tenant may use.
type TenantAccess struct {
	Name string `yaml:"name"`
	// Models are glob patterns ("*" any run) over registry names, aliases
	// and routing-only names such as "auto"; empty allows every model.
	Models []string `yaml:"models"`
	// Tools, when set, are glob patterns over the names of the tools a
	// request may offer the model (function names; a built-in tool's type);
	// a request offering another is refused 403 naming it.
	Tools []string `yaml:"tools"`
	// APIs, when set, are the client APIs the tenant may call: chat
	// (/v1/chat/completions), responses, embeddings, completions, messages
	// (Anthropic) and gemini; another is refused 403 naming it.
	APIs []string `yaml:"apis"`
	// MaxRequestBytes, when set, bounds the tenant's request bodies below
	// limits.max_request_bytes; a larger one gets 413.
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
	// Team and Tier are attributes routing rules read as caller.team and
	// caller.tier when the identity source gives none.
	Team string `yaml:"team"`
	Tier string `yaml:"tier"`
	// CacheGroup, when set, shares cached answers with the other tenants
	// of the same group (two or more); cache entries are otherwise private
	// to their tenant.
	CacheGroup string `yaml:"cache_group"`
}

// CacheGroup is the tenant's identity.tenants[].cache_group ("" for none:
// its cache entries are its own).
func (r *Runtime) CacheGroup(tenant string) string {
	for _, t := range r.Source.Identity.Tenants {
		if t.Name == tenant {
			return t.CacheGroup
		}
	}
	return ""
}

// MaxRequestBytes is the tenant's body limit: identity.tenants[]'s, else
// limits.max_request_bytes.
func (r *Runtime) MaxRequestBytes(tenant string) int64 {
	for _, t := range r.Source.Identity.Tenants {
		if t.Name == tenant && t.MaxRequestBytes > 0 {
			return t.MaxRequestBytes
		}
	}
	return r.Source.Limits.MaxRequestBytes
}

// ClientAPIs are the names identity.tenants[].apis (and a client key's
// apis) take.
var ClientAPIs = identity.ClientAPIs

// APIAllowed reports whether the tenant may call the client API.
func (r *Runtime) APIAllowed(tenant, api string) bool {
	for _, t := range r.Source.Identity.Tenants {
		if t.Name == tenant && len(t.APIs) > 0 {
			return slices.Contains(t.APIs, api)
		}
	}
	return true
}

// ToolAllowed reports whether the tenant may offer a tool of this name.
func (r *Runtime) ToolAllowed(tenant, name string) bool {
	for _, t := range r.Source.Identity.Tenants {
		if t.Name != tenant || len(t.Tools) == 0 {
			continue
		}
		for _, p := range t.Tools {
			if globMatch(p, name) {
				return true
			}
		}
		return false
	}
	return true
}

// MatchAny reports whether name matches one of the glob patterns ("*" any
// run): a client key's tool allow-list.
func MatchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if globMatch(p, name) {
			return true
		}
	}
	return false
}

// RestrictsTools reports whether some tenant has a tool allow-list.
func (r *Runtime) RestrictsTools() bool {
	for _, t := range r.Source.Identity.Tenants {
		if len(t.Tools) > 0 {
			return true
		}
	}
	return false
}

// TenantAttrs are identity.tenants[]'s team and tier for a tenant.
func (r *Runtime) TenantAttrs(tenant string) (team, tier string) {
	for _, t := range r.Source.Identity.Tenants {
		if t.Name == tenant {
			return t.Team, t.Tier
		}
	}
	return "", ""
}

func (v *validator) validateIdentity(c *Config) {
	id := c.Identity
	v.oneOf("identity.source", id.Source, SourceHeader, SourceClientKeys, SourceJWT, SourceMesh)
	v.validateJWT(id)
	v.validatePrincipals(id)
	switch id.Source {
	case SourceClientKeys:
		if id.KeysFile == "" && id.Redis == nil {
			v.add("identity.keys_file", "is required with identity.source client_keys (or identity.redis)")
		}
		if r := id.Redis; r != nil {
			v.addr("identity.redis.addr", r.Addr)
			if r.Password.Env != "" && r.Password.File != "" {
				v.add("identity.redis.password", "set env or file, not both")
			}
			if r.Timeout.Duration < 0 {
				v.add("identity.redis.timeout", "must not be negative")
			}
		}
		if id.Refresh.Duration < 0 {
			v.add("identity.refresh", "must not be negative")
		}
		if id.TrustedSetter != "" || id.Setter != "" || id.AllowClientTenant {
			v.add("identity.trusted_setter", "applies to identity.source header only (as do setter and allow_client_tenant)")
		}
		if ri := c.Limits.ReloadInterval; ri != nil && ri.Duration <= 0 {
			v.add("limits.reload_interval", "is %s: with identity.source client_keys the keys file must be re-read, or a revoked key never stops working", ri.Duration)
		}
	default:
		if id.KeysFile != "" {
			v.add("identity.keys_file", "applies to identity.source client_keys only")
		}
		if id.Setter != "" {
			v.oneOf("identity.setter", id.Setter, SetterEnvoyFilter, SetterFrontProxy)
		}
		if h := c.TenantHeader(); (id.Source == "" || id.Source == SourceHeader) && h != "" && id.TrustedSetter == "" && !id.AllowClientTenant {
			v.add("identity.trusted_setter", "is required: the tenant header %q would be taken as any client sends it, so any caller could claim any tenant's cache, budget and models; "+
				"name the hop that sets it (identity: {trusted_setter: \"ext_authz\", setter: envoy_filter|front_proxy}), use identity.source client_keys, jwt or mesh, "+
				"or accept a client-settable tenant with identity.allow_client_tenant: true", h)
		}
		if id.Redis != nil {
			v.add("identity.redis", "applies to identity.source client_keys only")
		}
	}
	v.validateCacheGroups(id.Tenants)
	seen := map[string]bool{}
	for i, t := range id.Tenants {
		p := fmt.Sprintf("identity.tenants[%d]", i)
		switch {
		case t.Name == "":
			v.add(p+".name", "is required")
		case seen[t.Name]:
			v.add(p+".name", "duplicate tenant %q", t.Name)
		}
		seen[t.Name] = true
		for j, m := range t.Models {
			if m == "" {
				v.add(fmt.Sprintf("%s.models[%d]", p, j), "is empty")
			}
		}
		for j, m := range t.Tools {
			if m == "" {
				v.add(fmt.Sprintf("%s.tools[%d]", p, j), "is empty")
			}
		}
		if t.MaxRequestBytes < 0 || (t.MaxRequestBytes > 0 && t.MaxRequestBytes > c.Limits.MaxRequestBytes && c.Limits.MaxRequestBytes > 0) {
			v.add(p+".max_request_bytes", "is %d: want 1 to limits.max_request_bytes (%d)", t.MaxRequestBytes, c.Limits.MaxRequestBytes)
		}
		for j, a := range t.APIs {
			v.oneOf(fmt.Sprintf("%s.apis[%d]", p, j), a, ClientAPIs...)
		}
	}
}

// validateCacheGroups checks identity.tenants[].cache_group: a name of
// letters, digits, '.', '_' and '-', shared by two or more tenants (a group
// of one shares with nobody: a typo, most likely).
func (v *validator) validateCacheGroups(tenants []TenantAccess) {
	members := map[string][]string{}
	for _, t := range tenants {
		if t.CacheGroup != "" {
			members[t.CacheGroup] = append(members[t.CacheGroup], t.Name)
		}
	}
	for i, t := range tenants {
		g := t.CacheGroup
		if g == "" {
			continue
		}
		p := fmt.Sprintf("identity.tenants[%d].cache_group", i)
		switch {
		case strings.TrimFunc(g, func(c rune) bool {
			return c == '.' || c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		}) != "":
			v.add(p, "%q: want letters, digits, '.', '_' or '-'", g)
		case len(members[g]) < 2:
			v.add(p, "group %q has only tenant %q: a cache group shares entries between two or more tenants", g, t.Name)
		}
	}
}

func (v *validator) validateJWT(id Identity) {
	j := id.JWT
	if id.Source != SourceJWT {
		if j != nil {
			v.add("identity.jwt", "applies to identity.source jwt only")
		}
		return
	}
	if j == nil {
		v.add("identity.jwt", "is required with identity.source jwt: {issuer, jwks_uri or jwks_file}")
		return
	}
	if j.Issuer == "" {
		v.add("identity.jwt.issuer", "is required")
	}
	switch {
	case j.JWKSURI == "" && j.JWKSFile == "":
		v.add("identity.jwt.jwks_uri", "set jwks_uri or jwks_file")
	case j.JWKSURI != "" && j.JWKSFile != "":
		v.add("identity.jwt.jwks_uri", "set jwks_uri or jwks_file, not both")
	case j.JWKSURI != "":
		if u, err := url.Parse(j.JWKSURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" {
			v.add("identity.jwt.jwks_uri", "want an http(s) URL, got %q", j.JWKSURI)
		}
	}
	for i, a := range j.Audiences {
		if a == "" {
			v.add(fmt.Sprintf("identity.jwt.audiences[%d]", i), "is empty")
		}
	}
	for _, c := range []struct{ field, claim string }{{"tenant_claim", j.TenantClaimPath()}, {"team_claim", j.TeamClaim}, {"tier_claim", j.TierClaim}} {
		if c.claim != "" && slices.Contains(strings.Split(c.claim, "."), "") {
			v.add("identity.jwt."+c.field, "%q has an empty part", c.claim)
		}
	}
}

func (v *validator) validatePrincipals(id Identity) {
	if id.Source != SourceMesh {
		if len(id.Principals) > 0 {
			v.add("identity.principals", "applies to identity.source mesh only")
		}
		return
	}
	if len(id.Principals) == 0 {
		v.add("identity.principals", "is required with identity.source mesh: [{principal, tenant}]")
	}
	for i, p := range id.Principals {
		path := fmt.Sprintf("identity.principals[%d]", i)
		if p.Principal == "" {
			v.add(path+".principal", "is required")
		}
		if p.Tenant == "" {
			v.add(path+".tenant", "is required")
		}
	}
}

// Warnings are what `llmproc validate` reports about a config that loads
// but is unsafe: a tenant header read as the client sent it, accepted with
// identity.allow_client_tenant.
func (c *Config) Warnings() []string {
	h := c.TenantHeader()
	if h == "" || (c.Identity.Source != "" && c.Identity.Source != SourceHeader) || c.Identity.TrustedSetter != "" {
		return nil
	}
	return []string{fmt.Sprintf("identity: the tenant header %q is client-settable (identity.allow_client_tenant): any caller can claim any tenant's cache, budget and models; "+
		"set identity.source client_keys, jwt or mesh, or identity: {trusted_setter: \"<the hop that sets %s>\"}", h, h)}
}

// StripTenantHeader is the tenant header the rendered Envoy config removes
// from every request before its HTTP filters: under source header with a
// trusted setter that is an Envoy filter. "" when none.
func (c *Config) StripTenantHeader() string {
	id := c.Identity
	if (id.Source != "" && id.Source != SourceHeader) || id.TrustedSetter == "" || id.Setter == SetterFrontProxy {
		return ""
	}
	return c.TenantHeader()
}

// compileIdentity loads the keys file (when secrets are read) and the
// per-tenant model patterns.
func (r *Runtime) compileIdentity(c *Config, secrets bool) error {
	r.ClientKeys = c.Identity.Source == SourceClientKeys
	r.IdentitySource = c.Identity.Source
	if r.IdentitySource == "" {
		r.IdentitySource = SourceHeader
	}
	r.tenantModels = map[string][]string{}
	for _, t := range c.Identity.Tenants {
		if len(t.Models) > 0 {
			r.tenantModels[t.Name] = t.Models
		}
	}
	if !r.ClientKeys || !secrets || c.Identity.KeysFile == "" {
		return nil
	}
	k, err := identity.Load(c.Identity.KeysFile)
	if err != nil {
		return fmt.Errorf("identity.keys_file: %w", err)
	}
	r.Keys = k
	return nil
}

// ModelAllowed reports whether a tenant, and a key whose own patterns are
// keyModels (nil for none), may ask for model: a pattern matches the name
// asked for or the registry model it names.
func (r *Runtime) ModelAllowed(tenant string, keyModels []string, model string) bool {
	return r.TenantModelAllowed(tenant, model) && r.ModelIn(keyModels, model)
}

// TenantModelAllowed reports whether identity.tenants[].models admits model.
func (r *Runtime) TenantModelAllowed(tenant, model string) bool {
	return modelIn(r, r.tenantModels[tenant], model)
}

// ModelIn reports whether model (or the registry model it names) matches
// one of the patterns; true when there are none.
func (r *Runtime) ModelIn(patterns []string, model string) bool { return modelIn(r, patterns, model) }

func modelIn(r *Runtime, patterns []string, model string) bool {
	if len(patterns) == 0 {
		return true
	}
	canonical := model
	if m := r.lookup(model); m != nil {
		canonical = m.Name
	}
	for _, p := range patterns {
		if globMatch(p, model) || globMatch(p, canonical) {
			return true
		}
	}
	return false
}

// MeshPrincipal maps a caller's workload identity to its identity.principals
// entry: the first whose glob matches, nil for none.
func (r *Runtime) MeshPrincipal(id string) *Principal {
	if id == "" {
		return nil
	}
	ps := r.Source.Identity.Principals
	for i := range ps {
		if globMatch(ps[i].Principal, id) {
			return &ps[i]
		}
	}
	return nil
}
