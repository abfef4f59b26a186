package server

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// madvise advice values (linux/mman.h).
const (
	madvRandom   = 1
	madvDontneed = 4
)

// ReleaseStartupPages unmaps from this process the pages of its own
// executable's read-only segments (code, read-only data, the function table)
// and returns how many bytes of them were resident. Call it once the
// server is up (cmd/llmproc does, from Options.Ready).
//
// Starting touches most of a large binary exactly once: every package's init
// runs (the protobuf descriptors of Envoy's API, CEL's standard library, the
// Kubernetes and Istio types the renderers use), and for each page it
// touches the kernel maps up to 16 neighbours as well (fault-around). Those
// pages stay in the page cache, clean, shared and reclaimable; one that is
// used again is mapped again on its next access, a minor fault. MADV_RANDOM
// first stops the neighbours from coming back with it, so what stays
// resident afterwards is close to the code and data the server runs: on the
// quickstart config, about 20 MB of the binary instead of about 38 MB
// (README, Performance: Memory).
//
// Only mappings that are not writable and hold no anonymous (copied on
// write) pages are released: their contents are exactly the file's, so
// nothing can be lost. Errors leave the mappings as they were.
func ReleaseStartupPages() int64 {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0
	}
	defer f.Close()
	var released int64
	for _, m := range readOnlyMappings(bufio.NewScanner(f), exe) {
		if m.anonymous {
			continue
		}
		_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, madvRandom)
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, madvDontneed); errno == 0 {
			released += m.rss
		}
	}
	return released
}

// mapping is one read-only file mapping of /proc/self/smaps.
type mapping struct {
	start, end uintptr
	rss        int64 // bytes resident
	anonymous  bool  // holds private copies of pages
}

// readOnlyMappings reads smaps for the mappings of path that are not
// writable.
func readOnlyMappings(sc *bufio.Scanner, path string) []mapping {
	var (
		out []mapping
		cur = -1
	)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 5 && len(fields[1]) == 4 && strings.Contains(fields[0], "-") {
			// A mapping's first line: range, perms, offset, dev, inode, path.
			cur = -1
			if len(fields) != 6 || fields[5] != path || fields[1][1] == 'w' {
				continue
			}
			lo, hi, _ := strings.Cut(fields[0], "-")
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil || end <= start {
				continue
			}
			out = append(out, mapping{start: uintptr(start), end: uintptr(end)})
			cur = len(out) - 1
			continue
		}
		if cur < 0 || len(fields) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		switch {
		case fields[0] == "Rss:" && err == nil:
			out[cur].rss = kb << 10
		case fields[0] == "Anonymous:" && (err != nil || kb > 0):
			out[cur].anonymous = true
		}
	}
	if sc.Err() != nil {
		return nil
	}
	return out
}
