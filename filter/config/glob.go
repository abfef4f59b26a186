package config

import "strings"

// Model aliases may be glob patterns: "*" matches any run of characters
// (none too); no other character is special, so the brackets of Claude
// Code's "claude-sonnet-4-5[1m]" are literal. An exact name or alias wins
// over every pattern; the validator refuses two patterns of different models
// that some name could match both of, so a name matches at most one model.

// modelPattern is one glob alias, with the field that defined it.
type modelPattern struct {
	glob  string
	field string // models[i].aliases[j]
	model *RModel
}

func isGlob(alias string) bool { return strings.Contains(alias, "*") }

// globMatch reports whether name matches the pattern.
func globMatch(pattern, name string) bool {
	// The classic greedy walk with one backtrack point: linear for "*" only.
	p, n, star, mark := 0, 0, -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && pattern[p] == name[n]:
			p++
			n++
		case star >= 0:
			p, mark = star+1, mark+1
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// globsOverlap reports whether some string matches both patterns: a walk
// over pairs of positions, each "*" either ending or taking one more
// character (or the other pattern's "*") of the other side.
func globsOverlap(a, b string) bool {
	seen := make(map[[2]int]bool)
	var walk func(i, j int) bool
	walk = func(i, j int) bool {
		k := [2]int{i, j}
		if seen[k] {
			return false
		}
		seen[k] = true
		switch {
		case i == len(a) && j == len(b):
			return true
		case i < len(a) && a[i] == '*':
			return walk(i+1, j) || (j < len(b) && walk(i, j+1))
		case j < len(b) && b[j] == '*':
			return walk(i, j+1) || (i < len(a) && walk(i+1, j))
		case i < len(a) && j < len(b):
			return a[i] == b[j] && walk(i+1, j+1)
		}
		return false
	}
	return walk(0, 0)
}

// ModelMatch returns the registry entry for a name or alias, or the model
// whose glob alias matches it, with the field that matched
// ("models[0].name", "models[2].aliases[1]").
func (r *Runtime) ModelMatch(name string) (*RModel, string, bool) {
	if m, ok := r.byName[name]; ok {
		return m, r.fieldOf[name], true
	}
	for _, p := range r.patterns {
		if globMatch(p.glob, name) {
			return p.model, p.field, true
		}
	}
	return nil, "", false
}

// lookup is ModelMatch without the field.
func (r *Runtime) lookup(name string) *RModel {
	m, _, _ := r.ModelMatch(name)
	return m
}
