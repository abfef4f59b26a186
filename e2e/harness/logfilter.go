package harness

import (
	"fmt"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// metadataLogFilter follows MetadataFilter::evaluate in
// source/common/access_log/access_log_impl.cc: the value at matcher.path in
// the dynamic metadata namespace matcher.filter, when present, must match
// matcher.value; when absent the result is match_if_key_not_found (default
// true). Value matchers: present_match and string_match.
func metadataLogFilter(f *accesslogv3.MetadataFilter, path string) (logFilter, error) {
	m := f.GetMatcher()
	keys := make([]string, 0, len(m.GetPath()))
	for _, seg := range m.GetPath() {
		keys = append(keys, seg.GetKey())
	}
	notFound := true
	if f.GetMatchIfKeyNotFound() != nil {
		notFound = f.GetMatchIfKeyNotFound().GetValue()
	}
	var match func(*structpb.Value) bool
	switch p := m.GetValue().GetMatchPattern().(type) {
	case *matcherv3.ValueMatcher_PresentMatch:
		match = func(*structpb.Value) bool { return p.PresentMatch }
	case *matcherv3.ValueMatcher_StringMatch:
		sm, err := stringMatcher(p.StringMatch)
		if err != nil {
			return nil, fmt.Errorf("%s.matcher.value.string_match: %w", path, err)
		}
		match = func(v *structpb.Value) bool {
			s, ok := v.GetKind().(*structpb.Value_StringValue)
			return ok && sm(s.StringValue)
		}
	default:
		return nil, fmt.Errorf("%s.matcher.value: %T unsupported by the harness", path, p)
	}
	return func(i *logInfo) bool {
		ns, ok := i.dyn[m.GetFilter()]
		if !ok {
			return notFound
		}
		v := structpb.NewStructValue(ns)
		for _, k := range keys {
			if v, ok = v.GetStructValue().GetFields()[k]; !ok {
				return notFound
			}
		}
		return match(v)
	}, nil
}
