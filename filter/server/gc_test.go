package server

import (
	"runtime/debug"
	"testing"
)

func TestApplyGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	noCgroup := func() (int64, string) { return 0, "" }
	container := func() (int64, string) { return 1 << 30, "/sys/fs/cgroup/memory.max" }
	for _, tc := range []struct {
		name        string
		env         map[string]string
		cgroup      func() (int64, string)
		runtimeGOGC int   // what the runtime read from GOGC at start
		runtimeLim  int64 // what it read from GOMEMLIMIT
		wantGOGC    int
		wantFrom    string
		wantLimit   int64
		wantLimFrom string
	}{
		{name: "defaults", cgroup: noCgroup, wantGOGC: DefaultGOGC, wantFrom: "default", wantLimFrom: "none"},
		{name: "container", cgroup: container, wantGOGC: DefaultGOGC, wantFrom: "default",
			wantLimit: 1 << 30 * 9 / 10, wantLimFrom: "cgroup"},
		{name: "env wins", env: map[string]string{"GOGC": "50", "GOMEMLIMIT": "256MiB"}, cgroup: container,
			runtimeGOGC: 50, runtimeLim: 256 << 20, wantGOGC: 50, wantFrom: "GOGC", wantLimit: 256 << 20, wantLimFrom: "GOMEMLIMIT"},
		{name: "off", env: map[string]string{"GOGC": "off"}, cgroup: noCgroup,
			runtimeGOGC: -1, wantGOGC: -1, wantFrom: "GOGC", wantLimFrom: "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(100)
			debug.SetMemoryLimit(1<<63 - 1)
			if tc.env["GOGC"] != "" {
				debug.SetGCPercent(tc.runtimeGOGC)
			}
			if tc.env["GOMEMLIMIT"] != "" {
				debug.SetMemoryLimit(tc.runtimeLim)
			}
			g := applyGC(func(k string) string { return tc.env[k] }, tc.cgroup)
			if g.Percent != tc.wantGOGC || g.PercentFrom != tc.wantFrom || g.Limit != tc.wantLimit || g.LimitFrom != tc.wantLimFrom {
				t.Fatalf("got %+v, want GOGC %d (%s), limit %d (%s)", g, tc.wantGOGC, tc.wantFrom, tc.wantLimit, tc.wantLimFrom)
			}
			if got := debug.SetGCPercent(-1); got != tc.wantGOGC {
				t.Errorf("runtime GOGC %d, want %d", got, tc.wantGOGC)
			}
			debug.SetGCPercent(tc.wantGOGC)
			if lim := debug.SetMemoryLimit(-1); tc.wantLimit != 0 && lim != tc.wantLimit {
				t.Errorf("runtime memory limit %d, want %d", lim, tc.wantLimit)
			}
		})
	}
}

func TestParseMemoryLimit(t *testing.T) {
	for in, want := range map[string]int64{"max\n": 0, "536870912\n": 536870912, "9223372036854771712\n": 0, "": 0, "-1": 0} {
		if got, _ := parseMemoryLimit(in); got != want {
			t.Errorf("parseMemoryLimit(%q) = %d, want %d", in, got, want)
		}
	}
}
