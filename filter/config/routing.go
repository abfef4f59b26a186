package config

import (
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/route"
)

// Routing configures what routing rules can see of a request.
type Routing struct {
	// TenantHeader names the request header (set by the mesh's authn) whose
	// value is the tenant feature. llmproc reads one tenant header: it must
	// equal cache.tenant_header and budget_store.tenant_header where those
	// are set, and defaults to them.
	TenantHeader string `yaml:"tenant_header"`
	// Headers lists request headers rules may read as headers["name"]
	// (lowercased; "" when the request has none). Headers a condition names
	// by a literal key (headers["x-team"]) are read without being listed.
	Headers []string `yaml:"headers"`
	// Classifier tunes the task classifier's thresholds and weights.
	Classifier route.ClassifierConfig `yaml:"classifier"`
}

// Route is an ordered routing rule; the first rule that matches a request
// decides it. Its action is one of pool, split or deny, optionally with a
// model to serve instead of the one asked for.
type Route struct {
	Name  string     `yaml:"name"`
	Match RouteMatch `yaml:"match"`
	// Pool serves the request.
	Pool string `yaml:"pool"`
	// Split spreads requests across pools by weight.
	Split []SplitTarget `yaml:"split"`
	// StickyBy keeps a split's choice stable per tenant, user or header
	// value ("tenant", "user" or "header:<name>"); empty picks at random.
	StickyBy string `yaml:"sticky_by"`
	// Model is a registry model sent to the backend instead of the one asked
	// for (a member's own model override still wins); its pool serves the
	// request unless pool or split is set, and its price is recorded.
	Model string `yaml:"model"`
	// Deny rejects the request with 403 and this message.
	Deny string `yaml:"deny"`
	// OverrideExplicit lets a rule without match models apply to requests
	// that name a registry model; by default those are honoured and only
	// deny rules and rules naming the model apply.
	OverrideExplicit bool `yaml:"override_explicit"`
	// Cache overrides cache.mode and cache.match for requests this rule
	// routes: `cache: all` (a mode) or `cache: {mode: all, match: normalized}`.
	Cache RouteCache `yaml:"cache"`
}

// RouteCache is a route's cache override; an empty field keeps the cache
// section's value.
type RouteCache struct {
	// Mode: off, deterministic or all (see Cache.Mode).
	Mode string `yaml:"mode"`
	// Match: exact, normalized or semantic (see Cache.Match).
	Match string `yaml:"match"`
}

// UnmarshalYAML reads a mode alone (`cache: all`, the older form) or a
// mapping of mode and match.
func (c *RouteCache) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		c.Mode = n.Value
		return nil
	case yaml.MappingNode:
		var errs []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			var dst *string
			switch k.Value {
			case "mode":
				dst = &c.Mode
			case "match":
				dst = &c.Match
			default:
				errs = append(errs, fmt.Sprintf("line %d: field %s not found in type config.RouteCache", k.Line, k.Value))
				continue
			}
			if v.Kind != yaml.ScalarNode {
				errs = append(errs, fmt.Sprintf("line %d: column %d: want a string, got %s", v.Line, v.Column, describe(v)))
				continue
			}
			*dst = v.Value
		}
		if errs != nil {
			return &yaml.TypeError{Errors: errs}
		}
		return nil
	}
	return nodeError(n, "want a cache mode or {mode: …, match: …}, got %s", describe(n))
}

// RouteMatch selects requests. Model and Models list the requested names the
// rule applies to (names need not be in models: a routing-only name such as
// "auto" is declared by appearing here); When is a CEL condition over the
// request's features (see route.Vars). Every part given must hold.
type RouteMatch struct {
	Model  string   `yaml:"model"`
	Models []string `yaml:"models"`
	When   string   `yaml:"when"`
}

// SplitTarget is one pool of a weighted split.
type SplitTarget struct {
	Pool   string `yaml:"pool"`
	Weight int    `yaml:"weight"`
}

// TenantHeader is the header the tenant is read from: the first of
// routing.tenant_header, budget_store.tenant_header and cache.tenant_header
// that is set (Validate makes sure they agree), lowercased.
func (c *Config) TenantHeader() string {
	for _, h := range []string{c.Routing.TenantHeader, c.BudgetStore.TenantHeader, c.Cache.TenantHeader} {
		if h != "" {
			return strings.ToLower(h)
		}
	}
	return ""
}

const maxSplitWeight = 1_000_000

func (v *validator) validateRouting(c *Config, pools map[string]bool, names map[string]string) {
	r := c.Routing
	if r.TenantHeader != "" && !validHeaderName(r.TenantHeader) {
		v.add("routing.tenant_header", "invalid header name %q", r.TenantHeader)
	}
	tenant := c.TenantHeader()
	for _, h := range []struct{ path, value string }{
		{"budget_store.tenant_header", c.BudgetStore.TenantHeader},
		{"cache.tenant_header", c.Cache.TenantHeader},
	} {
		if h.value != "" && !strings.EqualFold(h.value, tenant) {
			v.add(h.path, "is %q but the tenant is read from %q: llmproc reads one tenant header", h.value, tenant)
		}
	}
	for i, h := range r.Headers {
		if !validHeaderName(h) {
			v.add(fmt.Sprintf("routing.headers[%d]", i), "invalid header name %q", h)
		}
	}
	v.validateClassifier(r.Classifier)
	for _, class := range slices.Sorted(maps.Keys(r.Classifier.Keywords)) {
		p := "routing.classifier.keywords." + string(class)
		if class == route.ClassChat || !slices.Contains(route.Classes, class) {
			v.add(p, "unknown class %q (want code, reasoning, extraction or creative)", class)
		}
		for i, k := range r.Classifier.Keywords[class] {
			if strings.TrimSpace(k) == "" {
				v.add(fmt.Sprintf("%s[%d]", p, i), "is empty")
			}
		}
	}
	env, err := route.NewEnv()
	if err != nil {
		v.add("routes", "CEL environment: %v", err)
		return
	}
	seen := map[string]bool{}
	for i, rt := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		v.name(p+".name", rt.Name, seen, "route")
		for j, m := range rt.Match.Models {
			if m == "" {
				v.add(fmt.Sprintf("%s.match.models[%d]", p, j), "is empty")
			}
		}
		if rt.Match.When != "" {
			if _, err := env.Compile(rt.Match.When); err != nil {
				v.add(p+".match.when", "%v", err)
			}
		}
		v.validateAction(p, rt, pools, names)
		if rt.Cache.Mode != "" {
			v.oneOf(p+".cache.mode", rt.Cache.Mode, "off", "deterministic", "all")
		}
		if rt.Cache.Match != "" {
			v.oneOf(p+".cache.match", rt.Cache.Match, MatchExact, MatchNormalized, MatchSemantic)
		}
	}
}

func (v *validator) validateAction(p string, rt Route, pools map[string]bool, names map[string]string) {
	pool := func(path, name string) {
		if name == "" {
			v.add(path, "is required")
		} else if !pools[name] {
			v.add(path, "unknown pool %q", name)
		}
	}
	switch {
	case rt.Deny != "":
		if rt.Pool != "" || len(rt.Split) > 0 || rt.Model != "" {
			v.add(p+".deny", "a deny rule cannot also set pool, split or model")
		}
	case rt.Pool != "" && len(rt.Split) > 0:
		v.add(p+".split", "set pool or split, not both")
	case rt.Pool != "":
		pool(p+".pool", rt.Pool)
	case len(rt.Split) > 0:
		total := 0
		for j, s := range rt.Split {
			sp := fmt.Sprintf("%s.split[%d]", p, j)
			pool(sp+".pool", s.Pool)
			if s.Weight < 1 || s.Weight > maxSplitWeight {
				v.add(sp+".weight", "must be between 1 and %d, got %d", maxSplitWeight, s.Weight)
			}
			total += s.Weight
		}
	case rt.Model == "":
		v.add(p+".pool", "is required (or split, model or deny)")
	}
	if rt.Model != "" {
		if _, ok := names[rt.Model]; !ok {
			v.add(p+".model", "unknown model %q (not a name or alias in models)", rt.Model)
		}
	}
	switch s := rt.StickyBy; {
	case s == "":
	case len(rt.Split) == 0:
		v.add(p+".sticky_by", "only applies to a split")
	case s == "tenant" || s == "user":
	case strings.HasPrefix(s, "header:") && validHeaderName(strings.TrimPrefix(s, "header:")):
	default:
		v.add(p+".sticky_by", `want "tenant", "user" or "header:<name>", got %q`, s)
	}
}

// rrule is a compiled routing rule.
type rrule struct {
	name     string
	models   map[string]bool
	when     *route.Condition
	pool     *RPool
	split    []rsplit // cumulative weights
	sticky   string   // "", "tenant", "user" or a lowercased header name
	model    *RModel
	deny     string
	explicit bool // OverrideExplicit
	cache    RouteCache
}

type rsplit struct {
	pool *RPool
	upto int // cumulative weight, exclusive upper bound
}

// Decision is what the router role chose for a request.
type Decision struct {
	Route string  // rule name, or "model" when the model's own pool was used
	Pool  *RPool  // nil only for a deny
	Model *RModel // the registry entry priced and cached under; nil for a routing-only name
	// Target is the model to send instead of the client's ("" keeps it).
	Target string
	// Deny is the message of a deny rule; the request is rejected with 403.
	Deny  string
	Cache string // cache mode for the request: off, deterministic or all
	// CacheMatch is how a lookup matches: exact, normalized or semantic.
	CacheMatch string
	// EvalError is the first rule condition that failed to evaluate (it
	// counted as no match), as "rule: error"; "" when none did.
	EvalError string
}

// Errors of Decide.
var (
	// ErrUnknownModel: the name is neither a registry model nor named by a rule.
	ErrUnknownModel = errors.New("unknown model")
	// ErrNoRoute: a routing-only name that no rule matched.
	ErrNoRoute = errors.New("no routing rule matched")
)

// DecisionError turns Decide's outcome into the client's error: 404
// model_not_found, 400 no_route, 403 request_denied for a deny rule; nil when
// the request is routed.
func DecisionError(d Decision, err error, model string) *apierr.Error {
	switch {
	case errors.Is(err, ErrUnknownModel):
		return &apierr.Error{Status: http.StatusNotFound, Type: apierr.TypeInvalidRequest, Code: "model_not_found", Param: "model",
			Message: "The model `" + model + "` does not exist or you do not have access to it."}
	case err != nil:
		return &apierr.Error{Status: http.StatusBadRequest, Type: apierr.TypeInvalidRequest, Code: "no_route", Param: "model",
			Message: "No routing rule matched this request for model `" + model + "`."}
	case d.Deny != "":
		return &apierr.Error{Status: http.StatusForbidden, Type: apierr.TypeInvalidRequest, Code: "request_denied",
			Message: d.Deny + " (routing rule " + d.Route + ")"}
	}
	return nil
}

// NeedsFeatures reports whether some rule reads more than the model name, so
// the router must compute the request's features (and classify it).
func (r *Runtime) NeedsFeatures() bool { return r.needsFeatures }

// Decide picks the route for a request from its features. f.Explicit is set
// here. Rules are tried in order; the first that applies and matches wins.
// A request naming a registry model is served by that model's pool unless a
// deny rule, a rule listing the name, or an override_explicit rule matches.
func (r *Runtime) Decide(f *route.Features) (Decision, error) {
	m := r.lookup(f.Model)
	f.Explicit = m != nil
	if m == nil && !r.routingNames[f.Model] {
		return Decision{}, ErrUnknownModel
	}
	var evalErr string
	for i := range r.rules {
		ru := &r.rules[i]
		if len(ru.models) > 0 {
			if !ru.models[f.Model] && (m == nil || !ru.models[m.Name]) {
				continue
			}
		} else if m != nil && !ru.explicit && ru.deny == "" {
			continue
		}
		if ru.when != nil {
			ok, err := ru.when.Eval(f)
			if err != nil && evalErr == "" {
				evalErr = ru.name + ": " + err.Error()
			}
			if !ok {
				continue
			}
		}
		d := ru.decide(f, m)
		d.Cache, d.CacheMatch = r.cacheMode(ru.cache.Mode), r.cacheMatch(ru.cache.Match)
		d.EvalError = evalErr
		return d, nil
	}
	if m == nil {
		return Decision{EvalError: evalErr}, ErrNoRoute
	}
	return Decision{Route: "model", Pool: m.Pool, Model: m, Cache: r.cacheMode(""), CacheMatch: r.cacheMatch(""), EvalError: evalErr}, nil
}

func (ru *rrule) decide(f *route.Features, m *RModel) Decision {
	d := Decision{Route: ru.name, Model: m}
	if ru.deny != "" {
		d.Deny = ru.deny
		return d
	}
	if ru.model != nil {
		d.Model, d.Target, d.Pool = ru.model, ru.model.Name, ru.model.Pool
	}
	switch {
	case ru.pool != nil:
		d.Pool = ru.pool
	case len(ru.split) > 0:
		d.Pool = ru.pick(f)
	}
	return d
}

// pick chooses a split's pool: by a hash of the sticky key, so every replica
// sends the same tenant or user to the same pool, or at random without one.
func (ru *rrule) pick(f *route.Features) *RPool {
	total := ru.split[len(ru.split)-1].upto
	var key string
	switch ru.sticky {
	case "":
	case "tenant":
		key = f.Tenant
	case "user":
		key = f.User
	default:
		key = f.Headers[ru.sticky]
	}
	var n int
	if key == "" {
		n = rand.IntN(total)
	} else {
		h := fnv.New64a()
		h.Write([]byte(ru.name))
		h.Write([]byte{0})
		h.Write([]byte(key))
		n = int(h.Sum64() % uint64(total))
	}
	for _, s := range ru.split {
		if n < s.upto {
			return s.pool
		}
	}
	return ru.split[len(ru.split)-1].pool
}

// validateClassifier checks routing.classifier: its kind, and that the
// keyword settings are not set for the model, which would ignore them.
func (v *validator) validateClassifier(cc route.ClassifierConfig) {
	switch cc.Kind {
	case "", route.KindModel, route.KindKeywords:
	default:
		v.add("routing.classifier.kind", `want "model" (the default) or "keywords", got %q`, cc.Kind)
		return
	}
	if cc.Kind == route.KindKeywords {
		if cc.Examples != "" {
			v.add("routing.classifier.examples", "adapts the model; kind keywords has none (use keywords, or kind model)")
		}
		return
	}
	for _, f := range keywordSettings(cc) {
		v.add("routing.classifier."+f, "applies to kind keywords; the classifier is kind model (the default): set routing.classifier.kind: keywords, or drop it")
	}
}

// keywordSettings lists the keyword-classifier fields cc sets.
func keywordSettings(cc route.ClassifierConfig) []string {
	var out []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"code_min_score", cc.CodeMinScore != 0}, {"reasoning_min_score", cc.ReasoningMinScore != 0},
		{"extraction_min_score", cc.ExtractionMinScore != 0}, {"creative_min_score", cc.CreativeMinScore != 0},
		{"keyword_weight", cc.KeywordWeight != 0}, {"fence_weight", cc.FenceWeight != 0},
		{"response_format_weight", cc.ResponseFormatWeight != 0}, {"tools_weight", cc.ToolsWeight != 0},
		{"long_input_tokens", cc.LongInputTokens != 0}, {"long_input_weight", cc.LongInputWeight != 0},
		{"max_hits_per_keyword", cc.MaxHitsPerKeyword != 0}, {"max_classify_bytes", cc.MaxClassifyBytes != 0},
		{"keywords", len(cc.Keywords) > 0},
	} {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}

// classifierOf builds the classifier: for kind model with examples, the
// shipped model adapted to them (read and trained here, at every load).
func classifierOf(cc route.ClassifierConfig) (*route.Classifier, error) {
	if cc.Kind != route.KindKeywords && cc.Examples != "" {
		exs, err := route.ReadExampleFiles(cc.Examples)
		if err != nil {
			return nil, fmt.Errorf("routing.classifier.examples: %w", err)
		}
		if len(exs) == 0 {
			return nil, fmt.Errorf("routing.classifier.examples: %s holds no labelled requests", cc.Examples)
		}
		m, err := route.Adapt(route.ShippedModel(), exs, route.AdaptConfig())
		if err != nil {
			return nil, fmt.Errorf("routing.classifier.examples: %w", err)
		}
		cc.Model = m
	}
	return route.NewClassifier(cc), nil
}

// compileRouting compiles the rules; the config was validated, so problems
// here are only those Compile checks for configs that skipped Validate.
func (r *Runtime) compileRouting(c *Config) []error {
	var errs []error
	cl, err := classifierOf(c.Routing.Classifier)
	if err != nil {
		errs = append(errs, err)
		cl = route.NewClassifier(route.ClassifierConfig{Kind: c.Routing.Classifier.Kind})
	}
	r.Classifier = cl
	classes := cl.ClassNames()
	r.TenantHeader = c.TenantHeader()
	r.routingNames = map[string]bool{}
	for _, h := range c.Routing.Headers {
		r.RouteHeaders = append(r.RouteHeaders, strings.ToLower(h))
	}
	env, err := route.NewEnv()
	if err != nil {
		return append(errs, fmt.Errorf("routes: CEL environment: %w", err))
	}
	pool := func(path, name string) *RPool {
		p := r.Pools[name]
		if p == nil && name != "" {
			errs = append(errs, fmt.Errorf("%s: unknown pool %q", path, name))
		}
		return p
	}
	for i, rt := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		ru := rrule{name: rt.Name, models: map[string]bool{}, deny: rt.Deny, explicit: rt.OverrideExplicit, cache: rt.Cache}
		for _, name := range append([]string{rt.Match.Model}, rt.Match.Models...) {
			if name != "" {
				ru.models[name] = true
				if m := r.lookup(name); m != nil {
					ru.models[m.Name] = true // an alias stands for its model
				} else {
					r.routingNames[name] = true
				}
			}
		}
		if rt.Match.When != "" {
			ru.when, err = env.Compile(rt.Match.When)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.match.when: %w", p, err))
			}
			r.needsFeatures = true
			if ru.when != nil {
				for _, cls := range ru.when.ClassLiterals() {
					// ("" is the class of a request nothing classified.)
					if cls != "" && !slices.Contains(classes, route.Class(cls)) {
						errs = append(errs, fmt.Errorf("%s.match.when: class %q is not a class of the classifier (%s)", p, cls, joinClasses(classes)))
					}
				}
				for _, h := range ru.when.HeaderKeys() {
					if !slices.Contains(r.RouteHeaders, h) {
						r.RouteHeaders = append(r.RouteHeaders, h)
					}
				}
			}
		}
		ru.pool = pool(p+".pool", rt.Pool)
		total := 0
		for j, s := range rt.Split {
			total += max(s.Weight, 1)
			ru.split = append(ru.split, rsplit{pool: pool(fmt.Sprintf("%s.split[%d].pool", p, j), s.Pool), upto: total})
		}
		if rt.Model != "" {
			if ru.model = r.lookup(rt.Model); ru.model == nil {
				errs = append(errs, fmt.Errorf("%s.model: unknown model %q", p, rt.Model))
			}
		}
		if rt.Deny == "" && rt.Pool == "" && len(rt.Split) == 0 && rt.Model == "" {
			errs = append(errs, fmt.Errorf("%s: no pool, split, model or deny", p))
		}
		switch s := rt.StickyBy; {
		case strings.HasPrefix(s, "header:"):
			ru.sticky = strings.ToLower(strings.TrimPrefix(s, "header:"))
			if !slices.Contains(r.RouteHeaders, ru.sticky) {
				r.RouteHeaders = append(r.RouteHeaders, ru.sticky)
			}
		case s == "user":
			ru.sticky = s
			r.needsFeatures = true
		default:
			ru.sticky = s
		}
		r.rules = append(r.rules, ru)
	}
	return errs
}

func joinClasses(cs []route.Class) string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return strings.Join(out, ", ")
}
