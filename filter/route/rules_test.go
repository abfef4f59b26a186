package route

import (
	"strings"
	"testing"
)

func TestCompileErrors(t *testing.T) {
	env, err := NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ expr, want string }{
		{`clas == "code"`, "undeclared reference to 'clas'"},
		{`input_tokens > "big"`, "no matching overload"},
		{`class`, "a condition must be a bool"},
		{`class == `, "Syntax error"},
		{`headers.x == 1`, "no matching overload"},
	} {
		_, err := env.Compile(tt.expr)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Compile(%q) = %v, want an error containing %q", tt.expr, err, tt.want)
		}
	}
}

func TestConditionEval(t *testing.T) {
	env, err := NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	f := &Features{
		Model: "auto", Explicit: false, Client: "openai", EstimatedInputTokens: 1200, Messages: 3,
		SystemChars: 40, Tools: true, Stream: true, ResponseFormat: "json_object", MaxTokens: 256,
		Tenant: "acme", User: "u1", Headers: map[string]string{"x-team": "search", "x-tier": ""},
		Class: ClassCode, Signals: []string{"code:fence", "code:func "},
	}
	for _, tt := range []struct {
		expr string
		want bool
	}{
		{`class == "code"`, true},
		{`class == "code" && input_tokens > 1000 && !images`, true},
		{`input_tokens >= 4000 || messages > 10`, false},
		{`tools && response_format == "json_object" && stream && max_tokens == 256`, true},
		{`tenant in ["acme", "globex"] && user == "u1"`, true},
		{`headers["x-team"] == "search" && headers["x-tier"] == ""`, true},
		{`signals.exists(s, s.startsWith("code:fence"))`, true},
		{`!explicit && model == "auto" && client == "openai" && system_chars < 100`, true},
	} {
		c, err := env.Compile(tt.expr)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tt.expr, err)
		}
		got, err := c.Eval(f)
		if err != nil || got != tt.want {
			t.Errorf("%q = %v, %v; want %v", tt.expr, got, err, tt.want)
		}
	}
	// A missing map key is an evaluation error, which callers treat as no match.
	c, _ := env.Compile(`headers["x-missing"] == "a"`)
	if _, err := c.Eval(f); err == nil {
		t.Error("missing header key: want an evaluation error")
	}
	// Nil collections evaluate as empty ones.
	c, _ = env.Compile(`size(signals) == 0 && size(headers) == 0`)
	if ok, err := c.Eval(&Features{}); !ok || err != nil {
		t.Errorf("empty features: %v, %v", ok, err)
	}
}

func TestFeaturesUserAndAnthropicSystem(t *testing.T) {
	c := NewClassifier(ClassifierConfig{Kind: KindKeywords})
	f, err := c.Features([]byte(`{"model":"m","system":[{"type":"text","text":"You write Go."}],"metadata":{"user_id":"u7"},"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if f.User != "u7" || f.SystemChars != len("You write Go.") {
		t.Errorf("user %q system chars %d", f.User, f.SystemChars)
	}
	f, _ = c.Features([]byte(`{"model":"m","user":"u1","messages":[{"role":"user","content":"hi"}]}`))
	if f.User != "u1" {
		t.Errorf("user %q", f.User)
	}
}

func TestHeaderKeys(t *testing.T) {
	env, err := NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	c, err := env.Compile(`headers["X-Team"] == "a" || headers['x-tier'] == "b" || headers.x_debug == "1" || "x-other" in headers`)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.HeaderKeys(), ","); got != "x-team,x-tier,x_debug" {
		t.Errorf("HeaderKeys = %q", got)
	}
}
