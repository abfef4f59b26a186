package route

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/interpreter"
)

// A rule's condition is a CEL expression over the request's features. These
// are its variables; Vars documents them for error messages and the README.
var Vars = []struct {
	Name, Type, Doc string
}{
	{"model", "string", "the model the client asked for (a name or alias, or a routing-only name such as auto)"},
	{"explicit", "bool", "model is a registry model (a name or alias in models)"},
	{"client", "string", `the client's API: "openai" or "anthropic"`},
	{"input_tokens", "int", "estimated input tokens (characters / 4)"},
	{"messages", "int", "number of messages"},
	{"system_chars", "int", "characters of system prompt"},
	{"tools", "bool", "the request offers tools"},
	{"images", "bool", "some message carries an image"},
	{"stream", "bool", "stream: true"},
	{"response_format", "string", `"", "json_object" or "json_schema"`},
	{"max_tokens", "int", "max_completion_tokens, else max_tokens, else 0"},
	{"tenant", "string", "the tenant header's value (\"\" when absent)"},
	{"user", "string", "the body's end-user id (OpenAI user, Anthropic metadata.user_id)"},
	{"caller", "map(string, string)", `who is calling, as the identity source says: caller.tenant, caller.team and caller.tier (the source's, else identity.tenants[]'s), caller.source and caller.key_id; "" when unknown`},
	{"headers", "map(string, string)", "the headers listed in routing.headers, lowercased names; \"\" when absent"},
	{"class", "string", "the task class: code, reasoning, extraction, creative or chat (or a class of routing.classifier.examples)"},
	{"class_confidence", "double", "the classifier's probability for class, 0 to 1 (1 for kind keywords)"},
	{"class_runner_up", "string", "the model's second most likely class (\"\" for kind keywords)"},
	{"signals", "list(string)", "why the class was chosen, e.g. code:fence"},
}

// Env type-checks rule conditions. Building one costs about a millisecond, so
// a config load builds one and compiles every rule with it.
type Env struct{ env *cel.Env }

// NewEnv returns the environment that declares Vars.
func NewEnv() (*Env, error) {
	opts := make([]cel.EnvOption, 0, len(Vars))
	for _, v := range Vars {
		opts = append(opts, cel.Variable(v.Name, celType(v.Type)))
	}
	e, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, err
	}
	return &Env{env: e}, nil
}

func celType(t string) *cel.Type {
	switch t {
	case "string":
		return cel.StringType
	case "bool":
		return cel.BoolType
	case "int":
		return cel.IntType
	case "double":
		return cel.DoubleType
	case "list(string)":
		return cel.ListType(cel.StringType)
	case "map(string, string)":
		return cel.MapType(cel.StringType, cel.StringType)
	}
	panic("route: unknown variable type " + t)
}

// Condition is a compiled, type-checked rule condition. It is safe for
// concurrent use.
type Condition struct {
	src string
	prg cel.Program
}

// Compile parses and type-checks expr, which must be a bool expression over
// Vars. The error is one line: CEL's messages with line:column, 1-based.
func (e *Env) Compile(expr string) (*Condition, error) {
	ast, iss := e.env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		var msgs []string
		for _, e := range iss.Errors() {
			m := strings.ReplaceAll(e.Message, " (in container '')", "")
			msgs = append(msgs, fmt.Sprintf("%d:%d: %s", e.Location.Line(), e.Location.Column()+1, m))
		}
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("the expression is of type %s; a condition must be a bool", ast.OutputType())
	}
	// No runtime cost limit: its tracking doubles evaluation time, and every
	// collection a condition can range over is small (signals has at most
	// MaxSignals entries, headers only the configured ones).
	prg, err := e.env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, err
	}
	return &Condition{src: expr, prg: prg}, nil
}

// headerKey finds headers["name"] and headers.name in an expression.
var headerKey = regexp.MustCompile(`\bheaders\s*(?:\[\s*(?:"([^"\\]+)"|'([^'\\]+)')\s*\]|\.([A-Za-z_][A-Za-z0-9_]*))`)

// HeaderKeys lists the header names the expression reads by a literal key,
// lowercased, so the router can read them without a routing.headers entry
// (a missing map key would be an evaluation error otherwise).
func (c *Condition) HeaderKeys() []string {
	var out []string
	for _, m := range headerKey.FindAllStringSubmatch(c.src, -1) {
		out = append(out, strings.ToLower(m[1]+m[2]+m[3]))
	}
	return out
}

// classLiteral finds the class names an expression compares class with:
// class == "x", class != 'x', "x" == class and class in ["x", "y"].
var (
	classCompare = regexp.MustCompile(`\bclass\s*[!=]=\s*(?:"([^"\\]*)"|'([^'\\]*)')|(?:"([^"\\]*)"|'([^'\\]*)')\s*[!=]=\s*class\b`)
	classIn      = regexp.MustCompile(`\bclass\s+in\s*\[([^\]]*)\]`)
	literal      = regexp.MustCompile(`"([^"\\]*)"|'([^'\\]*)'`)
)

// ClassLiterals lists the class names the expression compares class with,
// so a config can check them against the classifier's classes.
func (c *Condition) ClassLiterals() []string {
	var out []string
	for _, m := range classCompare.FindAllStringSubmatch(c.src, -1) {
		out = append(out, m[1]+m[2]+m[3]+m[4])
	}
	for _, m := range classIn.FindAllStringSubmatch(c.src, -1) {
		for _, l := range literal.FindAllStringSubmatch(m[1], -1) {
			out = append(out, l[1]+l[2])
		}
	}
	return out
}

// String returns the expression as written.
func (c *Condition) String() string { return c.src }

// Eval evaluates the condition against f. An evaluation error (a missing map
// key, a type mismatch at run time) is returned; callers treat it as no match.
func (c *Condition) Eval(f *Features) (bool, error) {
	out, _, err := c.prg.Eval(activation{f})
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("condition %q gave %v, not a bool", c.src, out)
	}
	return bool(b), nil
}

// activation resolves Vars from Features without building a map per request.
type activation struct{ f *Features }

func (a activation) ResolveName(name string) (any, bool) {
	f := a.f
	switch name {
	case "model":
		return f.Model, true
	case "explicit":
		return f.Explicit, true
	case "client":
		return f.Client, true
	case "input_tokens":
		return int64(f.EstimatedInputTokens), true
	case "messages":
		return int64(f.Messages), true
	case "system_chars":
		return int64(f.SystemChars), true
	case "tools":
		return f.Tools, true
	case "images":
		return f.Images, true
	case "stream":
		return f.Stream, true
	case "response_format":
		return f.ResponseFormat, true
	case "max_tokens":
		return int64(f.MaxTokens), true
	case "tenant":
		return f.Tenant, true
	case "user":
		return f.User, true
	case "caller":
		if f.Caller == nil {
			return noCaller, true
		}
		return f.Caller, true
	case "headers":
		if f.Headers == nil {
			return map[string]string{}, true
		}
		return f.Headers, true
	case "class":
		return string(f.Class), true
	case "class_confidence":
		return f.Confidence, true
	case "class_runner_up":
		return string(f.RunnerUp), true
	case "signals":
		if f.Signals == nil {
			return []string{}, true
		}
		return f.Signals, true
	}
	return nil, false
}

func (activation) Parent() interpreter.Activation { return nil }

// noCaller has every caller key, empty, so a rule reading caller.tier on a
// request without one compares "" rather than failing.
var noCaller = map[string]string{"tenant": "", "team": "", "tier": "", "source": "", "key_id": ""}

// CallerOf is the caller variable's map for these values.
func CallerOf(tenant, team, tier, source, keyID string) map[string]string {
	return map[string]string{"tenant": tenant, "team": team, "tier": tier, "source": source, "key_id": keyID}
}
