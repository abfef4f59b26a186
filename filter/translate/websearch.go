package translate

import (
	"strconv"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// This file maps web search across schemas. The hub asks for it with
// OpenAI's web_search_options ({search_context_size, user_location:
// {type: "approximate", approximate: {city, region, country, timezone}}}),
// which becomes Anthropic's web_search server tool (web_search_20250305,
// user_location mapped; search_context_size has no equivalent) and Gemini's
// google_search grounding tool. Citations come back as OpenAI's
// message.annotations (url_citation with start_index and end_index counted
// in characters of content): from Anthropic's text-block citations
// (web_search_result_location) and Gemini's groundingMetadata
// (groundingSupports over groundingChunks).

// Annotation is one url_citation of an answer's content: the characters
// [Start, End) of the content cite URL.
type Annotation struct {
	URL, Title string
	Start, End int
	// CitedText is the text the source supports, when the provider says
	// (Anthropic's cited_text, Gemini's segment text).
	CitedText string
}

func appendAnnotations(b []byte, a []Annotation) []byte {
	b = append(b, '[')
	for i, an := range a {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"type":"url_citation","url_citation":{"start_index":`...)
		b = strconv.AppendInt(b, int64(an.Start), 10)
		b = append(b, `,"end_index":`...)
		b = strconv.AppendInt(b, int64(an.End), 10)
		b = append(b, `,"url":`...)
		b = appendJSONString(b, an.URL)
		b = append(b, `,"title":`...)
		b = appendJSONString(b, an.Title)
		b = append(b, "}}"...)
	}
	return append(b, ']')
}

// webSearchOptions is the hub's web_search_options, read once.
type webSearchOptions struct {
	set                             bool
	city, region, country, timezone string
}

func readWebSearchOptions(v gjson.Result) webSearchOptions {
	if !v.IsObject() {
		return webSearchOptions{}
	}
	loc := v.Get("user_location.approximate")
	return webSearchOptions{set: true, city: loc.Get("city").Str, region: loc.Get("region").Str,
		country: loc.Get("country").Str, timezone: loc.Get("timezone").Str}
}

// appendAnthropicWebSearch writes Anthropic's web search server tool.
func appendAnthropicWebSearch(b []byte, o webSearchOptions) []byte {
	b = append(b, `{"type":"web_search_20250305","name":"web_search"`...)
	if o.city != "" || o.region != "" || o.country != "" || o.timezone != "" {
		b = append(b, `,"user_location":{"type":"approximate"`...)
		for _, f := range [][2]string{{"city", o.city}, {"region", o.region}, {"country", o.country}, {"timezone", o.timezone}} {
			if f[1] != "" {
				b = append(b, `,"`...)
				b = append(b, f[0]...)
				b = append(b, `":`...)
				b = appendJSONString(b, f[1])
			}
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// runeCount counts the characters annotations are indexed in.
func runeCount(s string) int { return utf8.RuneCountInString(s) }

// hubAnnotations reads OpenAI annotations (url_citation entries).
func hubAnnotations(v gjson.Result) []Annotation {
	var out []Annotation
	v.ForEach(func(_, a gjson.Result) bool {
		if a.Get("type").Str != "url_citation" {
			return true
		}
		c := a.Get("url_citation")
		out = append(out, Annotation{URL: c.Get("url").Str, Title: c.Get("title").Str,
			Start: int(c.Get("start_index").Int()), End: int(c.Get("end_index").Int())})
		return true
	})
	return out
}
