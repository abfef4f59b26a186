package status

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configures a Page.
type Options struct {
	// Gatherer is the registry llmproc's metrics are on.
	Gatherer prometheus.Gatherer
	// Budgets are the budgets the engine was built with (at start; a
	// reload does not change them); Shared is set when their counters are
	// in Redis (budget_store.redis), shared by every replica.
	Budgets []BudgetDef
	Shared  bool
	// Tenants lists the tenant-scoped budgets' top counters from the
	// budget store, at most top of each (nil: not listed). It is called at
	// most once per tenantsEvery whatever the number of viewers, within
	// tenantsTimeout.
	Tenants func(ctx context.Context, top int) []TenantBudget
	// TopTenants is how many tenants a budget lists (10 when 0).
	TopTenants int
	// Started is the process start; Now the clock (time.Now when nil).
	Started time.Time
	Now     func() time.Time
	// Poll is how often the page's script fetches /status.json (5s when 0).
	Poll time.Duration
}

// Page serves the status page and its JSON.
type Page struct {
	o Options

	mu      sync.Mutex
	samples []sample // attempt counters at earlier snapshots, oldest first

	tmu       sync.Mutex // held while the tenants are listed: one listing at a time
	tenants   []TenantBudget
	tenantsAt time.Time
}

// New returns the status page for o.
func New(o Options) *Page {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Poll <= 0 {
		o.Poll = 5 * time.Second
	}
	if o.TopTenants <= 0 {
		o.TopTenants = DefaultTopTenants
	}
	return &Page{o: o}
}

// Register adds GET / and GET /status.json to mux.
func (p *Page) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", p.serveHTML)
	mux.HandleFunc("GET /status.json", p.serveJSON)
}

// rateWindow is how far back a request rate looks: the oldest sample kept
// within it is the rate's start. Samples closer together than minGap are
// not kept, so many viewers do not shorten the interval.
const (
	rateWindow = time.Minute
	minGap     = 2 * time.Second
)

// DefaultTopTenants is how many tenants a tenant-scoped budget lists.
const DefaultTopTenants = 10

// The tenant listing walks the budget store (with Redis, a SCAN of its
// keyspace): it is reused for tenantsEvery and bounded by tenantsTimeout.
const (
	tenantsEvery   = 2 * time.Second
	tenantsTimeout = time.Second
)

// listTenants returns the tenant listing, read again when it is older than
// tenantsEvery.
func (p *Page) listTenants(now time.Time) []TenantBudget {
	if p.o.Tenants == nil {
		return nil
	}
	p.tmu.Lock()
	defer p.tmu.Unlock()
	if p.tenantsAt.IsZero() || now.Sub(p.tenantsAt) >= tenantsEvery || now.Before(p.tenantsAt) {
		ctx, cancel := context.WithTimeout(context.Background(), tenantsTimeout)
		defer cancel()
		p.tenants, p.tenantsAt = p.o.Tenants(ctx, p.o.TopTenants), now
	}
	return p.tenants
}

// Snapshot reads every figure now.
func (p *Page) Snapshot() *Snapshot {
	now := p.o.Now()
	s := &Snapshot{Now: now.UTC().Truncate(time.Millisecond), Started: p.o.Started.UTC().Truncate(time.Millisecond), metrics: map[string]*fam{}, top: p.o.TopTenants}
	fams, err := p.o.Gatherer.Gather()
	if err != nil {
		// Gather returns what it could read along with the error.
		s.Errors = append(s.Errors, err.Error())
	}
	for _, f := range fams {
		s.metrics[f.GetName()] = f
	}
	s.config()
	s.spend()
	s.budgets(p.o.Budgets, p.o.Shared, p.listTenants(now))
	p.mu.Lock()
	for len(p.samples) > 0 && now.Sub(p.samples[0].at) > rateWindow {
		p.samples = p.samples[1:]
	}
	var earlier *sample
	if len(p.samples) > 0 {
		earlier = &p.samples[0]
	}
	cur := s.backends(earlier)
	if n := len(p.samples); n == 0 || now.Sub(p.samples[n-1].at) >= minGap {
		p.samples = append(p.samples, cur)
	}
	p.mu.Unlock()
	s.cache()
	s.routing()
	s.feedback()
	s.Tables = s.tables()
	return s
}

func noStore(w http.ResponseWriter) {
	h := w.Header()
	h.Set("cache-control", "no-store")
	h.Set("x-content-type-options", "nosniff")
}

func (p *Page) serveJSON(w http.ResponseWriter, _ *http.Request) {
	noStore(w)
	w.Header().Set("content-type", "application/json")
	enc := json.NewEncoder(w)
	_ = enc.Encode(p.Snapshot())
}

func (p *Page) serveHTML(w http.ResponseWriter, _ *http.Request) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	nonce := hex.EncodeToString(b[:])
	noStore(w)
	h := w.Header()
	h.Set("content-type", "text/html; charset=utf-8")
	// Nothing but this page's own inline style and script, and fetches of
	// its own origin; never framed.
	h.Set("content-security-policy", "default-src 'none'; style-src 'nonce-"+nonce+"'; script-src 'nonce-"+nonce+"'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	_ = page.Execute(w, struct {
		*Snapshot
		Nonce  string
		PollMS int64
	}{p.Snapshot(), nonce, p.o.Poll.Milliseconds()})
}

func raw(v *float64) string { return strconv.FormatFloat(*v, 'g', -1, 64) }

var page = template.Must(template.New("status").Funcs(template.FuncMap{"raw": raw}).Parse(pageHTML))

// pageHTML is the whole page. The script renders the same tables the
// server did, from /status.json, with textContent only.
const pageHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>llmproc status</title>
<style nonce="{{.Nonce}}">
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .2em}h2{font-size:1.05em;margin:1.4em 0 .3em}
p.note,#state{color:#666;margin:.2em 0 .5em}
table{border-collapse:collapse;background:#fff;min-width:28em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
td[data-value]{text-align:right;font-variant-numeric:tabular-nums}
meter{width:8em;vertical-align:middle}
#tables{display:grid;grid-template-columns:repeat(auto-fit,minmax(30em,1fr));gap:0 2em}
#backends{grid-column:1/-1}
</style></head>
<body>
<h1>llmproc status</h1>
<div id="state">Read-only. Figures at {{.Now.Format "2006-01-02 15:04:05Z"}}; refreshed every {{.PollMS}} ms.</div>
<div id="tables" data-polls="0">
{{range .Tables}}<section id="{{.ID}}"><h2>{{.Title}}</h2>{{if .Note}}<p class="note">{{.Note}}</p>{{end}}
{{if .Rows}}<table><thead><tr>{{range .Head}}<th>{{.}}</th>{{end}}</tr></thead><tbody>
{{range .Rows}}<tr>{{range .}}<td{{if .Key}} data-key="{{.Key}}"{{end}}{{if .Value}} data-value="{{raw .Value}}"{{end}}>{{if .Bar}}<meter min="0" max="1" low="0.5" high="0.8" optimum="0" value="{{raw .Bar}}"></meter> {{end}}{{.Text}}</td>{{end}}</tr>
{{end}}</tbody></table>{{else}}<p class="note">{{.Empty}}</p>{{end}}</section>
{{end}}</div>
<script nonce="{{.Nonce}}">
(function(){
  var root = document.getElementById("tables"), state = document.getElementById("state"), polls = 0;
  function el(tag, text){ var e = document.createElement(tag); if (text !== undefined) e.textContent = text; return e; }
  function cell(c){
    var td = el("td");
    if (c.k) td.setAttribute("data-key", c.k);
    if (c.v !== undefined) td.setAttribute("data-value", String(c.v));
    if (c.bar !== undefined) {
      var m = el("meter");
      [["min", "0"], ["max", "1"], ["low", "0.5"], ["high", "0.8"], ["optimum", "0"], ["value", String(c.bar)]].forEach(function(a){ m.setAttribute(a[0], a[1]); });
      td.appendChild(m); td.appendChild(document.createTextNode(" "));
    }
    td.appendChild(document.createTextNode(c.t));
    return td;
  }
  function render(s){
    var out = document.createDocumentFragment();
    s.tables.forEach(function(t){
      var sec = el("section"); sec.id = t.id;
      sec.appendChild(el("h2", t.title));
      if (t.note) { var n = el("p", t.note); n.className = "note"; sec.appendChild(n); }
      if (t.rows && t.rows.length) {
        var table = el("table"), head = el("tr"), body = el("tbody");
        t.head.forEach(function(h){ head.appendChild(el("th", h)); });
        var thead = el("thead"); thead.appendChild(head); table.appendChild(thead);
        t.rows.forEach(function(r){ var tr = el("tr"); r.forEach(function(c){ tr.appendChild(cell(c)); }); body.appendChild(tr); });
        table.appendChild(body); sec.appendChild(table);
      } else { var e = el("p", t.empty || ""); e.className = "note"; sec.appendChild(e); }
      out.appendChild(sec);
    });
    root.replaceChildren(out);
    root.setAttribute("data-polls", String(++polls));
    root.setAttribute("data-now", s.now);
    state.textContent = "Read-only. Figures at " + s.now + "; refreshed every {{.PollMS}} ms.";
  }
  function poll(){
    fetch("status.json", {cache: "no-store"})
      .then(function(r){ if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(render)
      .catch(function(e){ state.textContent = "Could not refresh: " + e.message + " (showing the last figures)."; })
      .finally(function(){ setTimeout(poll, {{.PollMS}}); });
  }
  poll();
})();
</script>
</body></html>
`
