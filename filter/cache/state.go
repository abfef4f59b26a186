package cache

import (
	"unsafe"

	"github.com/tidwall/gjson"
)

// ProviderState reports whether a Responses API body leans on state the
// provider keeps rather than carrying its whole input: a
// previous_response_id (one llmproc expanded from its own store is gone
// from the body by the time the cache sees it), a conversation, a stored
// prompt, or a background run. The body then does not show everything the
// answer depends on but the latest user turn, so the normalized and
// semantic tiers, which compare that turn loosely, leave it alone.
func ProviderState(body []byte) bool {
	s := unsafe.String(unsafe.SliceData(body), len(body))
	state := false
	gjson.Parse(s).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "previous_response_id", "conversation", "prompt":
			state = v.Type != gjson.Null && !(v.Type == gjson.String && v.Str == "")
		case "background":
			state = v.Type == gjson.True
		}
		return !state
	})
	return state
}

// providerState is ProviderState over a parsed body's top-level object.
func providerState(root Value) bool {
	state := false
	root.Each(func(k string, v Value) bool {
		switch k {
		case "previous_response_id", "conversation", "prompt":
			state = v.kind() != 'z' && !(v.IsString() && v.Str() == "")
		case "background":
			state = v.kind() == 't'
		}
		return !state
	})
	return state
}
