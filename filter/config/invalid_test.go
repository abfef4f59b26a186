package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/invalid/*.err from the current messages")

// TestInvalid parses every testdata/invalid/<case>.yaml and compares the error
// with <case>.err exactly. Run with -update to rewrite the .err files, then
// read them: each line must name its field path and say what to fix.
func TestInvalid(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no test cases")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := Parse(data)
			if err == nil {
				t.Fatalf("Parse succeeded, want an error; got %+v", cfg)
			}
			errFile := strings.TrimSuffix(f, ".yaml") + ".err"
			got := err.Error() + "\n"
			if *update {
				if err := os.WriteFile(errFile, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(errFile)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("error mismatch\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

// TestInvalidReportsEveryProblem checks that one file with several problems
// gets all of them in one error, not just the first.
func TestInvalidReportsEveryProblem(t *testing.T) {
	data := []byte(`
listen: {grpc: "nowhere"}
limits: {max_request_bytes: 10, max_json_depth: 2000, max_answer_buffer_bytes: 1048576, max_buffered_bytes: 1000, max_streams: -1}
backends:
  - name: openai
    schema: openia
    url: "api.openai.com"
    credential: {env: OPENAI_API_KEY, file: /secret}
  - name: openai
    schema: openai
    url: https://api.openai.com
models:
  - name: gpt-4o
    pool: flagship
  - name: mini
    aliases: [gpt-4o]
    pool: cheap
    kind: embeddings
pools:
  - name: cheap
    backends: [{backend: azur}]
routes:
  - name: auto
    match: {model: auto}
    pool: cheapest
`)
	_, err := Parse(data)
	if err == nil {
		t.Fatal("Parse succeeded, want errors")
	}
	want := []string{
		`listen.grpc: want host:port, got "nowhere"`,
		`limits.max_request_bytes: must be between 1024 and 1073741824, got 10`,
		`limits.max_json_depth: must be between 8 and 1024, got 2000`,
		`limits.max_buffered_bytes: must be between limits.max_answer_buffer_bytes (1048576) and 1099511627776, got 1000`,
		`limits.max_streams: must be between 1 and 1048576, got -1`,
		`backends[0].schema: unknown value "openia"`,
		`backends[0].url: want an http or https URL`,
		`backends[0].credential: set env or file, not both`,
		`backends[1].name: duplicate backend name "openai"`,
		`pools[0].backends[0].backend: unknown backend "azur"`,
		`models[0].pool: unknown pool "flagship"`,
		`models[1].aliases[0]: model name "gpt-4o" is already used by models[0].name`,
		`models[1].kind: unknown value "embeddings"`,
		`routes[0].pool: unknown pool "cheapest"`,
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(lines), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
}

// TestDecodeReportsEveryProblem checks the same for problems found while
// decoding: unknown keys, wrong types and bad prices are collected together.
func TestDecodeReportsEveryProblem(t *testing.T) {
	data := []byte(`limits:
  max_request_bytes: lots
  shutdown_grace: soon
backends:
  - name: openai
    urll: https://api.openai.com
models:
  - name: gpt-4o
    price: {input: 0.1234567, output: -1}
`)
	_, err := Parse(data)
	if err == nil {
		t.Fatal("Parse succeeded, want errors")
	}
	want := []string{
		`limits.max_request_bytes: want an integer, got "lots" (line 2)`,
		`limits.shutdown_grace: want a duration like "30s", got "soon" (line 3)`,
		`backends[0]: unknown field "urll" (line 6); known fields are name, schema, url, credential, credential_next, headers, drop_params, reasoning_content, anthropic, azure, vertex, bedrock, compat`,
		`models[0].price.input: price "0.1234567" has more than 6 decimal places (line 9)`,
		`models[0].price.output: want a non-negative decimal like 0.15, got "-1" (line 9)`,
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}
