// Package apierr is llmproc's one error type. Every failure a client can see is
// an *Error carrying an HTTP status and an OpenAI error type and code; the
// extproc package turns it into an ImmediateResponse in exactly one place.
package apierr

import (
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"
)

// OpenAI error types.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeAuthentication = "authentication_error"
	TypeRateLimit      = "rate_limit_error"
	TypeServer         = "server_error"
	TypeUpstream       = "upstream_error"
)

// Error is an OpenAI-style API error.
type Error struct {
	Status  int    // HTTP status sent to the client
	Type    string // OpenAI error.type
	Code    string // OpenAI error.code; "" renders as null
	Param   string // OpenAI error.param; "" renders as null
	Message string
	Err     error // cause, never shown to clients
	// RetryAfter, when positive, is sent as the retry-after header (whole
	// seconds, rounded up) so clients and Envoy's rate-limited back-off wait.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %s: %v", e.Status, e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// JSON renders {"error":{"message","type","param","code"}} as OpenAI does.
func (e *Error) JSON() []byte {
	b := make([]byte, 0, 96+len(e.Message))
	b = append(b, `{"error":{"message":`...)
	b = appendString(b, e.Message)
	b = append(b, `,"type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"param":`...)
	b = appendNullable(b, e.Param)
	b = append(b, `,"code":`...)
	b = appendNullable(b, e.Code)
	return append(b, "}}"...)
}

func appendNullable(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

// appendString appends s as a JSON string. strconv.Quote is not JSON: it
// writes \x00, \v and \xff escapes that JSON parsers reject, and messages can
// carry provider or client bytes. Control characters and DEL become \u00XX,
// invalid UTF-8 becomes U+FFFD, and U+2028/U+2029 are escaped for JavaScript.
// AppendJSONString appends s as a JSON string literal: control characters
// escaped, invalid UTF-8 replaced by U+FFFD, so the result is always valid.
func AppendJSONString(b []byte, s string) []byte { return appendString(b, s) }

func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < 0x7f {
			b = append(b, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, `\u202`...)
			b = append(b, hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// New builds an Error.
func New(status int, typ, code, format string, args ...any) *Error {
	return &Error{Status: status, Type: typ, Code: code, Message: fmt.Sprintf(format, args...)}
}

// BadRequest is a 400 invalid_request_error.
func BadRequest(code, format string, args ...any) *Error {
	return New(http.StatusBadRequest, TypeInvalidRequest, code, format, args...)
}

// Internal is a 500 whose cause is kept for logs but not shown.
func Internal(err error) *Error {
	return &Error{Status: http.StatusInternalServerError, Type: TypeServer, Code: "internal_error",
		Message: "llmproc could not process the request", Err: err}
}

// From returns err as an *Error, wrapping anything else as Internal.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Internal(err)
}

// TypeForStatus picks the OpenAI error type that goes with an HTTP status.
func TypeForStatus(status int) string {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return TypeAuthentication
	case status == http.StatusTooManyRequests:
		return TypeRateLimit
	case status >= 500:
		return TypeServer
	default:
		return TypeInvalidRequest
	}
}
