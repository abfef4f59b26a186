package validate

import "math"

// OpenAI's other request bodies: POST /v1/responses, /v1/embeddings and
// /v1/completions, as OpenAI documents them. llmproc passes them to
// backends that speak them natively, so only the members llmproc reads (or
// a provider would refuse for their type) are checked; the rest pass
// unchecked.

// Responses validates an OpenAI Responses API request body.
func Responses(body []byte, o Options) error {
	return runBody(body, o, false, (*parser).responses)
}

// Embeddings validates an OpenAI embeddings request body.
func Embeddings(body []byte, o Options) error {
	return runBody(body, o, false, (*parser).embeddings)
}

// Completions validates an OpenAI legacy completions request body.
func Completions(body []byte, o Options) error {
	return runBody(body, o, false, (*parser).completions)
}

func (p *parser) responses(top func(string, []byte)) {
	const hasModel seen = 1
	var s seen
	p.body(top, func(k string) {
		switch k {
		case "model":
			s.add(hasModel)
			p.modelName()
		case "input":
			if p.want(tStr|tArr) && p.peek() == tArr {
				p.array(0, func(int) { p.anyObject(0) })
			} else {
				p.str(0)
			}
		case "instructions", "previous_response_id", "user", "service_tier", "prompt_cache_key", "safety_identifier", "truncation":
			p.str(nullable)
		case "stream", "store", "background", "parallel_tool_calls":
			p.boolean(nullable)
		case "max_output_tokens":
			p.integer(nullable, 1, math.MaxInt64)
		case "max_tool_calls":
			p.integer(nullable, 1, math.MaxInt64)
		case "temperature":
			p.num(nullable, 0, 2)
		case "top_p":
			p.num(nullable, 0, 1)
		case "tools":
			if p.is(nullable, tArr) {
				p.array(0, func(int) { p.anyObject(0) })
			}
		case "include":
			p.strings(nullable)
		case "metadata":
			p.stringMap(nullable)
		case "reasoning", "text", "stream_options":
			p.anyObject(nullable)
		default:
			p.any()
		}
	})
	if p.err == nil && !s.has(hasModel) {
		p.missingModel()
	}
}

func (p *parser) embeddings(top func(string, []byte)) {
	const (
		hasModel seen = 1 << iota
		hasInput
	)
	var s seen
	p.body(top, func(k string) {
		switch k {
		case "model":
			s.add(hasModel)
			p.modelName()
		case "input":
			s.add(hasInput)
			p.promptInput()
		case "encoding_format":
			p.enum(nullable, "float", "base64")
		case "dimensions":
			p.integer(nullable, 1, math.MaxInt64)
		case "user":
			p.str(nullable)
		default:
			p.any()
		}
	})
	switch {
	case p.err != nil:
	case !s.has(hasModel):
		p.missingModel()
	case !s.has(hasInput):
		p.missing("input")
	}
}

func (p *parser) completions(top func(string, []byte)) {
	const (
		hasModel seen = 1 << iota
		hasPrompt
	)
	var s seen
	p.body(top, func(k string) {
		switch k {
		case "model":
			s.add(hasModel)
			p.modelName()
		case "prompt":
			s.add(hasPrompt)
			p.promptInput()
		case "stream", "echo":
			p.boolean(nullable)
		case "stream_options":
			p.anyObject(nullable)
		case "max_tokens":
			p.integer(nullable, 0, math.MaxInt64)
		case "n", "best_of":
			p.integer(nullable, 1, 128)
		case "temperature":
			p.num(nullable, 0, 2)
		case "top_p":
			p.num(nullable, 0, 1)
		case "suffix", "user":
			p.str(nullable)
		default:
			p.any()
		}
	})
	switch {
	case p.err != nil:
	case !s.has(hasModel):
		p.missingModel()
	case !s.has(hasPrompt):
		p.missing("prompt")
	}
}

// promptInput reads an embeddings input or a completions prompt: a string,
// an array of strings, an array of tokens or an array of token arrays.
func (p *parser) promptInput() {
	if !p.want(tStr|tArr) || p.peek() == tStr {
		p.str(0)
		return
	}
	p.array(1, func(int) {
		switch p.peek() {
		case tStr:
			p.str(0)
		case tArr:
			p.array(1, func(int) { p.integer(0, 0, math.MaxInt64) })
		default:
			p.integer(0, 0, math.MaxInt64)
		}
	})
}
