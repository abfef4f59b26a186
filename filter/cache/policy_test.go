package cache

import (
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

func TestDecide(t *testing.T) {
	const (
		det     = `{"model":"m","temperature":0,"messages":[]}`
		seeded  = `{"model":"m","temperature":0.7,"seed":1,"messages":[]}`
		zeroF   = `{"model":"m","temperature":0.0e0}`
		warm    = `{"model":"m","temperature":0.7}`
		noTemp  = `{"model":"m"}`
		nullSd  = `{"model":"m","seed":null}`
		strTemp = `{"model":"m","temperature":"0"}`
	)
	lookup := Policy{Lookup: true, Store: true}
	tests := []struct {
		name, mode, body, cc string
		want                 Policy
	}{
		{"off", "off", det, "", Policy{Reason: ReasonOff}},
		{"empty mode is off", "", det, "", Policy{Reason: ReasonOff}},
		{"unknown mode is off", "sometimes", det, "", Policy{Reason: ReasonOff}},
		{"temperature 0", "deterministic", det, "", lookup},
		{"temperature 0.0e0", "deterministic", zeroF, "", lookup},
		{"seed", "deterministic", seeded, "", lookup},
		{"warm", "deterministic", warm, "", Policy{Reason: ReasonNotDeterministic}},
		{"no temperature", "deterministic", noTemp, "", Policy{Reason: ReasonNotDeterministic}},
		{"null seed", "deterministic", nullSd, "", Policy{Reason: ReasonNotDeterministic}},
		{"string temperature", "deterministic", strTemp, "", Policy{Reason: ReasonNotDeterministic}},
		{"invalid body", "deterministic", `{`, "", Policy{Reason: ReasonNotDeterministic}},
		{"all caches warm", "all", warm, "", lookup},
		{"no-cache", "all", warm, "no-cache", Policy{Store: true, Reason: ReasonNoCache}},
		{"no-cache not deterministic", "deterministic", warm, "no-cache", Policy{Reason: ReasonNotDeterministic}},
		{"no-store", "all", det, "no-store", Policy{Reason: ReasonNoStore}},
		{"no-store wins", "deterministic", warm, "no-cache, no-store", Policy{Reason: ReasonNoStore}},
		{"off wins", "off", det, "no-store", Policy{Reason: ReasonOff}},
		{"case and spaces", "all", det, "  No-Store ", Policy{Reason: ReasonNoStore}},
		{"max-age", "all", det, "max-age=60", Policy{Lookup: true, Store: true, MaxAge: time.Minute}},
		{"max-age quoted", "all", det, `max-age="60"`, Policy{Lookup: true, Store: true, MaxAge: time.Minute}},
		{"max-age with others", "all", det, "private, MAX-AGE = 5 ,foo=bar", Policy{Lookup: true, Store: true, MaxAge: 5 * time.Second}},
		{"max-age=0", "all", det, "max-age=0", Policy{Store: true, Reason: ReasonNoCache}},
		{"max-age huge", "all", det, "max-age=99999999999999999999", Policy{Lookup: true, Store: true, MaxAge: time.Duration(maxSeconds) * time.Second}},
		{"max-age negative ignored", "all", det, "max-age=-1", lookup},
		{"max-age bad ignored", "all", det, "max-age=soon", lookup},
		{"max-age no value ignored", "all", det, "max-age", lookup},
		{"unknown directive", "all", det, "no-transform", lookup},
		{"empty directives", "all", det, ",,", lookup},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Decide(tt.mode, []byte(tt.body), tt.cc); got != tt.want {
				t.Errorf("Decide(%q, %s, %q) = %+v, want %+v", tt.mode, tt.body, tt.cc, got, tt.want)
			}
		})
	}
}

// DecideMembers, given the first temperature and seed members, decides as
// Decide does over the body.
func TestDecideMembers(t *testing.T) {
	for _, body := range []string{`{}`, `{"temperature":0}`, `{"temperature":0.0,"seed":null}`, `{"temperature":0.7}`, `{"temperature":"0"}`,
		`{"seed":1}`, `{"seed":null}`, `{"temperature":1,"temperature":0}`, `{"temperature":0,"temperature":1}`, `{"seed":null,"seed":3}`} {
		var temp, seed gjson.Result
		gjson.Parse(body).ForEach(func(k, v gjson.Result) bool {
			if k.Str == "temperature" && !temp.Exists() {
				temp = v
			}
			if k.Str == "seed" && !seed.Exists() {
				seed = v
			}
			return true
		})
		for _, mode := range []string{ModeDeterministic, ModeAll, "off"} {
			for _, cc := range []string{"", "no-cache", "max-age=5", "no-store"} {
				if got, want := DecideMembers(mode, temp, seed, cc), Decide(mode, []byte(body), cc); got != want {
					t.Errorf("DecideMembers(%s, %s, %q) = %+v, Decide gives %+v", mode, body, cc, got, want)
				}
			}
		}
	}
}
