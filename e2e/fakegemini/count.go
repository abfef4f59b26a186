package fakegemini

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/tidwall/gjson"
)

// countTokens answers models.countTokens ({"contents"} or
// {"generateContentRequest"}) with {"totalTokens"}: a quarter of the
// characters of its text parts, at least one. It is recorded like the
// other methods (Action empty: the path ends in :countTokens).
func (s *Server) countTokens(w http.ResponseWriter, r *http.Request, req Request) {
	if s.opts.Key != "" && r.Header.Get("x-goog-api-key") != s.opts.Key {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", "API_KEY_INVALID")
		return
	}
	body := gjson.ParseBytes(req.Body)
	contents := body.Get("contents")
	if g := body.Get("generateContentRequest"); g.IsObject() {
		contents = g.Get("contents")
	}
	if !contents.IsArray() {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "countTokens needs contents or generateContentRequest.", "")
		return
	}
	chars := 0
	for _, c := range contents.Array() {
		for _, p := range c.Get("parts").Array() {
			chars += len(p.Get("text").Str)
		}
	}
	w.Header().Set("content-type", "application/json; charset=UTF-8")
	json.NewEncoder(w).Encode(map[string]any{"totalTokens": max(chars/4, 1)}) //nolint:errcheck
}

// countAction reports the countTokens method in a path.
func countAction(path string) bool { return strings.HasSuffix(path, ":countTokens") }
