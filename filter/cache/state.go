package cache

// ProviderState reports whether a Responses API body leans on state the
// provider keeps rather than carrying its whole input: a
// previous_response_id (one llmproc expanded from its own store is gone
// from the body by the time the cache sees it), a conversation, a stored
// prompt, or a background run. The body then does not show everything the
// answer depends on but the latest user turn, so the normalized and
// semantic tiers, which compare that turn loosely, leave it alone.
func (d *Doc) ProviderState() bool {
	provider, _ := state(d.Root())
	return provider
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
	_, mutable := state(d.Root())
	return mutable
}

// state walks the top-level members once for both reports.
func state(root Value) (provider, mutable bool) {
	root.Each(func(k string, v Value) bool {
		switch k {
		case "previous_response_id":
			provider = provider || nonEmpty(v)
		case "conversation":
			if nonEmpty(v) {
				provider, mutable = true, true
			}
		case "prompt":
			if nonEmpty(v) {
				provider = true
				mutable = mutable || (v.IsObject() && !nonEmpty(v.Get("version")))
			}
		case "background":
			if v.kind() == 't' {
				provider, mutable = true, true
			}
		}
		return !mutable
	})
	return provider, mutable
}

// nonEmpty: a present, non-null value other than "".
func nonEmpty(v Value) bool {
	return v.Exists() && v.kind() != 'z' && !(v.IsString() && v.Str() == "")
}
