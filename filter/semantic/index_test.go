package semantic

import (
	"crypto/sha256"
	"testing"
	"time"
)

var t0 = time.Unix(1_780_000_000, 0)

func bucketOf(s string) Bucket { return Bucket(sha256.Sum256([]byte(s))) }

func entryOf(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func rec(text string, stored time.Time) Record {
	return Record{Entry: entryOf(text), RequestID: "req-" + text, Text: text, Vector: Normalize(StandIn(text, 64)), Stored: stored}
}

func vec(text string) []float32 { return Normalize(StandIn(text, 64)) }

func TestIndexSearch(t *testing.T) {
	ix := NewIndex(100, 10, time.Hour)
	b := bucketOf("b")
	for _, s := range []string{"what is your refund policy", "how do I reset my password", "where is my order"} {
		ix.Add(b, rec(s, t0), t0)
	}
	cases := []struct {
		name   string
		bucket Bucket
		query  string
		min    float32
		want   []string
	}{
		{"exact text is similarity 1", b, "what is your refund policy", 0.999, []string{"what is your refund policy"}},
		{"casing and punctuation", b, "What's your refund policy?", 0.7, []string{"what is your refund policy"}},
		{"other bucket sees nothing", bucketOf("c"), "what is your refund policy", 0.1, nil},
		{"best first", b, "where is my refund", 0, []string{"where is my order", "what is your refund policy", "how do I reset my password"}},
		{"threshold 1 only identical", b, "where is my order?", 1.01, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ix.Search(c.bucket, vec(c.query), c.min, 4, t0)
			var texts []string
			for i, m := range got {
				texts = append(texts, m.Text)
				if i > 0 && got[i-1].Similarity < m.Similarity {
					t.Errorf("not best first: %v", got)
				}
				if m.Vector != nil {
					t.Errorf("a match must not alias the index's vectors")
				}
			}
			if len(c.want) == 0 && len(texts) == 0 {
				return
			}
			if len(texts) < len(c.want) || texts[0] != c.want[0] {
				t.Fatalf("got %q, want %q", texts, c.want)
			}
		})
	}
}

func TestIndexTTLAndBounds(t *testing.T) {
	ix := NewIndex(5, 3, time.Minute)
	b := bucketOf("b")
	ix.Add(b, rec("old", t0), t0)
	if got := ix.Search(b, vec("old"), 0.9, 1, t0.Add(2*time.Minute)); len(got) != 0 {
		t.Errorf("expired record served: %v", got)
	}
	ix.Add(b, rec("expired at add", t0.Add(-2*time.Minute)), t0)
	if ix.Len() != 1 {
		t.Errorf("an expired record was added: len %d", ix.Len())
	}
	// Per bucket: the oldest goes first.
	for i, s := range []string{"one", "two", "three", "four"} {
		ix.Add(b, rec(s, t0.Add(time.Duration(i)*time.Second)), t0)
	}
	if got := ix.Search(b, vec("one"), 0.99, 1, t0); len(got) != 0 {
		t.Errorf("bucket bound kept the oldest: %v", got)
	}
	if got := ix.Search(b, vec("four"), 0.99, 1, t0); len(got) != 1 {
		t.Errorf("bucket bound lost the newest")
	}
	// Same entry again replaces, not duplicates.
	ix.Add(b, rec("four", t0.Add(10*time.Second)), t0)
	if ix.Len() != 3 {
		t.Errorf("len %d after re-adding an entry, want 3", ix.Len())
	}
	// Process-wide: the least recently used bucket gives way.
	c, d := bucketOf("c"), bucketOf("d")
	ix.Add(c, rec("c1", t0), t0)
	ix.Add(c, rec("c2", t0), t0)
	ix.Search(b, vec("four"), 0.9, 1, t0) // b used after c
	ix.Add(d, rec("d1", t0), t0)
	if ix.Len() != 5 {
		t.Errorf("len %d, want the bound 5", ix.Len())
	}
	if got := ix.Search(c, vec("c1"), 0.99, 1, t0); len(got) != 0 {
		t.Errorf("the least recently used bucket kept its oldest")
	}
	if got := ix.Search(d, vec("d1"), 0.99, 1, t0); len(got) != 1 {
		t.Errorf("the new record was evicted")
	}
	// Another dims (the model changed): the bucket starts over.
	ix.Add(d, Record{Entry: entryOf("x"), Text: "x", Vector: Normalize(StandIn("x", 32)), Stored: t0}, t0)
	if got := ix.Search(d, Normalize(StandIn("x", 32)), 0.99, 1, t0); len(got) != 1 {
		t.Errorf("a vector of new dims not found")
	}
	if got := ix.Search(d, vec("d1"), 0, 1, t0); len(got) != 0 {
		t.Errorf("a vector of old dims still searched")
	}
}

func TestStandIn(t *testing.T) {
	sim := func(a, b string) float32 { return dot(vec(a), vec(b)) }
	if s := sim("What is your refund policy?", "what is your refund policy"); s < 0.999 {
		t.Errorf("case and punctuation: %.3f, want 1", s)
	}
	if s := sim("What is your refund policy?", "What is your refund polcy?"); s < 0.8 {
		t.Errorf("a typo: %.3f, want ≥ 0.8", s)
	}
	if s := sim("buy a ticket", "purchase a ticket"); s > 0.8 {
		t.Errorf("synonyms: %.3f — the stand-in knows none; if this passes the doc is wrong", s)
	}
	a, b := StandIn("same", 16), StandIn("same", 16)
	for i := range a {
		if a[i] != b[i] || a[i] != float32(int(a[i])) {
			t.Fatalf("not deterministic integer counts: %v %v", a, b)
		}
	}
}
