package server

import (
	"bufio"
	"regexp"
	"strings"
	"testing"
)

func TestReadOnlyMappings(t *testing.T) {
	const smaps = `00400000-01cfc000 r-xp 00000000 fe:00 10003345                           /srv/llmproc
Size:              25584 kB
Rss:               16368 kB
Private_Dirty:     16368 kB
Anonymous:             0 kB
01cfc000-03977000 r--p 018fc000 fe:00 10003345                           /srv/llmproc
Size:              29164 kB
Rss:               20844 kB
Anonymous:             8 kB
03977000-03aa1000 rw-p 03577000 fe:00 10003345                           /srv/llmproc
Rss:                1064 kB
Anonymous:          1064 kB
7f1449069000-7f14491bf000 r-xp 00028000 fe:00 2231                       /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                 796 kB
Anonymous:             0 kB
7ffd4deca000-7ffd4deeb000 rw-p 00000000 00:00 0                          [stack]
Rss:                  12 kB
7f0000000000-7f0000001000 r--p 00000000 00:00 0 
Rss:                   4 kB
`
	got := readOnlyMappings(bufio.NewScanner(strings.NewReader(smaps)), "/srv/llmproc")
	want := []mapping{
		{start: 0x400000, end: 0x1cfc000, rss: 16368 << 10},
		{start: 0x1cfc000, end: 0x3977000, rss: 20844 << 10, anonymous: true}, // copied pages: never released
	}
	if len(got) != len(want) {
		t.Fatalf("mappings = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("mapping %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestReleaseStartupPages releases the test binary's read-only pages and
// then runs code and reads data it has not touched yet and code it has:
// both come back from the file.
func TestReleaseStartupPages(t *testing.T) {
	before := strings.Repeat("ab", 1000)
	if n := ReleaseStartupPages(); n <= 0 {
		t.Fatalf("ReleaseStartupPages released %d bytes, want some", n)
	}
	re := regexp.MustCompile(`^(ab)+$`)
	if !re.MatchString(before) {
		t.Fatal("regexp after the release: no match")
	}
	if got := strings.ToUpper("llmproc"); got != "LLMPROC" {
		t.Fatalf("ToUpper = %q", got)
	}
}
