package metrics

import "sync"

// labelKey is a series' label values, as a map key (the widest vector,
// gen_ai_client_token_usage, has seven labels).
type labelKey [8]string

// series caches a vector's children by label values, so an observation on
// the hot path costs a map read instead of prometheus's label validation
// and hashing. It holds exactly the children the vector holds (every child
// it caches was made by the vector, which keeps each one until reset, and
// none of these vectors is reset), so it is bounded as the vector's labels
// are.
type series[V any] struct {
	with func(...string) V // the vector's WithLabelValues
	mu   sync.RWMutex
	m    map[labelKey]V
}

func newSeries[V any](with func(...string) V) *series[V] {
	return &series[V]{with: with, m: map[labelKey]V{}}
}

// get returns the child of label values lv, like WithLabelValues.
func (s *series[V]) get(lv ...string) V {
	if len(lv) > len(labelKey{}) {
		return s.with(append([]string(nil), lv...)...)
	}
	var k labelKey
	copy(k[:], lv)
	s.mu.RLock()
	v, ok := s.m[k]
	s.mu.RUnlock()
	if ok {
		return v
	}
	v = s.with(append([]string(nil), lv...)...) // panics on a wrong label count, as before
	s.mu.Lock()
	s.m[k] = v
	s.mu.Unlock()
	return v
}
