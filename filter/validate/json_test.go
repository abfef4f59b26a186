package validate

import (
	"bytes"
	"encoding/json"
)

// jsonObject reports, by encoding/json, whether b is one JSON object (and
// nothing but whitespace after it).
func jsonObject(b []byte) bool {
	var v any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if d.Decode(&v) != nil {
		return false
	}
	if _, ok := v.(map[string]any); !ok {
		return false
	}
	return len(bytes.TrimLeft(b[d.InputOffset():], " \t\r\n")) == 0
}
