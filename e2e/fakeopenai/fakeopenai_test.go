package fakeopenai

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func post(t *testing.T, s *Server, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer sk-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestJSON(t *testing.T) {
	s := New(Options{Default: Behaviour{Content: "hi there", Usage: Usage{Prompt: 10, Completion: 3, Cached: 4, Reasoning: 1}}})
	defer s.Close()
	resp := post(t, s, `{"model":"gpt-4o-mini","messages":[]}`)
	defer resp.Body.Close()
	var got struct {
		Model   string
		Choices []struct {
			Message      struct{ Role, Content string }
			FinishReason string `json:"finish_reason"`
		}
		Usage struct {
			PromptTokens        int `json:"prompt_tokens"`
			CompletionTokens    int `json:"completion_tokens"`
			TotalTokens         int `json:"total_tokens"`
			PromptTokensDetails struct {
				CachedTokens int `json:"cached_tokens"`
			} `json:"prompt_tokens_details"`
			CompletionTokensDetails struct {
				ReasoningTokens int `json:"reasoning_tokens"`
			} `json:"completion_tokens_details"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Model != "gpt-4o-mini" || got.Choices[0].Message.Content != "hi there" || got.Choices[0].FinishReason != "stop" {
		t.Errorf("unexpected answer %+v", got)
	}
	u := got.Usage
	if u.PromptTokens != 10 || u.CompletionTokens != 3 || u.TotalTokens != 13 || u.PromptTokensDetails.CachedTokens != 4 || u.CompletionTokensDetails.ReasoningTokens != 1 {
		t.Errorf("usage %+v", u)
	}
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].Header.Get("Authorization") != "Bearer sk-test" || reqs[0].Path != "/v1/chat/completions" {
		t.Errorf("recorded %+v", reqs)
	}
}

func TestErrorsAndQueue(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	s.Enqueue(Behaviour{Status: 429, Header: http.Header{"Retry-After": {"1"}}, ErrorCode: "rate_limit_exceeded"})
	s.Script(func(r Request) Behaviour { return Behaviour{Status: 503} })
	tests := []struct {
		status     int
		typ, code  string
		retryAfter string
	}{
		{429, "rate_limit_error", "rate_limit_exceeded", "1"},
		{503, "server_error", "", ""},
	}
	for _, tt := range tests {
		resp := post(t, s, `{"model":"m"}`)
		var body struct {
			Error struct {
				Type string
				Code *string
			}
		}
		json.NewDecoder(resp.Body).Decode(&body) //nolint:errcheck
		resp.Body.Close()
		code := ""
		if body.Error.Code != nil {
			code = *body.Error.Code
		}
		if resp.StatusCode != tt.status || body.Error.Type != tt.typ || code != tt.code || resp.Header.Get("Retry-After") != tt.retryAfter {
			t.Errorf("got %d %q %q %q, want %+v", resp.StatusCode, body.Error.Type, code, resp.Header.Get("Retry-After"), tt)
		}
	}
}

func readEvents(t *testing.T, r io.Reader) ([]string, error) {
	t.Helper()
	var events []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			events = append(events, line)
		}
	}
	return events, sc.Err()
}

func TestStream(t *testing.T) {
	tests := []struct {
		name       string
		b          Behaviour
		body       string
		wantEvents int
		wantErr    bool
	}{
		{"plain", Behaviour{Content: "abcdef", Chunks: 3}, `{"model":"m","stream":true}`, 1 + 3 + 1 + 1, false},
		{"usage", Behaviour{Content: "abcdef", Chunks: 2, Usage: Usage{Prompt: 1}}, `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`, 1 + 2 + 1 + 1 + 1, false},
		{"cut", Behaviour{Content: "abcdef", Chunks: 3, CutAfter: 2}, `{"model":"m","stream":true}`, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{Default: tt.b})
			defer s.Close()
			resp := post(t, s, tt.body)
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Errorf("content-type %q", ct)
			}
			events, err := readEvents(t, resp.Body)
			if (err != nil) != tt.wantErr {
				t.Errorf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("err = %v, want unexpected EOF", err)
			}
			if len(events) != tt.wantEvents {
				t.Fatalf("got %d events %q, want %d", len(events), events, tt.wantEvents)
			}
			if !tt.wantErr && events[len(events)-1] != "[DONE]" {
				t.Errorf("last event %q", events[len(events)-1])
			}
		})
	}
}

func TestModels(t *testing.T) {
	s := New(Options{Models: []string{"a", "b"}})
	defer s.Close()
	resp, err := http.Get(s.URL() + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct{ Data []struct{ ID string } }
	json.NewDecoder(resp.Body).Decode(&list) //nolint:errcheck
	if len(list.Data) != 2 || list.Data[1].ID != "b" {
		t.Errorf("models %+v", list)
	}
}
