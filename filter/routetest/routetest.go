// Package routetest runs requests through the routing rules offline, the way
// `promtool test rules` runs alerts: `llmproc route-test -config c.yaml
// requests.jsonl` prints, per request, its features, class, rule and pool,
// and checks the outcomes the file expects.
//
// Each line of the requests file is a JSON object:
//
//	{"name": "code question",                  // optional label
//	 "headers": {"x-tenant": "acme"},          // optional request headers
//	 "path": "/v1/messages",                   // optional; default /v1/chat/completions
//	 "body": {"model": "auto", "messages": [...]},
//	 "expect": {"rule": "code", "pool": "code", "class": "code",
//	            "model": "claude-sonnet-4-5", "error": "request_denied",
//	            "entry": "models[0].aliases[1]"}}
//
// A line may also be a bare chat-completions body. Blank lines and lines
// starting with # or // are skipped. Every expect field is optional; "model"
// is the model sent upstream (the rule's model, else the one asked for) and
// "error" the OpenAI error code of a rejected request (model_not_found,
// no_route, request_denied, or a body validation code).
package routetest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/llmproc/llmproc/filter/apierr"
	"github.com/llmproc/llmproc/filter/config"
	"github.com/llmproc/llmproc/filter/route"
)

// Case is one line of the requests file.
type Case struct {
	Name    string            `json:"name"`
	Headers map[string]string `json:"headers"`
	Path    string            `json:"path"`
	Body    json.RawMessage   `json:"body"`
	Expect  *Expect           `json:"expect"`
}

// Expect is what a case asserts; empty fields are not checked.
type Expect struct {
	Rule  string `json:"rule"`
	Pool  string `json:"pool"`
	Class string `json:"class"`
	Model string `json:"model"`
	Error string `json:"error"`
	Entry string `json:"entry"` // the registry field the model matched
}

// Result is what routing made of one case.
type Result struct {
	Line     int            `json:"line"`
	Name     string         `json:"name,omitempty"`
	Features route.Features `json:"features"`
	Rule     string         `json:"rule,omitempty"`
	Pool     string         `json:"pool,omitempty"`
	Model    string         `json:"model,omitempty"` // sent upstream
	// Entry is the registry field the model name matched: models[i].name,
	// or one of its aliases, exact or glob ("models[0].aliases[1]").
	Entry string `json:"entry,omitempty"`
	// Registered is the name of the registry model the entry belongs to.
	Registered string   `json:"registered,omitempty"`
	Error      string   `json:"error,omitempty"` // OpenAI error code
	Message    string   `json:"message,omitempty"`
	Mismatch   []string `json:"mismatch,omitempty"`
	// Explanation is the classifier's decision: class, probability,
	// runner-up and the features that pushed the class past the runner-up
	// (for kind keywords, the keyword signals).
	Explanation *route.Explanation `json:"explanation,omitempty"`
}

// explainTop is how many contributing features route-test shows.
const explainTop = 6

// Run routes every case in r and writes one result per case to w (a table, or
// JSON lines when asJSON). It returns the number of cases whose expectations
// failed; a file it cannot read is an error.
func Run(rt *config.Runtime, r io.Reader, w io.Writer, asJSON bool) (failed int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), int(rt.Source.Limits.MaxRequestBytes)+64<<10)
	n, line := 0, 0
	enc := json.NewEncoder(w)
	eval := route.NewEval(rt.Classifier.ClassNames())
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") || strings.HasPrefix(text, "//") {
			continue
		}
		c, err := parseCase([]byte(text))
		if err != nil {
			return failed, fmt.Errorf("line %d: %w", line, err)
		}
		res := Route(rt, c)
		res.Line = line
		if c.Expect != nil {
			res.Mismatch = check(*c.Expect, res)
			if c.Expect.Class != "" && res.Error == "" {
				name := c.Name
				if name == "" {
					name = fmt.Sprintf("line %d", line)
				}
				eval.Add(name, route.Class(c.Expect.Class), res.Features.Class, res.Features.Confidence)
			}
		}
		if len(res.Mismatch) > 0 {
			failed++
		}
		n++
		if asJSON {
			if err := enc.Encode(res); err != nil {
				return failed, err
			}
			continue
		}
		if _, err := io.WriteString(w, format(res)); err != nil {
			return failed, err
		}
	}
	if err := sc.Err(); err != nil {
		return failed, err
	}
	if !asJSON {
		fmt.Fprintf(w, "%d requests, %d failed\n", n, failed)
		if eval.Total > 0 {
			// The classifier's record on the cases that expect a class: a
			// held-out file of one's own traffic measures it.
			eval.Format(w, "classes expected")
		}
	}
	return failed, nil
}

func parseCase(b []byte) (Case, error) {
	var c Case
	if !gjson.ValidBytes(b) {
		return c, errors.New("not valid JSON")
	}
	if gjson.GetBytes(b, "body").Exists() {
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return c, err
		}
		return c, nil
	}
	c.Body = b // a bare request body
	return c, nil
}

// Route decides one case the way the router role does: features, tenant and
// header lookup, and rules. Of the router's body checks it repeats JSON and
// the model; messages and stream are checked only by the router.
func Route(rt *config.Runtime, c Case) Result {
	res := Result{Name: c.Name}
	client := "openai"
	if c.Path == "/v1/messages" {
		client = "anthropic"
	}
	f, err := rt.Classifier.Features(c.Body)
	if err != nil {
		return rejected(res, err)
	}
	if m := gjson.GetBytes(c.Body, "model"); m.Type != gjson.String || m.Str == "" {
		return rejected(res, apierr.BadRequest("missing_required_parameter", "the body needs a model string"))
	}
	f.Client = client
	hs := map[string]string{}
	for k, v := range c.Headers {
		hs[strings.ToLower(k)] = v
	}
	if rt.TenantHeader != "" {
		f.Tenant = hs[rt.TenantHeader]
	}
	if len(rt.RouteHeaders) > 0 {
		f.Headers = map[string]string{}
		for _, k := range rt.RouteHeaders {
			f.Headers[k] = hs[k]
		}
	}
	if f.Class != "" {
		if e, err := rt.Classifier.Explain(c.Body, explainTop); err == nil {
			res.Explanation = &e
		}
	}
	d, err := rt.Decide(&f)
	res.Features, res.Rule = f, d.Route
	if m, field, ok := rt.ModelMatch(f.Model); ok {
		res.Entry, res.Registered = field, m.Name
	}
	if e := config.DecisionError(d, err, f.Model); e != nil {
		return rejected(res, e)
	}
	res.Pool = d.Pool.Name
	res.Model = f.Model
	if d.Target != "" {
		res.Model = d.Target
	}
	return res
}

func rejected(res Result, err error) Result {
	e := apierr.From(err)
	res.Error, res.Message = e.Code, e.Message
	return res
}

func check(e Expect, r Result) []string {
	var out []string
	for _, c := range []struct{ field, want, got string }{
		{"rule", e.Rule, r.Rule},
		{"pool", e.Pool, r.Pool},
		{"class", e.Class, string(r.Features.Class)},
		{"model", e.Model, r.Model},
		{"error", e.Error, r.Error},
		{"entry", e.Entry, r.Entry},
	} {
		if c.want != "" && c.want != c.got {
			out = append(out, fmt.Sprintf("%s: want %q, got %q", c.field, c.want, c.got))
		}
	}
	if e.Error == "" && r.Error != "" {
		out = append(out, fmt.Sprintf("error: want none, got %s (%s)", r.Error, r.Message))
	}
	return out
}

func format(r Result) string {
	var b strings.Builder
	name := r.Name
	if name == "" {
		name = "-"
	}
	f := r.Features
	fmt.Fprintf(&b, "line %d  %s\n", r.Line, name)
	fmt.Fprintf(&b, "  features: model=%s tokens~%d messages=%d system_chars=%d tools=%v images=%v stream=%v response_format=%q max_tokens=%d tenant=%q\n",
		f.Model, f.EstimatedInputTokens, f.Messages, f.SystemChars, f.Tools, f.Images, f.Stream, f.ResponseFormat, f.MaxTokens, f.Tenant)
	fmt.Fprintf(&b, "  class: %s", f.Class)
	if e := r.Explanation; e != nil && e.RunnerUp != "" {
		fmt.Fprintf(&b, " %.2f (runner-up %s %.2f)", e.Confidence, e.RunnerUp, e.RunnerUpP)
	}
	if len(f.Signals) > 0 {
		fmt.Fprintf(&b, " %v", f.Signals)
	}
	b.WriteString("\n")
	if e := r.Explanation; e != nil && e.RunnerUp != "" && len(e.Top) > 0 {
		b.WriteString("    because:")
		for _, t := range e.Top {
			fmt.Fprintf(&b, " %s%s %+.2f", groupPrefix(t.Group), t.Feature, t.Weight)
		}
		b.WriteString("\n")
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "  rule: %s  rejected: %s (%s)\n", orDash(r.Rule), r.Error, r.Message)
	} else {
		fmt.Fprintf(&b, "  rule: %s  pool: %s  model: %s", r.Rule, r.Pool, r.Model)
		if r.Entry != "" {
			fmt.Fprintf(&b, "  entry: %s (%s)", r.Entry, r.Registered)
		}
		b.WriteString("\n")
	}
	for _, m := range r.Mismatch {
		fmt.Fprintf(&b, "  FAIL %s\n", m)
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// groupPrefix marks the feature groups that do not name themselves.
func groupPrefix(g string) string {
	switch g {
	case "head":
		return "head:"
	case "word", "char", "system", "shape":
		return ""
	}
	return g + ":"
}
