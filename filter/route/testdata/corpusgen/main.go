// Command corpusgen writes the classifier corpus (testdata/corpus/*.jsonl,
// route-test format) from the hand-written building blocks in this
// directory: task templates per class and language (families), the slot
// pools they draw from, system prompts, earlier turns, tools and
// response_format. It is deterministic (a fixed seed per family), so
//
//	go run ./filter/route/testdata/corpusgen
//
// rewrites the same files. Each family goes whole to one split (train, dev
// or test): the held-out splits hold templates the model never saw, not
// reworded copies of training lines.
//
// Template syntax: {pool} draws from the family language's pool of that name
// (else the shared one), {a|b|c} picks one alternative, {n:2-40} a number
// in that range, {=expr} is filled by the family's own function.
package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// family is one authoring batch: a task template of one class and language.
type family struct {
	lang, class string
	tmpl        []string          // one or more variants of the template
	fn          func(*gen) string // instead of tmpl: builds the text itself
	followup    bool              // only makes sense after earlier turns
	n           int               // instances; 0 means the default
}

type gen struct {
	r    *rand.Rand
	lang string
}

// pools holds the slot fillers: "lang:name" or "*:name".
var pools = map[string][]string{}

func addPools(lang string, m map[string][]string) {
	for k, v := range m {
		pools[lang+":"+k] = append(pools[lang+":"+k], v...)
	}
}

var families []family

func fam(lang, class string, tmpl ...string) {
	families = append(families, family{lang: lang, class: class, tmpl: tmpl})
}

func famFn(lang, class string, fn func(*gen) string) {
	families = append(families, family{lang: lang, class: class, fn: fn})
}

func follow(lang, class string, tmpl ...string) {
	families = append(families, family{lang: lang, class: class, tmpl: tmpl, followup: true})
}

func (g *gen) pick(xs []string) string { return xs[g.r.IntN(len(xs))] }

func (g *gen) pool(name string) string {
	// Pool values are literal text (code, data): never expanded.
	if xs := pools[g.lang+":"+name]; len(xs) > 0 {
		return g.pick(xs)
	}
	if xs := pools["*:"+name]; len(xs) > 0 {
		return g.pick(xs)
	}
	panic("no pool " + g.lang + ":" + name)
}

func (g *gen) num(lo, hi int) int { return lo + g.r.IntN(hi-lo+1) }

// fill expands a template.
func (g *gen) fill(t string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(t, '{')
		if i < 0 {
			b.WriteString(t)
			return b.String()
		}
		// Find the matching close brace (alternatives may nest slots).
		depth, j := 0, i
		for ; j < len(t); j++ {
			if t[j] == '{' {
				depth++
			} else if t[j] == '}' {
				depth--
				if depth == 0 {
					break
				}
			}
		}
		if j == len(t) { // a literal brace (code): copy it
			b.WriteString(t[:i+1])
			t = t[i+1:]
			continue
		}
		b.WriteString(t[:i])
		inner := t[i+1 : j]
		t = t[j+1:]
		switch {
		case strings.HasPrefix(inner, "n:"):
			lo, hi, _ := strings.Cut(inner[2:], "-")
			l, _ := strconv.Atoi(lo)
			h, _ := strconv.Atoi(hi)
			b.WriteString(strconv.Itoa(g.num(l, h)))
		case strings.Contains(inner, "|"):
			b.WriteString(g.fill(g.pick(splitTop(inner))))
		case isName(inner):
			b.WriteString(g.pool(inner))
		default: // braces of code, not a slot
			b.WriteString("{" + g.fill(inner) + "}")
		}
	}
}

// splitTop splits s at the '|' that are not inside braces.
func splitTop(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
		case '|':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c == '_' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Wrappers shared by every class, per language: system prompts, assistant
// replies for earlier turns.
type wrap struct {
	systems []string // generic and persona system prompts
	replies []string // what an assistant said before
}

var wraps = map[string]wrap{}

var toolSets = []string{
	`[{"type":"function","function":{"name":"get_weather","description":"Current weather for a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]`,
	`[{"type":"function","function":{"name":"search_docs","description":"Search the knowledge base","parameters":{"type":"object","properties":{"query":{"type":"string"},"top_k":{"type":"integer"}}}}}]`,
	`[{"type":"function","function":{"name":"run_python","description":"Execute Python code in a sandbox","parameters":{"type":"object","properties":{"code":{"type":"string"}}}}},{"type":"function","function":{"name":"read_file","parameters":{"type":"object","properties":{"path":{"type":"string"}}}}}]`,
	`[{"type":"function","function":{"name":"create_ticket","description":"Open a support ticket","parameters":{"type":"object","properties":{"title":{"type":"string"},"priority":{"type":"string","enum":["low","high"]}}}}}]`,
	`[{"type":"function","function":{"name":"lookup_order","parameters":{"type":"object","properties":{"order_id":{"type":"string"}}}}},{"type":"function","function":{"name":"refund","parameters":{"type":"object","properties":{"order_id":{"type":"string"},"amount":{"type":"number"}}}}}]`,
	`[{"type":"function","function":{"name":"calendar_create","description":"Create a calendar event","parameters":{"type":"object","properties":{"title":{"type":"string"},"start":{"type":"string"},"end":{"type":"string"}}}}}]`,
}

var formats = []string{
	`{"type":"json_object"}`,
	`{"type":"json_schema","json_schema":{"name":"answer","schema":{"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"]}}}`,
	`{"type":"json_schema","json_schema":{"name":"result","strict":true,"schema":{"type":"object","properties":{"items":{"type":"array","items":{"type":"string"}}}}}}`,
}

var models = []string{"auto", "auto", "auto", "gpt-4o-mini", "router", "claude-sonnet-4-5"}

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type row struct {
	Name   string          `json:"name"`
	Body   json.RawMessage `json:"body"`
	Expect struct {
		Class string `json:"class"`
	} `json:"expect"`
}

func seedOf(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// split assigns a family to train, dev or test by its index within its
// (language, class) list: every language and class has held-out families.
func split(idx int) string {
	switch idx % 6 {
	case 2:
		return "dev"
	case 5:
		return "test"
	}
	return "train"
}

const defaultN = 8

func main() {
	out := "filter/route/testdata/corpus"
	if len(os.Args) > 1 {
		out = os.Args[1]
	}
	registerAll()
	// Plain (non-follow-up) first turns per language, to open multi-turn
	// conversations with.
	openers := map[string][]struct{ class, text string }{}
	counter := map[string]int{}
	type inst struct {
		f     family
		idx   int
		split string
	}
	var insts []inst
	for _, f := range families {
		key := f.lang + "/" + f.class
		idx := counter[key]
		counter[key]++
		insts = append(insts, inst{f, idx, split(idx)})
		if !f.followup {
			g := &gen{r: rand.New(rand.NewPCG(seedOf(key+"/open"), uint64(idx))), lang: f.lang}
			openers[f.lang] = append(openers[f.lang], struct{ class, text string }{f.class, g.text(f)})
		}
	}
	files := map[string]*os.File{}
	counts := map[string]map[string]int{}
	langs := map[string]int{}
	for _, s := range []string{"train", "dev", "test"} {
		fh, err := os.Create(filepath.Join(out, s+".jsonl"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer fh.Close()
		files[s] = fh
		counts[s] = map[string]int{}
	}
	for _, in := range insts {
		f := in.f
		name := fmt.Sprintf("%s/%s/%02d", f.lang, f.class, in.idx)
		g := &gen{r: rand.New(rand.NewPCG(seedOf(name), 7)), lang: f.lang}
		n := f.n
		if n == 0 {
			n = defaultN
		}
		w := wraps[f.lang]
		seen := map[string]bool{}
		for k := 0; k < n; k++ {
			var msgs []message
			if g.r.IntN(2) == 0 {
				msgs = append(msgs, message{"system", g.fill(g.pick(w.systems))})
			}
			turns := 0
			if f.followup {
				turns = 1 + g.r.IntN(2)
			} else if g.r.IntN(5) == 0 {
				turns = 1 + g.r.IntN(2)
			}
			for t := 0; t < turns; t++ {
				// An earlier turn of another class: the latest turn
				// changes the task.
				var o struct{ class, text string }
				for {
					o = openers[f.lang][g.r.IntN(len(openers[f.lang]))]
					if o.class != f.class || g.r.IntN(4) == 0 {
						break
					}
				}
				msgs = append(msgs, message{"user", o.text}, message{"assistant", g.fill(g.pick(w.replies))})
			}
			// A few more draws for a latest turn this family has not
			// produced yet (families with few slots repeat in new contexts).
			text := g.text(f)
			for try := 0; try < 6 && seen[text]; try++ {
				text = g.text(f)
			}
			seen[text] = true
			msgs = append(msgs, message{"user", text})
			body := map[string]any{"model": g.pick(models), "messages": msgs}
			switch g.r.IntN(10) {
			case 0, 1:
				body["tools"] = json.RawMessage(g.pick(toolSets))
			case 2:
				body["response_format"] = json.RawMessage(g.pick(formats))
			case 3:
				body["tools"] = json.RawMessage(g.pick(toolSets))
				body["response_format"] = json.RawMessage(g.pick(formats))
			}
			if g.r.IntN(3) == 0 {
				body["stream"] = true
			}
			b, err := json.Marshal(body)
			if err != nil {
				panic(err)
			}
			r := row{Name: fmt.Sprintf("%s#%d", name, k), Body: b}
			r.Expect.Class = f.class
			line, err := json.Marshal(r)
			if err != nil {
				panic(err)
			}
			files[in.split].Write(append(line, '\n'))
			counts[in.split][f.class]++
			langs[f.lang]++
		}
	}
	for _, s := range []string{"train", "dev", "test"} {
		total := 0
		for _, c := range counts[s] {
			total += c
		}
		fmt.Printf("%s: %d %v\n", s, total, counts[s])
	}
	fmt.Println("languages:", langs)
}

// text builds one instance of a family's latest user turn.
func (g *gen) text(f family) string {
	if f.fn != nil {
		return f.fn(g)
	}
	return g.fill(g.pick(f.tmpl))
}

func registerAll() {
	registerShared()
	registerEN()
	registerEN2()
	registerEN3()
	registerEN4()
	registerEN5()
	registerZH()
	registerJA()
	registerKO()
	registerRU()
	registerES()
	registerFR()
	registerDE()
	registerPT()
	registerMore()
	registerMore2()
}
