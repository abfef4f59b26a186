package cache

import (
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// sameKeyBodies are bodies whose keys Doc must compute as the reference
// does: escapes, surrogates, duplicates, numbers, nesting, every API's
// latest user turn.
var sameKeyBodies = []string{
	baseBody,
	`{}`,
	` {"a" : [ 1 , 2.50e+1 , -0.0 , {"z":null,"y":true,"x":false} ] } `,
	`{"a":1,"a":2,"b":{"a":[],"a":{}}}`,
	`{"x":"\ud800","y":"\ud83d\ude00","z":"\ud800\u0041","w":"\ufffd","v":"\ufffd\n"}`,
	`{"k\u00e9y":"caf\u00e9","k\"":"a\\b\/c\b\f\n\r\t"}`,
	"{\"raw\":\"\xff\xfe invalid utf-8\",\"e\":\"\xff\\u0041\"}",
	`{"stream":true,"stream_options":{"include_usage":true},"s":{"stream":1}}`,
	`{"model":"m","messages":[{"role":"user","content":"Hi, what's   your refund policy?"}]}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"Hello THERE, please"},{"type":"image_url","image_url":{"url":"u"}},{"type":"text","text":"Thanks!"}]}]}`,
	`{"messages":[{"role":"user","content":"What’s <this> & \u2028 that \ufffd?"}]}`,
	"{\"messages\":[{\"role\":\"user\",\"content\":\"bad \xff byte, please\"}]}",
	`{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}`,
	`{"messages":[{"role":"user","content":"first"}],"messages":[{"role":"user","content":"second"}]}`,
	`{"messages":[{"role":"user","role":"x","content":"first","content":"second"}]}`,
	`{"input":"Hi there, what's the time?"}`,
	`{"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"Um, what is 2+2?"}]}]}`,
	`{"input":[{"role":"user","content":"Plain please"}]}`,
	`{"contents":[{"parts":[{"text":"Hello, how are you?"},{"text":"x","type":""},{"text":"y","type":1}]}]}`,
	`{"contents":[{"role":"user","parts":[{"text":"Tell me a joke, please."}]}]}`,
	`{"messages":[{"role":"user","content":"x"}],"stream":true,"messages2":1}`,
	`{"a":[[[[[[{"b":[[["c"]]]}]]]]]]}`,
}

var apis = []string{APIChat, APIMessages, APIResponses, APIGemini, ""}

// checkSameKeys fails unless Doc's keys of body equal the reference's.
func checkSameKeys(t *testing.T, body []byte) {
	t.Helper()
	for _, in := range []KeyInput{baseInput(), {Tenant: "t", Group: "g", Endpoint: "/e", Model: "m"}} {
		in.Body = body
		want, werr := refKeyOf(in, keyVersion)
		got, gerr := KeyOf(in)
		if (werr == nil) != (gerr == nil) || got != want {
			t.Fatalf("KeyOf(%q) = %x, %v; the reference gives %x, %v", body, got, gerr, want, werr)
		}
		if werr != nil {
			return
		}
		for _, api := range apis {
			wk, wok, _ := refNormalizedKeyOf(in, api)
			gk, gok, gerr := NormalizedKeyOf(in, api)
			if gerr != nil || wok != gok || wk != gk {
				t.Fatalf("NormalizedKeyOf(%q, %q) = %x, %v, %v; the reference gives %x, %v", body, api, gk, gok, gerr, wk, wok)
			}
		}
	}
}

func TestSameKeys(t *testing.T) {
	for _, b := range sameKeyBodies {
		checkSameKeys(t, []byte(b))
	}
	checkSameKeys(t, requestOfSize(64<<10))
	for _, b := range []string{``, ` `, `[]`, `"x"`, `1`, `null`, `{"a":}`, `{"a":1`, `{"a":1}x`, "{\"a\":\"\x00\"}",
		`{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":1e}`, `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":tru}`, `{,}`, `{"a":1,}`, `[1,]`, `{"a" 1}`} {
		checkSameKeys(t, []byte(b))
	}
}

// The keys are pinned: a change of the canonical form must change
// keyVersion, so that no replica reads another's entries as its own.
func TestKeyGolden(t *testing.T) {
	in := baseInput()
	k, err := KeyOf(in)
	if err != nil {
		t.Fatal(err)
	}
	nk, ok, err := NormalizedKeyOf(in, APIChat)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	for _, c := range []struct{ got, want string }{
		{hex.EncodeToString(k[:]), "3c10dd6b7b2073c7af931ebf15841859619c2ed138521ae86bb973582a287477"},
		{hex.EncodeToString(nk[:]), "457e785220c643b850aaacafeb582e5d9903cdcf883c21ad618a1141a7fd6990"},
	} {
		if c.got != c.want {
			t.Errorf("key %s, want %s", c.got, c.want)
		}
	}
}

func TestValue(t *testing.T) {
	d, err := Parse([]byte(`{"a":[1,"x\n",{"b":null}],"a":2,"k\u0065y":"v"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Release()
	r := d.Root()
	a := r.Get("a")
	if !a.IsArray() || a.Len() != 3 || a.Index(1).Str() != "x\n" || string(a.Index(0).Raw()) != "1" || a.Index(3).Exists() {
		t.Errorf("a = %s", a.Raw())
	}
	if !a.Index(2).Get("b").Exists() || a.Index(2).Get("c").Exists() || r.Get("key").Str() != "v" || r.Len() != 3 {
		t.Error("Get")
	}
	var keys []string
	r.Each(func(k string, _ Value) bool { keys = append(keys, k); return true })
	if strings.Join(keys, ",") != "a,a,key" {
		t.Errorf("Each keys %v", keys)
	}
	// KeyWith equals the key of the rewritten body.
	in := baseInput()
	in.Body = []byte(`{"m":[{"c":"x"},{"c":[1,2]}]}`)
	want, _ := KeyOf(KeyInput{Tenant: in.Tenant, ClientSchema: in.ClientSchema, Endpoint: in.Endpoint, Pool: in.Pool, Model: in.Model,
		Body: []byte(`{"m":[{"c":"x"},{"c":""}]}`)})
	d2, _ := Parse(in.Body)
	if got := d2.KeyWith(in, Sub{At: d2.Root().Get("m").Index(1).Get("c"), Text: ""}); got != want {
		t.Error("KeyWith differs from the key of the rewritten body")
	}
}

// FuzzSameKeys holds Doc's keys to the reference's on any input.
func FuzzSameKeys(f *testing.F) {
	for _, b := range sameKeyBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkSameKeys(t, body)
		if d, err := Parse(body); err == nil {
			if !gjson.ValidBytes(body) {
				t.Fatal("Parse accepted what gjson refuses")
			}
			d.Release()
		} else if gjson.ValidBytes(body) && gjson.ParseBytes(body).IsObject() {
			t.Fatal("Parse refused a JSON object")
		}
	})
}

// randomJSON writes a random JSON object shaped like a request (messages,
// contents, input, nested values) with the spellings keys care about:
// escapes, surrogates, invalid UTF-8, duplicate keys, number spellings.
func randomJSON(r *rand.Rand) []byte {
	strs := []string{`"user"`, `"text"`, `"input_text"`, `"message"`, `"content"`, `"Hi, what's up?"`, `"WHAT IS 2+2"`,
		`"\ud800"`, `"\ud83d\ude00"`, `"\u00e9t\u00e9"`, `"a\\b\"c\n"`, "\"\xff\"", `"\ufffd"`, `"Please, don't."`, `""`, `"<&>\u2028"`,
		`"’quote’ «x»"`, `"Straße ﬁ x²"`, "\"`code`\"", `"1.0e3"`}
	keys := []string{`"role"`, `"content"`, `"text"`, `"type"`, `"parts"`, `"messages"`, `"input"`, `"contents"`, `"stream"`, `"a"`, `"k\u0065y"`, `"b"`}
	nums := []string{"0", "-0", "1.50", "15e-1", "0.0001e+4", "123456789012345678901234567890", "1E400", "-2"}
	var val func(depth int) string
	val = func(depth int) string {
		switch n := r.IntN(10); {
		case n < 3:
			return strs[r.IntN(len(strs))]
		case n < 4:
			return nums[r.IntN(len(nums))]
		case n < 5:
			return [...]string{"true", "false", "null"}[r.IntN(3)]
		case n < 7 && depth < 5:
			parts := make([]string, r.IntN(4))
			for i := range parts {
				parts[i] = val(depth + 1)
			}
			return " [" + strings.Join(parts, ", ") + "]"
		case depth < 5:
			parts := make([]string, r.IntN(5))
			for i := range parts {
				parts[i] = keys[r.IntN(len(keys))] + ":" + val(depth+1)
			}
			return "{" + strings.Join(parts, ",") + "}\n"
		}
		return strs[r.IntN(len(strs))]
	}
	if r.IntN(2) == 0 { // a request with a latest user turn, in some API's shape
		turn := func() string {
			parts := make([]string, r.IntN(3)+1)
			for i := range parts {
				parts[i] = `{"type":` + [...]string{`"text"`, `"input_text"`, `"image_url"`, `1`}[r.IntN(4)] + `,"text":` + strs[r.IntN(len(strs))] + `}`
				if r.IntN(4) == 0 {
					parts[i] = `{"text":` + strs[r.IntN(len(strs))] + `}`
				}
			}
			if r.IntN(2) == 0 {
				return strs[r.IntN(len(strs))]
			}
			return "[" + strings.Join(parts, ",") + "]"
		}
		role := [...]string{`"user"`, `"user"`, `"assistant"`, `1`}[r.IntN(4)]
		msg := `{"role":` + role + `,"content":` + turn() + `,"parts":` + turn() + `}`
		if r.IntN(3) == 0 {
			msg = `{"type":"message","content":` + turn() + `,"role":` + role + `}`
		}
		list := [...]string{`"messages"`, `"input"`, `"contents"`}[r.IntN(3)]
		return []byte(`{"model":"m",` + list + `:[{"role":"system","content":"x"},` + msg + `],"a":` + val(2) + `}`)
	}
	var b strings.Builder
	b.WriteString("{")
	for i := range r.IntN(4) + 1 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(keys[r.IntN(len(keys))] + ":" + val(0))
	}
	b.WriteString("}")
	return []byte(b.String())
}

// FuzzSameKeysJSON is FuzzSameKeys on random request-shaped JSON.
func FuzzSameKeysJSON(f *testing.F) {
	for i := range uint64(8) {
		f.Add(i)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		for range 20 {
			checkSameKeys(t, randomJSON(r))
		}
	})
}

func TestSameKeysRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		checkSameKeys(t, randomJSON(r))
	}
}
