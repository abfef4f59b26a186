package server

// The garbage collector's defaults for the server (README, Performance: GC
// defaults). An ext_proc server allocates a little per message and keeps a
// small live heap (the compiled config, the classifier, metrics, open
// streams), so with Go's default GOGC=100 it collects every few megabytes
// of allocation, each cycle scanning every goroutine's stack. GOGC=200
// halves how often it collects for a heap that may grow to three times the
// live one instead of two; a memory limit keeps that headroom inside the
// container's: under the limit the collector works harder instead of the
// process being killed.

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// DefaultGOGC is the GC percent the server runs with when GOGC is not set.
const DefaultGOGC = 200

// memoryLimitShare is the share of the container's memory limit the Go
// heap may use when GOMEMLIMIT is not set: the rest is for what the runtime
// does not count (thread stacks outside the heap, cgo, the binary itself).
const memoryLimitShare = 0.9

// GCSettings is what the collector runs with and where each value came
// from ("GOGC", "default", "GOMEMLIMIT", "cgroup" or "none").
type GCSettings struct {
	Percent       int
	PercentFrom   string
	Limit         int64 // bytes; 0: no limit
	LimitFrom     string
	CgroupLimit   int64 // the container's memory limit, 0 when none
	CgroupLimitAt string
}

// applyGC sets the defaults the environment leaves open: GOGC (read by the
// Go runtime at start) wins when set, else DefaultGOGC; GOMEMLIMIT wins
// when set, else 90% of the cgroup memory limit, else none.
func applyGC(getenv func(string) string, cgroupLimit func() (int64, string)) GCSettings {
	var g GCSettings
	if v := getenv("GOGC"); v != "" {
		g.PercentFrom = "GOGC"
		g.Percent = debug.SetGCPercent(-1) // read the runtime's value back
		debug.SetGCPercent(g.Percent)
	} else {
		g.Percent, g.PercentFrom = DefaultGOGC, "default"
		debug.SetGCPercent(DefaultGOGC)
	}
	g.CgroupLimit, g.CgroupLimitAt = cgroupLimit()
	switch {
	case getenv("GOMEMLIMIT") != "":
		g.Limit, g.LimitFrom = debug.SetMemoryLimit(-1), "GOMEMLIMIT"
	case g.CgroupLimit > 0:
		g.Limit, g.LimitFrom = int64(float64(g.CgroupLimit)*memoryLimitShare), "cgroup"
		debug.SetMemoryLimit(g.Limit)
	default:
		g.LimitFrom = "none"
	}
	return g
}

// cgroupMemoryLimit reads the container's memory limit: cgroup v2's
// memory.max, else cgroup v1's memory.limit_in_bytes ("max" or a value
// past 1 PiB, v1's way of saying none, is no limit).
func cgroupMemoryLimit() (int64, string) {
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if n, ok := parseMemoryLimit(string(b)); ok {
			return n, p
		}
		return 0, ""
	}
	return 0, ""
}

// parseMemoryLimit reads a cgroup memory limit file's value.
func parseMemoryLimit(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n >= 1<<50 {
		return 0, false
	}
	return n, true
}
