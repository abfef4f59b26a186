package cache

import (
	"bytes"

	"github.com/tidwall/gjson"
)

// NewEmbeddingsAssembler returns an Assembler for a JSON embeddings answer
// (POST /v1/embeddings): it is stored byte for byte as the provider sent it,
// and ReplayJSON serves it so. Finish refuses a body that is cut or not a
// JSON object (SkipCut, SkipInvalid), one with an error, no "data" array
// (SkipInvalid) or no usage object (SkipNoUsage), and one over maxBytes
// (SkipTooLarge).
func NewEmbeddingsAssembler(maxBytes int) *Assembler {
	return &Assembler{maxBytes: maxBytes, verbatim: true}
}

// finishVerbatim is Finish for NewEmbeddingsAssembler.
func (a *Assembler) finishVerbatim() ([]byte, bool) {
	body := bytes.TrimSpace(a.body)
	switch {
	case a.skip != "":
	case len(body) == 0 || !gjson.ValidBytes(body):
		a.refuse(SkipCut)
	case a.maxBytes > 0 && len(body) > a.maxBytes:
		a.refuse(SkipTooLarge)
	}
	if a.skip != "" {
		return nil, false
	}
	v := gjson.ParseBytes(body)
	switch {
	case !v.IsObject() || v.Get("error").Exists() || !v.Get("data").IsArray():
		a.refuse(SkipInvalid)
	case !v.Get("usage").IsObject():
		a.refuse(SkipNoUsage)
	}
	if a.skip != "" {
		return nil, false
	}
	return bytes.Clone(body), true
}
