package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// lateLimit is how far behind its schedule the open-loop driver may start
// a cycle before the rate figures are flagged.
const lateLimit = 5 * time.Millisecond

// report collects a run's windows and prints them.
type report struct {
	opts    options
	modes   []string
	driver  affinity
	servers []serverInfo
	results []result
	rates   []rateResult
}

type serverInfo struct {
	mode  string
	child *child
}

// label is how the tables name a server.
func (rep *report) label(mode string) string {
	for _, s := range rep.servers {
		if s.mode == mode && mode == modeTarget {
			return s.child.name
		}
	}
	if mode == modeNoop {
		return "floor"
	}
	return mode
}

// measured is the server compared with the floor (llmproc or -target).
func (rep *report) measured() string {
	for _, m := range rep.modes {
		if m != modeNoop {
			return m
		}
	}
	return ""
}

func (rep *report) find(name, mode string, round int) (result, bool) {
	for _, r := range rep.results {
		if r.caseName == name && r.mode == mode && r.round == round {
			return r, true
		}
	}
	return result{}, false
}

// caseSummary is one case over all rounds.
type caseSummary struct {
	spec               caseSpec
	floor, other       []time.Duration // CPU per cycle, per round
	ratios             []float64       // other/floor, per round
	floorMsgs, othMsgs int
	chunks             int
}

func (rep *report) summaries() []caseSummary {
	var out []caseSummary
	other := rep.measured()
	for _, name := range rep.opts.cases {
		c, _ := caseByName(name)
		s := caseSummary{spec: c}
		for round := 1; round <= rep.opts.rounds; round++ {
			f, okF := rep.find(name, modeNoop, round)
			m, okM := rep.find(name, other, round)
			if okF {
				s.floor = append(s.floor, f.cpuPerCycle())
				s.floorMsgs, s.chunks = f.msgs, f.chunks
			}
			if okM {
				s.other = append(s.other, m.cpuPerCycle())
				s.othMsgs, s.chunks = m.msgs, m.chunks
			}
			if okF && okM && f.cpuPerCycle() > 0 && m.cpuPerCycle() >= 0 {
				s.ratios = append(s.ratios, float64(m.cpuPerCycle())/float64(f.cpuPerCycle()))
			}
		}
		out = append(out, s)
	}
	return out
}

func medianDur(v []time.Duration) time.Duration {
	if len(v) == 0 || slices.Min(v) < 0 {
		return -1
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianF(v []float64) float64 {
	if len(v) == 0 {
		return -1
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtRatio(r float64) string {
	if r < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", r)
}

func fmtCPU(d time.Duration) string {
	if d < 0 {
		return "n/a"
	}
	return fmtDur(d)
}

// print writes the per-round figures, the summaries and the markdown.
func (rep *report) print(out io.Writer) {
	o := rep.opts
	fmt.Fprintf(out, "cycle: Envoy's ext_proc messages for one request with llmproc's rendered config (router: request headers + buffered body; upstream: request headers, buffered body, response headers, response body chunks), each sent only when the server's replies leave the stream asking for it\n")
	fmt.Fprintf(out, "CPU: the server's utime+stime from /proc/<pid>/stat over each window (10 ms ticks); %d rounds, servers interleaved (order alternating), %d concurrent cycles over %d connections, %s windows after %s warm-up\n",
		o.rounds, o.concurrency, o.conns, o.duration, o.warmup)
	rep.printPinning(out)
	fmt.Fprintln(out)

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "case\tround\tserver\tmsgs/cycle\tcycles\treq/s\tp50\tp99\tserver-CPU/cycle\tratio\tserver-cores\t")
	for _, r := range rep.results {
		ratio := ""
		if r.mode != modeNoop {
			if f, ok := rep.find(r.caseName, modeNoop, r.round); ok && f.cpuPerCycle() > 0 && r.cpuPerCycle() >= 0 {
				ratio = fmtRatio(float64(r.cpuPerCycle()) / float64(f.cpuPerCycle()))
			}
		}
		cores := "n/a"
		if r.cpu >= 0 {
			cores = fmt.Sprintf("%.2f", r.cpu.Seconds()/r.elapsed.Seconds())
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t\n",
			r.caseName, r.round, rep.label(r.mode), r.msgs, r.cycles, r.perSecond(), fmtDur(r.p50), fmtDur(r.p99), fmtCPU(r.cpuPerCycle()), ratio, cores)
	}
	tw.Flush()
	if len(rep.rates) > 0 {
		fmt.Fprintln(out)
		tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "rate case\tround\tserver\treq/s\tcycles\tp50\tp99\tp99.9\tmax\tmax in flight\tlatest start\tserver-CPU/cycle\t\t")
		for _, r := range rep.rates {
			sat := ""
			if r.saturated {
				sat = "SATURATED: a second of backlog; the window stopped early"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t\n", r.caseName, r.round, rep.label(r.mode), r.rate, r.cycles,
				fmtDur(r.p50), fmtDur(r.p99), fmtDur(r.p999), fmtDur(r.maxLat), r.maxInFlightSeen, fmtDur(r.lateStart), fmtCPU(r.cpuPerCycle()), sat)
		}
		tw.Flush()
	}
	if o.cpuprofile != "" {
		fmt.Fprintln(out, "\n(llmproc was profiled during its windows; its CPU includes the profiler's small overhead)")
	}
	fmt.Fprintln(out)
	rep.printMarkdown(out)
}

func (rep *report) printPinning(out io.Writer) {
	fmt.Fprintf(out, "pinning: driver may run on CPUs %s (all %d threads, /proc/self/task/*/status Cpus_allowed_list; last ran on %s)\n",
		rep.driver.allowed, rep.driver.threads, rep.driver.ran)
	for _, s := range rep.servers {
		c := s.child
		if c.procID() <= 0 {
			fmt.Fprintf(out, "pinning: %s server: pid unknown, CPU not measured\n", rep.label(s.mode))
			continue
		}
		_ = c.checkPinned()
		fmt.Fprintf(out, "pinning: %s server pid %d may run on CPUs %s (all %d threads; last ran on %s)", rep.label(s.mode), c.procID(), c.aff.allowed, c.aff.threads, c.aff.ran)
		if len(c.cpus) > 0 {
			fmt.Fprintf(out, ", started under taskset -c %s: checked", c.cpus)
		}
		fmt.Fprintln(out)
		if c.aff.allowed.overlaps(rep.driver.allowed) {
			fmt.Fprintf(out, "pinning: WARNING: driver and %s server share CPUs: their CPU time competes (use taskset -c 0 for the driver and -server-cpus 1)\n", rep.label(s.mode))
		}
	}
}

// printMarkdown writes the tables BENCHMARKS.md carries.
func (rep *report) printMarkdown(out io.Writer) {
	o := rep.opts
	other := rep.label(rep.measured())
	sums := rep.summaries()
	fmt.Fprintf(out, "<!-- e2e/load -rounds %d -concurrency %d -duration %s -warmup %s", o.rounds, o.concurrency, o.duration, o.warmup)
	if o.rate > 0 {
		fmt.Fprintf(out, " -rate %d -rate-duration %s", o.rate, o.rateDuration)
	}
	fmt.Fprintf(out, "; driver CPUs %s", rep.driver.allowed)
	for _, s := range rep.servers {
		if s.child.procID() > 0 {
			fmt.Fprintf(out, ", %s CPUs %s", rep.label(s.mode), s.child.aff.allowed)
		}
	}
	fmt.Fprintln(out, " -->")
	fmt.Fprintf(out, "| case | msgs/cycle floor / %s | floor CPU/cycle | %s CPU/cycle | ratio (median) | per round | target |\n", other, other)
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|")
	for _, s := range sums {
		if s.spec.perChunk {
			continue
		}
		target := ""
		if s.spec.target > 0 {
			mark := "met"
			if r := medianF(s.ratios); r < 0 || r > s.spec.target {
				mark = "not met"
			}
			target = fmt.Sprintf("≤ %.2f× (%s)", s.spec.target, mark)
		}
		fmt.Fprintf(out, "| %s | %d / %d | %s | %s | %s | %s | %s |\n", s.spec.title, s.floorMsgs, s.othMsgs,
			fmtCPU(medianDur(s.floor)), fmtCPU(medianDur(s.other)), fmtRatio(medianF(s.ratios)), roundRatios(s.ratios), target)
	}
	var chunked []caseSummary
	for _, s := range sums {
		if s.spec.perChunk {
			chunked = append(chunked, s)
		}
	}
	if len(chunked) > 0 {
		fmt.Fprintln(out)
		fmt.Fprintf(out, "| translated stream | chunks | floor CPU/chunk | %s CPU/chunk | ratio (median) | per round |\n", other)
		fmt.Fprintln(out, "|---|---|---|---|---|---|")
		for _, s := range chunked {
			per := func(d time.Duration) string {
				if d < 0 || s.chunks == 0 {
					return "n/a"
				}
				return fmtDur(d / time.Duration(s.chunks))
			}
			fmt.Fprintf(out, "| %s | %d | %s | %s | %s | %s |\n", s.spec.title, s.chunks, per(medianDur(s.floor)), per(medianDur(s.other)),
				fmtRatio(medianF(s.ratios)), roundRatios(s.ratios))
		}
		fmt.Fprintln(out, "\nCPU per chunk is the cycle's server CPU divided by the answer's chunks (the request's share included).")
	}
	if len(rep.rates) > 0 {
		fmt.Fprintln(out)
		fmt.Fprintf(out, "| at %d req/s (open loop, %s) | p50 | p99 | p99.9 | server CPU/cycle | saturated rounds |\n", o.rate, o.rateCase)
		fmt.Fprintln(out, "|---|---|---|---|---|---|")
		var p99 = map[string][]time.Duration{}
		for _, m := range rep.modes {
			var p50s, p99s, p999s, cpus []time.Duration
			sat := 0
			for _, r := range rep.rates {
				if r.mode == m {
					p50s, p99s, p999s, cpus = append(p50s, r.p50), append(p99s, r.p99), append(p999s, r.p999), append(cpus, r.cpuPerCycle())
					if r.saturated {
						sat++
					}
				}
			}
			p99[m] = p99s
			fmt.Fprintf(out, "| %s | %s | %s | %s | %s | %d of %d |\n", rep.label(m), fmtCPU(medianDur(p50s)), fmtCPU(medianDur(p99s)), fmtCPU(medianDur(p999s)), fmtCPU(medianDur(cpus)), sat, len(p99s))
		}
		if m := rep.measured(); m != "" && len(p99[m]) > 0 && len(p99[modeNoop]) > 0 {
			var added []string
			for i := range min(len(p99[m]), len(p99[modeNoop])) {
				added = append(added, fmtSigned(p99[m][i]-p99[modeNoop][i]))
			}
			fmt.Fprintf(out, "| **added by %s at p99** | | %s (rounds: %s) | | | |\n", other, fmtSigned(medianDur(p99[m])-medianDur(p99[modeNoop])), strings.Join(added, ", "))
		}
		var late time.Duration
		saturated := false
		for _, r := range rep.rates {
			late = max(late, r.lateStart)
			saturated = saturated || r.saturated
		}
		if saturated {
			fmt.Fprintf(out, "\nWARNING: a window saturated (a second's worth of cycles in flight): the server or the driver could not sustain %d req/s, so its latencies are queueing, not the server's per-request cost.\n", o.rate)
		}
		if late > lateLimit {
			fmt.Fprintf(out, "\nWARNING: the driver started cycles up to %s behind schedule: it could not keep %d req/s itself (a loaded machine?), so these latencies measure the driver's queue as much as the servers.\n", fmtDur(late), o.rate)
		}
	}
}

func roundRatios(v []float64) string {
	var parts []string
	for _, r := range v {
		parts = append(parts, fmt.Sprintf("%.2f", r))
	}
	if len(parts) == 0 {
		return "n/a"
	}
	s := strings.Join(parts, ", ")
	if len(v) > 1 {
		lo, hi, med := slices.Min(v), slices.Max(v), medianF(v)
		s += fmt.Sprintf(" (±%.0f%%)", 50*(hi-lo)/med)
	}
	return s
}

func fmtSigned(d time.Duration) string {
	if d < 0 {
		return "−" + fmtDur(-d)
	}
	return "+" + fmtDur(d)
}

// fmtDur prints a duration with three significant digits.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
