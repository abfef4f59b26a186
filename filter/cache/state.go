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

// MutableProviderState reports whether a Responses API body depends on
// state the provider may change between two identical requests, so that no
// tier, the exact one included, may answer it from the cache: a
// conversation (its items grow with every turn), a stored prompt without a
// version (it means the prompt's latest version), or a background run
// (its answer is a queued response object, not the model's answer). A
// previous_response_id is not among them: a stored response never
// changes, so the same id and input are the same request.
func (d *Doc) MutableProviderState() bool {
	mutable := false
	d.Root().Each(func(k string, v Value) bool {
		switch k {
		case "conversation":
			mutable = v.kind() != 'z' && !(v.IsString() && v.Str() == "")
		case "prompt":
			mutable = v.IsObject() && !nonEmpty(v.Get("version"))
		case "background":
			mutable = v.kind() == 't'
		}
		return !mutable
	})
	return mutable
}

// nonEmpty: a present, non-null value other than "".
func nonEmpty(v Value) bool {
	return v.Exists() && v.kind() != 'z' && !(v.IsString() && v.Str() == "")
}
