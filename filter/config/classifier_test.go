package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmproc/llmproc/filter/route"
)

// sqlExamples writes a labelled file teaching a custom class, sql, beside
// the built-in ones.
func sqlExamples(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	add := func(class, text string) {
		body, _ := json.Marshal(map[string]any{"model": "auto", "messages": []any{map[string]string{"role": "user", "content": text}}})
		line, _ := json.Marshal(map[string]any{"name": class, "body": json.RawMessage(body), "expect": map[string]string{"class": class}})
		b.Write(line)
		b.WriteByte('\n')
	}
	tables := []string{"orders", "customers", "invoices", "events", "payments", "shipments"}
	asks := []string{
		"Write a SQL query that counts %s per month.", "Give me a Postgres query joining %s with users.",
		"Which index speeds up this SELECT on %s?", "SQL: delete duplicate rows from %s.",
		"Write a window function over %s ranking by amount.", "How do I pivot %s by status in SQL?",
	}
	for _, a := range asks {
		for _, tb := range tables {
			add("sql", fmt.Sprintf(a, tb))
		}
	}
	for _, s := range []string{"Write a Python function that reverses a string.", "Fix this Go loop: for i := 0; i < n; i-- {}", "Write a bash script that renames files."} {
		add("code", s)
	}
	for _, s := range []string{"Write a haiku about the sea.", "Write a short story about a lost key."} {
		add("creative", s)
	}
	for _, s := range []string{"Hi, how are you?", "Thanks a lot!"} {
		add("chat", s)
	}
	p := filepath.Join(t.TempDir(), "examples.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const classifierBase = `
backends:
  - {name: openai, schema: openai, url: https://api.openai.com}
models:
  - {name: gpt-4o-mini, pool: cheap}
pools:
  - {name: cheap, backends: [{backend: openai}]}
  - {name: db, backends: [{backend: openai, model: gpt-4.1}]}
`

func TestClassifierExamples(t *testing.T) {
	ex := sqlExamples(t)
	cfg, err := Parse([]byte(classifierBase + `
routing:
  classifier: {examples: ` + ex + `}
routes:
  - {name: sql, match: {model: auto, when: 'class == "sql" && class_confidence > 0.4'}, pool: db}
  - {name: rest, match: {model: auto}, pool: cheap}
`))
	if err != nil {
		t.Fatal(err)
	}
	if files := cfg.CredentialFiles(); len(files) != 1 || files[0] != ex {
		t.Errorf("watched files %v, want the examples file (a change reloads)", files)
	}
	rt, err := Topology(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := rt.Classifier.ClassNames(); len(got) != 6 || got[5] != "sql" {
		t.Fatalf("classes %v, want the built-in five and sql", got)
	}
	for _, tt := range []struct{ text, class, pool string }{
		{"Write a SQL query that sums refunds per week.", "sql", "db"},
		{"Write a limerick about a cat.", "creative", "cheap"},
	} {
		body, _ := json.Marshal(map[string]any{"model": "auto", "messages": []any{map[string]string{"role": "user", "content": tt.text}}})
		f, err := rt.Classifier.Features(body)
		if err != nil {
			t.Fatal(err)
		}
		d, err := rt.Decide(&f)
		if err != nil {
			t.Fatal(err)
		}
		if string(f.Class) != tt.class || d.Pool.Name != tt.pool {
			t.Errorf("%q: class %s (%.2f), pool %s; want %s, %s", tt.text, f.Class, f.Confidence, d.Pool.Name, tt.class, tt.pool)
		}
	}
}

// TestClassifierClassNames: a rule naming a class the classifier cannot
// choose is a config error, for the model and for the keywords.
func TestClassifierClassNames(t *testing.T) {
	ex := sqlExamples(t)
	for _, tt := range []struct{ routing, when, want string }{
		{"", `class == "legal"`, `routes[0].match.when: class "legal" is not a class of the classifier (code, reasoning, extraction, creative, chat)`},
		{"{kind: keywords}", `class in ["code", "sql"]`, `routes[0].match.when: class "sql" is not a class of the classifier`},
		{"{examples: " + ex + "}", `"legal" == class || class == "sql"`, `routes[0].match.when: class "legal" is not a class of the classifier (code, reasoning, extraction, creative, chat, sql)`},
		{"{examples: " + ex + "}", `class == "sql"`, ""},
		{"", `class != ""`, ""},
		{"{examples: /nonexistent/x.jsonl}", `class == "code"`, "routing.classifier.examples: open /nonexistent/x.jsonl"},
	} {
		src := classifierBase + "routes:\n  - {name: r, match: {model: auto, when: '" + tt.when + "'}, pool: cheap}\n"
		if tt.routing != "" {
			src += "routing:\n  classifier: " + tt.routing + "\n"
		}
		cfg, err := Parse([]byte(src))
		if err != nil {
			t.Fatalf("%s: %v", tt.when, err)
		}
		_, err = Topology(cfg)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.when, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v, want %q", tt.when, err, tt.want)
		}
	}
}

func TestClassifierKind(t *testing.T) {
	for kind, want := range map[string]bool{"": true, "model": true, "keywords": false} {
		src := classifierBase + "routes:\n  - {name: r, match: {model: auto}, pool: cheap}\n"
		if kind != "" {
			src += "routing:\n  classifier: {kind: " + kind + "}\n"
		}
		cfg, err := Parse([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		rt, err := Topology(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := rt.Classifier.Model() != nil; got != want {
			t.Errorf("kind %q: model %v, want %v", kind, got, want)
		}
		if kind != "keywords" && rt.Classifier.Model() != route.ShippedModel() {
			t.Errorf("kind %q: not the shipped model", kind)
		}
	}
}
