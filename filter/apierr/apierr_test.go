package apierr

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestJSONShape(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"empty param and code are null",
			&Error{Status: 400, Type: TypeInvalidRequest, Message: "bad"},
			`{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}`},
		{"param and code set",
			&Error{Status: 400, Type: TypeInvalidRequest, Param: "messages", Code: "invalid_json", Message: "bad"},
			`{"error":{"message":"bad","type":"invalid_request_error","param":"messages","code":"invalid_json"}}`},
		{"quotes and backslashes",
			&Error{Type: TypeServer, Message: `say "hi" \ bye`},
			`{"error":{"message":"say \"hi\" \\ bye","type":"server_error","param":null,"code":null}}`},
		{"newlines and tabs",
			&Error{Type: TypeServer, Message: "a\nb\r\tc"},
			`{"error":{"message":"a\nb\r\tc","type":"server_error","param":null,"code":null}}`},
		{"unicode kept",
			&Error{Type: TypeServer, Message: "modèle 模型 🚀"},
			`{"error":{"message":"modèle 模型 🚀","type":"server_error","param":null,"code":null}}`},
		{"control characters escaped as \\u",
			&Error{Type: TypeServer, Message: "a\x00b\x01c\x7fd\ve"},
			`{"error":{"message":"a\u0000b\u0001c\u007fd\u000be","type":"server_error","param":null,"code":null}}`},
		{"invalid UTF-8 becomes U+FFFD",
			&Error{Type: TypeServer, Message: "a\xffb"},
			`{"error":{"message":"a\ufffdb","type":"server_error","param":null,"code":null}}`},
		{"line separators escaped",
			&Error{Type: TypeServer, Message: "a\u2028b\u2029c"},
			`{"error":{"message":"a\u2028b\u2029c","type":"server_error","param":null,"code":null}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(tt.err.JSON())
			if got != tt.want {
				t.Errorf("JSON()\n got %s\nwant %s", got, tt.want)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("not valid JSON: %s", got)
			}
		})
	}
}

// openAIError is the wire shape; pointers tell null from "".
type openAIError struct {
	Error struct {
		Message *string `json:"message"`
		Type    *string `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

// decode checks that b is exactly {"error":{message,type,param,code}} and
// returns it.
func decode(t *testing.T, b []byte) openAIError {
	t.Helper()
	var raw map[string]map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("invalid JSON %q: %v", b, err)
	}
	if len(raw) != 1 || raw["error"] == nil {
		t.Fatalf("want only an error object, got %s", b)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := raw["error"][k]; !ok {
			t.Fatalf("error.%s missing in %s", k, b)
		}
	}
	if len(raw["error"]) != 4 {
		t.Fatalf("unexpected fields in %s", b)
	}
	var e openAIError
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("wrong field types in %s: %v", b, err)
	}
	if e.Error.Message == nil || e.Error.Type == nil {
		t.Fatalf("message and type must be strings: %s", b)
	}
	return e
}

func FuzzJSON(f *testing.F) {
	for _, s := range []string{"", "plain", `"quoted"`, "a\\b", "new\nline", "\x00\x1f\x7f", "\xff\xfe", "ü 模 🚀", "\u2028", "</script>"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, msg, code string) {
		e := &Error{Status: 400, Type: TypeInvalidRequest, Code: code, Param: msg, Message: msg}
		got := decode(t, e.JSON())
		want := string([]rune(msg)) // each invalid byte becomes U+FFFD
		if *got.Error.Message != want {
			t.Errorf("message %q round-tripped as %q", msg, *got.Error.Message)
		}
		if utf8.ValidString(msg) && *got.Error.Message != msg {
			t.Errorf("valid UTF-8 message changed")
		}
		if (code == "") != (got.Error.Code == nil) {
			t.Errorf("code %q decoded as %v", code, got.Error.Code)
		}
		if got.Error.Code != nil && *got.Error.Code != string([]rune(code)) {
			t.Errorf("code %q round-tripped as %q", code, *got.Error.Code)
		}
	})
}

func TestFrom(t *testing.T) {
	apiErr := BadRequest("invalid_json", "bad body")
	tests := []struct {
		name       string
		err        error
		wantSame   *Error // nil: expect a fresh Internal
		wantStatus int
		wantType   string
		wantCode   string
	}{
		{"itself", apiErr, apiErr, 400, TypeInvalidRequest, "invalid_json"},
		{"wrapped once", fmt.Errorf("router: %w", apiErr), apiErr, 400, TypeInvalidRequest, "invalid_json"},
		{"wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", apiErr)), apiErr, 400, TypeInvalidRequest, "invalid_json"},
		{"joined", errors.Join(io.EOF, apiErr), apiErr, 400, TypeInvalidRequest, "invalid_json"},
		{"plain error", errors.New("dial tcp 10.0.0.7:443: secret-token-xyz"), nil, 500, TypeServer, "internal_error"},
		{"wrapped plain error", fmt.Errorf("reading secret-token-xyz: %w", io.ErrUnexpectedEOF), nil, 500, TypeServer, "internal_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := From(tt.err)
			if tt.wantSame != nil && got != tt.wantSame {
				t.Errorf("From returned %p, want the wrapped %p", got, tt.wantSame)
			}
			if got.Status != tt.wantStatus || got.Type != tt.wantType || got.Code != tt.wantCode {
				t.Errorf("got %d %s %s, want %d %s %s", got.Status, got.Type, got.Code, tt.wantStatus, tt.wantType, tt.wantCode)
			}
			if tt.wantSame == nil {
				if !errors.Is(got, tt.err) {
					t.Errorf("cause not kept for logs: %v", got.Err)
				}
				body := string(got.JSON())
				if strings.Contains(body, "secret-token-xyz") || strings.Contains(body, "10.0.0.7") {
					t.Errorf("cause leaked to the client: %s", body)
				}
				decode(t, got.JSON())
			}
		})
	}
}

func TestTypeForStatus(t *testing.T) {
	tests := []struct {
		status int
		want   string
	}{
		{400, TypeInvalidRequest},
		{401, TypeAuthentication},
		{403, TypeAuthentication},
		{404, TypeInvalidRequest},
		{413, TypeInvalidRequest},
		{429, TypeRateLimit},
		{500, TypeServer},
		{502, TypeServer},
		{503, TypeServer},
	}
	for _, tt := range tests {
		if got := TypeForStatus(tt.status); got != tt.want {
			t.Errorf("TypeForStatus(%d) = %s, want %s", tt.status, got, tt.want)
		}
	}
}

func TestErrorString(t *testing.T) {
	cause := errors.New("boom")
	tests := []struct {
		err  *Error
		want string
	}{
		{BadRequest("invalid_json", "bad %s", "body"), "400 invalid_json: bad body"},
		{Internal(cause), "500 internal_error: llmproc could not process the request: boom"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	if !errors.Is(Internal(cause), cause) {
		t.Error("Unwrap does not reach the cause")
	}
}

func BenchmarkJSON(b *testing.B) {
	e := BadRequest("invalid_json", "We could not parse the JSON body of your request. The request body must be valid JSON.")
	b.ReportAllocs()
	for b.Loop() {
		_ = e.JSON()
	}
}
