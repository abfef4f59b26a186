package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// cpuSet is a sorted set of CPU numbers.
type cpuSet []int

// parseCPUList reads a kernel CPU list such as "0-2,5".
func parseCPUList(s string) (cpuSet, error) {
	var out cpuSet
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("cpu list %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("cpu list %q: bad range %q", s, part)
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func (s cpuSet) String() string {
	if len(s) == 0 {
		return "none"
	}
	var parts []string
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(s[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", s[i], s[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

func (s cpuSet) overlaps(t cpuSet) bool {
	for _, c := range s {
		if slices.Contains(t, c) {
			return true
		}
	}
	return false
}

// affinity is where a process may run and where its threads last ran.
type affinity struct {
	allowed cpuSet // union of every thread's Cpus_allowed_list
	ran     cpuSet // the CPUs its threads last ran on (/proc/.../stat field 39)
	threads int
}

// processAffinity reads every thread of pid from /proc: the kernel's
// Cpus_allowed_list (what taskset set; runtime.NumCPU only sees the calling
// thread's mask) and the processor each thread last ran on.
func processAffinity(pid int) (affinity, error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return affinity{}, fmt.Errorf("cpu affinity: %w (the driver reads /proc, so it needs Linux)", err)
	}
	var a affinity
	for _, t := range tasks {
		status, err := os.ReadFile(filepath.Join(dir, t.Name(), "status"))
		if err != nil {
			continue // the thread ended
		}
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				set, err := parseCPUList(v)
				if err != nil {
					return affinity{}, err
				}
				a.allowed = append(a.allowed, set...)
			}
		}
		if stat, err := os.ReadFile(filepath.Join(dir, t.Name(), "stat")); err == nil {
			if i := bytes.LastIndexByte(stat, ')'); i >= 0 {
				// Field 39 (processor) is f[36] after the command name.
				if f := strings.Fields(string(stat[i+1:])); len(f) > 36 {
					if c, err := strconv.Atoi(f[36]); err == nil {
						a.ran = append(a.ran, c)
					}
				}
			}
		}
		a.threads++
	}
	slices.Sort(a.allowed)
	a.allowed = slices.Compact(a.allowed)
	slices.Sort(a.ran)
	a.ran = slices.Compact(a.ran)
	return a, nil
}

// checkPinned verifies that a spawned server runs on exactly the CPUs it
// was started on (taskset -c want), every thread of it.
func checkPinned(name string, pid int, want cpuSet) (affinity, error) {
	a, err := processAffinity(pid)
	if err != nil {
		return a, err
	}
	if len(want) > 0 && !slices.Equal(a.allowed, want) {
		return a, fmt.Errorf("%s server (pid %d) may run on CPUs %s, want %s (taskset did not take)", name, pid, a.allowed, want)
	}
	if len(want) > 0 && !a.ran.subsetOf(want) {
		return a, fmt.Errorf("%s server (pid %d) threads last ran on CPUs %s, outside %s", name, pid, a.ran, want)
	}
	return a, nil
}

func (s cpuSet) subsetOf(t cpuSet) bool {
	for _, c := range s {
		if !slices.Contains(t, c) {
			return false
		}
	}
	return true
}
