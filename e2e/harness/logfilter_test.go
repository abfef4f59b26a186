package harness

import (
	"testing"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestMetadataLogFilter follows MetadataFilter::evaluate in
// source/common/access_log/access_log_impl.cc: a present key must match the
// value matcher; an absent key (or namespace) gives match_if_key_not_found,
// true unless set.
func TestMetadataLogFilter(t *testing.T) {
	present := &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_PresentMatch{PresentMatch: true}}
	exact := &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_StringMatch{
		StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "anthropic"}}}}
	filter := func(key string, v *matcherv3.ValueMatcher, notFound *wrapperspb.BoolValue) *accesslogv3.MetadataFilter {
		return &accesslogv3.MetadataFilter{
			Matcher: &matcherv3.MetadataMatcher{Filter: "llmproc",
				Path:  []*matcherv3.MetadataMatcher_PathSegment{{Segment: &matcherv3.MetadataMatcher_PathSegment_Key{Key: key}}},
				Value: v},
			MatchIfKeyNotFound: notFound,
		}
	}
	withMeta := &logInfo{dyn: map[string]*structpb.Struct{"llmproc": {Fields: map[string]*structpb.Value{
		"pool": structpb.NewStringValue("cheap"), "client": structpb.NewStringValue("openai"),
	}}}}
	none := &logInfo{}
	tests := []struct {
		name string
		f    *accesslogv3.MetadataFilter
		info *logInfo
		want bool
	}{
		{"present key, present_match", filter("pool", present, wrapperspb.Bool(false)), withMeta, true},
		{"absent key, match_if_key_not_found false", filter("tenant", present, wrapperspb.Bool(false)), withMeta, false},
		{"absent namespace, match_if_key_not_found false", filter("pool", present, wrapperspb.Bool(false)), none, false},
		{"absent key, match_if_key_not_found unset (true)", filter("tenant", present, nil), withMeta, true},
		{"present key, string mismatch", filter("client", exact, wrapperspb.Bool(false)), withMeta, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := metadataLogFilter(tt.f, "filter")
			if err != nil {
				t.Fatal(err)
			}
			if got := f(tt.info); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMetadataLogFilterWithoutValueRefused(t *testing.T) {
	f := &accesslogv3.MetadataFilter{Matcher: &matcherv3.MetadataMatcher{Filter: "llmproc",
		Path: []*matcherv3.MetadataMatcher_PathSegment{{Segment: &matcherv3.MetadataMatcher_PathSegment_Key{Key: "pool"}}}}}
	if _, err := metadataLogFilter(f, "filter"); err == nil {
		t.Error("a metadata filter without a value matcher was accepted")
	}
}
