package cache

import (
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/tidwall/gjson"
)

// Cache modes, as in config.Cache.Mode and a route's cache override.
const (
	ModeOff           = "off"
	ModeDeterministic = "deterministic"
	ModeAll           = "all"
)

// Reasons a Policy gives for not looking up; bounded, usable as metric labels.
const (
	ReasonOff              = "off"
	ReasonNotDeterministic = "not_deterministic"
	ReasonNoStore          = "no-store"
	ReasonNoCache          = "no-cache"
)

// Policy is what a request may do with the cache.
type Policy struct {
	Lookup, Store bool
	MaxAge        time.Duration // 0: any age within the TTL
	Reason        string        // why not, when !Lookup: "off", "not_deterministic", "no-store", "no-cache"
}

// Decide applies the mode and the request's Cache-Control header.
//
// Mode "off" (or any unknown mode) does nothing; "deterministic" caches only
// requests whose answer is repeatable: "temperature" is the number 0, or a
// non-null "seed" is given; "all" caches every request. Cache-Control
// "no-store" neither reads nor writes; "no-cache" and "max-age=0" skip the
// lookup but store the fresh answer; "max-age=N" bounds the age of an
// acceptable entry to N seconds. Directive names are case-insensitive;
// unknown directives and malformed values are ignored.
func Decide(mode string, body []byte, cacheControl string) Policy {
	return decide(mode, cacheControl, func() bool { return deterministic(body) })
}

// DecideMembers is Decide for a body whose top-level "temperature" and
// "seed" members (the first of each, as gjson.Get finds them) its caller
// has read already: no pass over the body.
func DecideMembers(mode string, temperature, seed gjson.Result, cacheControl string) Policy {
	return decide(mode, cacheControl, func() bool { return deterministicMembers(temperature, seed) })
}

func decide(mode, cacheControl string, deterministic func() bool) Policy {
	switch mode {
	case ModeDeterministic, ModeAll:
	default:
		return Policy{Reason: ReasonOff}
	}
	noStore, noCache, maxAge := parseCacheControl(cacheControl)
	if noStore {
		return Policy{Reason: ReasonNoStore}
	}
	if mode == ModeDeterministic && !deterministic() {
		return Policy{Reason: ReasonNotDeterministic}
	}
	if noCache || maxAge == 0 {
		return Policy{Store: true, Reason: ReasonNoCache}
	}
	p := Policy{Lookup: true, Store: true}
	if maxAge > 0 {
		p.MaxAge = time.Duration(maxAge) * time.Second
	}
	return p
}

// deterministic reports whether temperature is 0 or a seed is given.
func deterministic(body []byte) bool {
	json := unsafe.String(unsafe.SliceData(body), len(body))
	r := gjson.GetMany(json, "temperature", "seed")
	return deterministicMembers(r[0], r[1])
}

func deterministicMembers(temperature, seed gjson.Result) bool {
	if temperature.Type == gjson.Number && temperature.Float() == 0 {
		return true
	}
	return seed.Exists() && seed.Type != gjson.Null
}

// maxSeconds caps max-age so that the Duration cannot overflow.
const maxSeconds = int64(1<<63-1) / int64(time.Second)

// parseCacheControl reads the request directives that matter here; maxAge is
// -1 when absent or malformed.
func parseCacheControl(h string) (noStore, noCache bool, maxAge int64) {
	maxAge = -1
	for h != "" {
		var d string
		d, h, _ = strings.Cut(h, ",")
		name, val, hasVal := strings.Cut(strings.TrimSpace(d), "=")
		name = strings.TrimSpace(name)
		switch {
		case strings.EqualFold(name, "no-store"):
			noStore = true
		case strings.EqualFold(name, "no-cache"):
			noCache = true
		case strings.EqualFold(name, "max-age") && hasVal:
			val = strings.Trim(strings.TrimSpace(val), `"`)
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange && val != "" && val[0] != '-' {
					n, err = maxSeconds, nil
				}
			}
			if err == nil && n >= 0 {
				maxAge = min(n, maxSeconds)
			}
		}
	}
	return noStore, noCache, maxAge
}
