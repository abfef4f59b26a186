// Package conversation keeps the Responses API's conversation state, so that
// previous_response_id works whichever backend answered the previous turn
// and whichever replica serves the next, with no sticky sessions.
//
// When a Responses request does not say store: false, the upstream role
// keeps what it served (Capture reads the response object the client
// received, JSON or the stream's response.completed) as a Record: that
// response object and the input items it answered, under Key(tenant, id),
// in the cache tiers (Store: in process, and Redis when configured, shared
// by every replica). The router role resolves a request's
// previous_response_id from the Store and Expands it: the stored input, the
// stored output and the request's own input become one input, and
// previous_response_id goes, so every backend (OpenAI's, which would know
// only the ids it stored itself, and every translated one) gets the whole
// conversation. A Record answers GET and DELETE /v1/responses/{id} too.
//
// Records are tenant-scoped by their key: another tenant's id is simply not
// found. Records live for the configured TTL, and one larger than the
// configured bound is not kept.
package conversation

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/llmproc/llmproc/filter/cache"
)

// Record is one response llmproc served.
type Record struct {
	// Response is the response object as the client received it, output
	// included.
	Response []byte
	// Input is the input items it answered, a JSON array: the request's
	// input with every earlier turn expanded into it.
	Input []byte
}

// ID is the response's id.
func (r Record) ID() string { return gjson.GetBytes(r.Response, "id").Str }

// Output is the response's output items, a JSON array ("[]" when absent).
func (r Record) Output() []byte {
	if o := gjson.GetBytes(r.Response, "output"); o.IsArray() {
		return []byte(o.Raw)
	}
	return []byte("[]")
}

// Size is the record's stored size in bytes, for the bound.
func (r Record) Size() int { return len(r.Response) + len(r.Input) + len(`{"input":,"response":}`) }

// Encode is the record's stored form: {"input":[…],"response":{…}}.
func (r Record) Encode() []byte {
	b := make([]byte, 0, r.Size())
	b = append(b, `{"input":`...)
	b = append(b, r.Input...)
	b = append(b, `,"response":`...)
	b = append(b, r.Response...)
	return append(b, '}')
}

// ErrBadRecord is Decode's error for bytes that are no encoded Record.
var ErrBadRecord = errors.New("conversation: not an encoded record")

// Decode reads an encoded record; its slices alias b.
func Decode(b []byte) (Record, error) {
	if !gjson.ValidBytes(b) {
		return Record{}, ErrBadRecord
	}
	v := gjson.ParseBytes(b)
	in, resp := v.Get("input"), v.Get("response")
	if !in.IsArray() || !resp.IsObject() {
		return Record{}, ErrBadRecord
	}
	return Record{Input: rawOf(b, in), Response: rawOf(b, resp)}, nil
}

// rawOf is r's bytes within b (no copy when gjson gives the offset).
func rawOf(b []byte, r gjson.Result) []byte {
	if r.Index > 0 && r.Index+len(r.Raw) <= len(b) {
		return b[r.Index : r.Index+len(r.Raw)]
	}
	return []byte(r.Raw)
}

// keyDomain keeps record keys apart from the response cache's, which share
// the tiers.
const keyDomain = "llmproc/responses/v1\x00"

// Key is where tenant's response id is kept: a SHA-256 over the tenant and
// the id, so one tenant's ids never find another's records.
func Key(tenant, id string) cache.Key {
	h := sha256.New()
	h.Write([]byte(keyDomain))
	h.Write([]byte(tenant))
	h.Write([]byte{0})
	h.Write([]byte(id))
	var k cache.Key
	h.Sum(k[:0])
	return k
}

// Items returns a Responses request's input as an array of items: a string
// is one user message, an array is itself, an absent or null input none.
func Items(input gjson.Result) ([]byte, error) {
	switch {
	case !input.Exists() || input.Type == gjson.Null:
		return []byte("[]"), nil
	case input.Type == gjson.String:
		b := []byte(`[{"type":"message","role":"user","content":`)
		b = append(b, input.Raw...)
		return append(b, "}]"...), nil
	case input.IsArray():
		return []byte(input.Raw), nil
	}
	return nil, fmt.Errorf("conversation: input is neither a string nor an array")
}

// Expand returns body, a Responses request continuing rec, as one request
// that needs no server-side state: its input is rec's input, rec's output
// items, then body's own input; previous_response_id is removed. Earlier
// instructions are not carried over (as OpenAI does not carry them).
func Expand(body []byte, rec Record) ([]byte, error) {
	own, err := Items(gjson.GetBytes(body, "input"))
	if err != nil {
		return nil, err
	}
	input := make([]byte, 0, len(rec.Input)+len(rec.Response)+len(own))
	input = appendItems(input, rec.Input)
	input = appendItems(input, rec.Output())
	input = appendItems(input, own)
	input = append(input, ']')
	out, err := sjson.SetRawBytes(body, "input", input)
	if err != nil {
		return nil, fmt.Errorf("conversation: %w", err)
	}
	return sjson.DeleteBytes(out, "previous_response_id")
}

// appendItems appends the elements of the JSON array items to the array
// being built in b (opened with '[' when b is empty).
func appendItems(b, items []byte) []byte {
	if len(b) == 0 {
		b = append(b, '[')
	}
	gjson.ParseBytes(items).ForEach(func(_, v gjson.Result) bool {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, v.Raw...)
		return true
	})
	return b
}
