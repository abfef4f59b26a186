// Package apierr is llmproc's one error type. Every failure a client can see is
// an *Error carrying an HTTP status and an OpenAI error type and code; the
// extproc package turns it into an ImmediateResponse in exactly one place.
package apierr

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
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
	b = strconv.AppendQuote(b, e.Message)
	b = append(b, `,"type":`...)
	b = strconv.AppendQuote(b, e.Type)
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
	return strconv.AppendQuote(b, s)
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
