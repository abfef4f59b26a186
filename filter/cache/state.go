package cache

// ProviderState reports whether a Responses API body leans on state the
// provider keeps rather than carrying its whole input: a
// previous_response_id (one llmproc expanded from its own store is gone
// from the body by the time the cache sees it), a conversation, a stored
// prompt, or a background run. The body then does not show everything the
// answer depends on but the latest user turn, so the normalized and
// semantic tiers, which compare that turn loosely, leave it alone.
func (d *Doc) ProviderState() bool { return providerState(d.Root()) }

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
