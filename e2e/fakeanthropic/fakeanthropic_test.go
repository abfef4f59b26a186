package fakeanthropic

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

const okBody = `{"model":"claude-x","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`

func post(t *testing.T, s *Server, body string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+"/v1/messages", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("x-api-key", "sk-ant")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestMessage(t *testing.T) {
	s := New(Options{APIKey: "sk-ant", Default: Behaviour{Content: "hi there", ToolUses: []ToolUse{{ID: "toolu_1", Name: "f", Input: `{"a":1}`}},
		Usage: Usage{Input: 10, Output: 3, CacheRead: 4, CacheWrite: 2}}})
	defer s.Close()
	resp := post(t, s, okBody)
	defer resp.Body.Close()
	var got struct {
		Type, Model string
		StopReason  string `json:"stop_reason"`
		Content     []struct {
			Type, Text, ID, Name string
			Input                json.RawMessage
		}
		Usage map[string]json.RawMessage
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || len(got.Content) != 2 || got.Content[0].Text != "hi there" || string(got.Content[1].Input) != `{"a":1}` || got.StopReason != "tool_use" {
		t.Errorf("unexpected answer %d %+v", resp.StatusCode, got)
	}
	if u := got.Usage; string(u["input_tokens"]) != "10" || string(u["output_tokens"]) != "3" || string(u["cache_read_input_tokens"]) != "4" ||
		string(u["cache_creation_input_tokens"]) != "2" || string(u["cache_creation"]) != `{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":2}` {
		t.Errorf("usage %v", u)
	}
	if reqs := s.Requests(); len(reqs) != 1 || reqs[0].Path != "/v1/messages" || reqs[0].Header.Get("x-api-key") != "sk-ant" {
		t.Errorf("recorded %+v", reqs)
	}
	if Text(s.Requests()[0].Body) != "hi" {
		t.Errorf("Text = %q", Text(s.Requests()[0].Body))
	}
}

func TestRefusals(t *testing.T) {
	s := New(Options{APIKey: "sk-ant"})
	defer s.Close()
	s.Enqueue(Behaviour{Status: 529}, Behaviour{Status: 429, Header: http.Header{"Retry-After": {"2"}}})
	tests := []struct {
		name   string
		body   string
		hdr    []string
		status int
		typ    string
	}{
		{"no version", okBody, []string{"anthropic-version", ""}, 400, "invalid_request_error"},
		{"wrong key", okBody, []string{"x-api-key", "nope"}, 401, "authentication_error"},
		{"no max_tokens", `{"model":"m","messages":[{"role":"user","content":"x"}]}`, nil, 400, "invalid_request_error"},
		{"overloaded", okBody, nil, 529, "overloaded_error"},
		{"rate limited", okBody, nil, 429, "rate_limit_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(t, s, tt.body, tt.hdr...)
			defer resp.Body.Close()
			var e struct {
				Type  string
				Error struct{ Type, Message string }
			}
			json.NewDecoder(resp.Body).Decode(&e) //nolint:errcheck
			if resp.StatusCode != tt.status || e.Type != "error" || e.Error.Type != tt.typ || e.Error.Message == "" {
				t.Errorf("got %d %+v, want %d %s", resp.StatusCode, e, tt.status, tt.typ)
			}
		})
	}
}

func readEvents(r io.Reader) (names []string, err error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			names = append(names, name)
		}
	}
	return names, sc.Err()
}

func TestStream(t *testing.T) {
	tests := []struct {
		name    string
		b       Behaviour
		want    string
		wantErr bool
	}{
		{"text", Behaviour{Content: "a b"}, "message_start content_block_start ping content_block_delta content_block_delta content_block_stop message_delta message_stop", false},
		{"tool", Behaviour{Content: "x", ToolUses: []ToolUse{{ID: "t", Name: "f"}}},
			"message_start content_block_start ping content_block_delta content_block_stop content_block_start content_block_delta content_block_delta content_block_stop message_delta message_stop", false},
		{"tool only", Behaviour{ToolUses: []ToolUse{{ID: "t", Name: "f"}}},
			"message_start content_block_start content_block_delta content_block_delta content_block_stop message_delta message_stop", false},
		{"error event", Behaviour{Content: "x", StreamError: "overloaded_error"}, "message_start content_block_start ping content_block_delta content_block_stop error", false},
		{"cut", Behaviour{Content: "x", CutAfter: 2}, "message_start content_block_start", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{Default: tt.b})
			defer s.Close()
			resp := post(t, s, strings.Replace(okBody, `{"model"`, `{"stream":true,"model"`, 1))
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
				t.Errorf("content-type %q", ct)
			}
			names, err := readEvents(resp.Body)
			if (err != nil) != tt.wantErr || (tt.wantErr && !errors.Is(err, io.ErrUnexpectedEOF)) {
				t.Errorf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got := strings.Join(names, " "); got != tt.want {
				t.Errorf("events\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}
