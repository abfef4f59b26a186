package translate

import "github.com/llmproc/llmproc/filter/config"

// BodyFacts is what the router role read in the client's body that decides
// whether an OpenAI-shaped backend needs it rewritten (rewriteOpenAI), so
// that an attempt can be prepared from the request headers alone.
type BodyFacts struct {
	// ThinkingBlocks: the body has the hub's "thinking_blocks" somewhere.
	ThinkingBlocks bool
	// StreamOptions: the body has a top-level stream_options.
	StreamOptions bool
}

// Unchanged is implemented by translators that can tell, from the request's
// facts alone, that the client's body goes to the backend byte for byte.
type Unchanged interface {
	// Unchanged returns the attempt's path and headers (Body nil) when
	// Request, given a body with these facts, would send the body as it is;
	// ok is false when the body may need a rewrite (the attempt then waits
	// for it). r.Body is not read.
	Unchanged(r *Request, f BodyFacts) (up *Upstream, ok bool)
}

// unchangedOpenAI reports whether rewriteOpenAI(r, model, streamOptions)
// returns nil for every body with the facts f. It errs on the side of the
// body: any drop_params entry or max_tokens_field may match a member the
// facts do not describe.
func unchangedOpenAI(r *Request, f BodyFacts, model string, streamOptions bool) bool {
	be := r.Backend
	switch {
	case len(be.DropParams) > 0, be.Compat.MaxTokensField != "", f.ThinkingBlocks:
		return false
	case model != "" && r.ClientModel != model:
		return false
	case !streamOptions:
		return !f.StreamOptions
	}
	return !r.Stream || r.UsageRequested
}

func (openAI) Unchanged(r *Request, f BodyFacts) (*Upstream, bool) {
	be := r.Backend
	if !unchangedOpenAI(r, f, r.Model, streamOptionsAllowed(be)) {
		return nil, false
	}
	return withCredential(&Upstream{Path: be.BasePath + chatPath}, be.Schema, be.Azure.Auth, be.Credential), true
}

func (azure) Unchanged(r *Request, f BodyFacts) (*Upstream, bool) {
	be := r.Backend
	if !unchangedOpenAI(r, f, "", streamOptionsAllowed(be) && azureStreamOptions(be.Azure.APIVersion)) {
		return nil, false
	}
	return withCredential(&Upstream{Path: azurePath(r)}, be.Schema, be.Azure.Auth, be.Credential), true
}

// StreamUsage reports whether b is OpenAI-shaped, so that its attempts ask
// a stream without stream_options.include_usage for usage (rewriteOpenAI),
// and whether it takes stream_options at all. The router role adds
// include_usage for every attempt when a pool's OpenAI-shaped backends all
// take it; backends of other schemas build their own body and ignore it.
func StreamUsage(b *config.RBackend) (openAIShaped, takes bool) {
	switch b.Schema {
	case "openai", "openai-compatible":
		return true, streamOptionsAllowed(b)
	case "azure-openai":
		return true, streamOptionsAllowed(b) && azureStreamOptions(b.Azure.APIVersion)
	}
	return false, false
}
