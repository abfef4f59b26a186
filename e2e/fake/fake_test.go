package fake

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestServerRecordsAndAnswers(t *testing.T) {
	s := New(NewRequest)
	q := NewQueue[Request]("default")
	h := s.Record(func(w http.ResponseWriter, r *http.Request, req Request) {
		b, n := q.Next(req)
		io.WriteString(w, strings.Repeat(b, n)+":"+string(req.Body)) //nolint:errcheck
	})
	if err := s.Start("127.0.0.1:0", h); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || s.URL() != "http://"+s.Addr() {
		t.Errorf("URL %q, Addr %q", s.URL(), s.Addr())
	}
	req, _ := http.NewRequest(http.MethodPut, s.URL()+"/a%2Fb?x=1", strings.NewReader("hi"))
	req.Header.Set("X-Test", "v")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != "default:hi" {
		t.Errorf("answer %q, want %q", got, "default:hi")
	}
	reqs := s.Requests()
	if len(reqs) != 1 {
		t.Fatalf("recorded %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPut || r.Path != "/a%2Fb?x=1" || r.Header.Get("X-Test") != "v" || string(r.Body) != "hi" {
		t.Errorf("recorded %+v", r)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestRecordCustomType(t *testing.T) {
	type rec struct {
		Request
		Len int
	}
	s := New(func(r *http.Request, body []byte) rec { return rec{NewRequest(r, body), len(body)} })
	var seen rec
	h := s.Record(func(_ http.ResponseWriter, _ *http.Request, req rec) { seen = req })
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/p", strings.NewReader("abc")))
	if seen.Len != 3 || seen.Path != "/p" || string(seen.Body) != "abc" {
		t.Errorf("answer saw %+v", seen)
	}
	if diff := cmp.Diff([]rec{seen}, s.Requests()); diff != "" {
		t.Errorf("Requests (-want +got):\n%s", diff)
	}
}

func TestQueueOrder(t *testing.T) {
	q := NewQueue[string]("def")
	next := func(req string) string {
		b, n := q.Next(req)
		return b + "#" + string(rune('0'+n))
	}
	var got []string
	got = append(got, next("a"))
	q.Enqueue("q1", "q2")
	q.Script(func(req string) string { return "script:" + req })
	got = append(got, next("b"), next("c"), next("d"))
	q.Script(nil)
	got = append(got, next("e"))
	want := []string{"def#1", "q1#2", "q2#3", "script:d#4", "def#5"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("behaviours (-want +got):\n%s", diff)
	}
}

func TestQueueConcurrent(t *testing.T) {
	q := NewQueue[int](0)
	const n = 50
	for i := range n {
		q.Enqueue(i + 1)
	}
	var wg sync.WaitGroup
	seen := make([]bool, n+1)
	var mu sync.Mutex
	for range n {
		wg.Go(func() {
			b, _ := q.Next(0)
			mu.Lock()
			seen[b] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	for i := 1; i <= n; i++ {
		if !seen[i] {
			t.Errorf("behaviour %d never taken", i)
		}
	}
}

func TestCloseUnstarted(t *testing.T) {
	if err := New(NewRequest).Close(); err != nil {
		t.Errorf("Close before Start: %v", err)
	}
}

func TestStartError(t *testing.T) {
	s := New(NewRequest)
	if err := s.Start("256.0.0.1:0", http.NotFoundHandler()); err == nil {
		s.Close()
		t.Fatal("Start on a bad address succeeded")
	}
}

func TestMust(t *testing.T) {
	if got := Must(7, nil); got != 7 {
		t.Errorf("Must = %d", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("Must did not panic on an error")
		}
	}()
	Must(0, io.EOF)
}

func TestSplit(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want []string
	}{
		{"Hello from fake.", 0, []string{"Hello", " from", " fake."}},
		{"one", 0, []string{"one"}},
		{"", 0, []string{""}},
		{"abcdef", 3, []string{"ab", "cd", "ef"}},
		{"abc", 5, []string{"a", "b", "c"}},
		{"héllo", 2, []string{"hé", "llo"}},
		{"", 2, []string{""}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, Split(tt.s, tt.n)); diff != "" {
			t.Errorf("Split(%q, %d) (-want +got):\n%s", tt.s, tt.n, diff)
		}
	}
}
