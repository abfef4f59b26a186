package extproc

import "testing"

// TestResponsesMutableStateBypassesCache: a Responses request whose answer
// depends on state the provider may change between two identical bodies (a
// conversation, a stored prompt without a version, a background run) is
// neither looked up nor stored by any tier, the exact one included: the
// same {"conversation":"conv_1","input":"And then?"} wants another answer
// once the conversation has moved on. A previous_response_id (a stored
// response never changes) and a versioned prompt stay cacheable.
func TestResponsesMutableStateBypassesCache(t *testing.T) {
	h := semanticHarness(t)
	for _, c := range []struct {
		body, want string
	}{
		{`{"model":"mini","temperature":0,"conversation":"conv_1","input":"And then?"}`, "bypass"},
		{`{"model":"mini","temperature":0,"conversation":{"id":"conv_1"},"input":"And then?"}`, "bypass"},
		{`{"model":"mini","temperature":0,"prompt":{"id":"pmpt_1"},"input":"And then?"}`, "bypass"},
		{`{"model":"mini","temperature":0,"prompt":{"id":"pmpt_1","version":""},"input":"And then?"}`, "bypass"},
		{`{"model":"mini","temperature":0,"background":true,"input":"And then?"}`, "bypass"},
		{`{"model":"mini","temperature":0,"prompt":{"id":"pmpt_1","version":"3"},"input":"And then?"}`, "miss"},
		{`{"model":"mini","temperature":0,"previous_response_id":"resp_elsewhere","input":"And then?"}`, "miss"},
		{`{"model":"mini","temperature":0,"conversation":null,"background":false,"input":"And then?"}`, "miss"},
	} {
		routed, hit, _ := routeCachedAt(t, h, "/v1/responses", c.body)
		if hit != nil {
			t.Errorf("%s: served from the cache: %v", c.body, hit)
			continue
		}
		if routed[KeyCache] != c.want {
			t.Errorf("%s: cache %q, want %q", c.body, routed[KeyCache], c.want)
		}
		if stored := routed[KeyCacheKey] != ""; stored != (c.want == "miss") {
			t.Errorf("%s: store key %q (want one: %v)", c.body, routed[KeyCacheKey], c.want == "miss")
		}
	}
}
