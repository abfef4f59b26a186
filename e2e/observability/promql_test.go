package observability

import (
	"fmt"
	"strings"
)

// selector is one metric a PromQL expression reads: its name and the label
// names its matchers use.
type selector struct {
	name   string
	labels []string
}

// notMetrics are the PromQL words that are not metric names when no "("
// follows them directly: aggregation operators (followed by by/without),
// binary operators and modifiers.
var notMetrics = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true,
	"stddev": true, "stdvar": true, "count": true, "count_values": true,
	"bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true,
	"and": true, "or": true, "unless": true, "atan2": true, "bool": true,
	"offset": true, "inf": true, "nan": true,
}

// labelLists are the words followed by a parenthesized list of label names.
var labelLists = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true,
	"group_left": true, "group_right": true,
}

// selectors lists the metrics expr reads, in order, and the label names in
// its by, without, on, ignoring and group_left/right lists, by scanning its tokens:
// an identifier is a metric name unless a "(" follows it (a function or an
// aggregation), it is a PromQL keyword, or it sits in a label list, a
// matcher block, a range or a string. Grafana variables are allowed only
// inside strings and ranges, where Grafana puts them. It is no full PromQL
// parser (promtool checks the syntax); a selector without a metric name is
// an error, because it cannot be checked.
func selectors(expr string) ([]selector, []string, error) {
	var out []selector
	var grouping []string
	last := -1 // index in out of the metric a "{" may belong to
	i := 0
	for i < len(expr) {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"' || c == '\'' || c == '`':
			end, err := skipString(expr, i)
			if err != nil {
				return nil, nil, err
			}
			i = end
			last = -1
		case c == '[':
			end := strings.IndexByte(expr[i:], ']')
			if end < 0 {
				return nil, nil, fmt.Errorf("unclosed [ at offset %d", i)
			}
			i += end + 1
			last = -1
		case c == '{':
			if last < 0 {
				return nil, nil, fmt.Errorf("selector without a metric name at offset %d", i)
			}
			labels, end, err := matcherLabels(expr, i)
			if err != nil {
				return nil, nil, err
			}
			out[last].labels = append(out[last].labels, labels...)
			i = end
			last = -1
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isIdentChar(expr[i]) || expr[i] == '.') {
				i++
			}
			last = -1
		case isIdentStart(c):
			start := i
			for i < len(expr) && isIdentChar(expr[i]) {
				i++
			}
			word := expr[start:i]
			next := skipSpace(expr, i)
			switch {
			case labelLists[strings.ToLower(word)] && next < len(expr) && expr[next] == '(':
				end := strings.IndexByte(expr[next:], ')')
				if end < 0 {
					return nil, nil, fmt.Errorf("unclosed label list after %q", word)
				}
				for _, l := range strings.Split(expr[next+1:next+end], ",") {
					if l = strings.TrimSpace(l); l != "" {
						grouping = append(grouping, l)
					}
				}
				i = next + end + 1
				last = -1
			case next < len(expr) && expr[next] == '(', notMetrics[strings.ToLower(word)]:
				last = -1
			default:
				out = append(out, selector{name: word})
				last = len(out) - 1
			}
		case c == '$':
			return nil, nil, fmt.Errorf("variable outside a string or range at offset %d", i)
		default:
			i++
			last = -1
		}
	}
	return out, grouping, nil
}

// matcherLabels reads the label matchers block that starts at expr[open]
// ('{') and returns its label names and the offset after the closing '}'.
func matcherLabels(expr string, open int) ([]string, int, error) {
	var labels []string
	i := open + 1
	for {
		i = skipSpace(expr, i)
		if i >= len(expr) {
			return nil, 0, fmt.Errorf("unclosed { at offset %d", open)
		}
		if expr[i] == '}' {
			return labels, i + 1, nil
		}
		if expr[i] == ',' {
			i++
			continue
		}
		start := i
		for i < len(expr) && isIdentChar(expr[i]) {
			i++
		}
		if start == i {
			return nil, 0, fmt.Errorf("label name expected at offset %d", i)
		}
		labels = append(labels, expr[start:i])
		i = skipSpace(expr, i)
		for i < len(expr) && strings.IndexByte("=!~", expr[i]) >= 0 {
			i++
		}
		i = skipSpace(expr, i)
		if i >= len(expr) || (expr[i] != '"' && expr[i] != '\'' && expr[i] != '`') {
			return nil, 0, fmt.Errorf("quoted label value expected at offset %d", i)
		}
		end, err := skipString(expr, i)
		if err != nil {
			return nil, 0, err
		}
		i = end
	}
}

// skipString returns the offset after the string literal at expr[i];
// backquoted strings have no escapes.
func skipString(expr string, i int) (int, error) {
	q := expr[i]
	for j := i + 1; j < len(expr); j++ {
		switch {
		case expr[j] == '\\' && q != '`':
			j++
		case expr[j] == q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unclosed string at offset %d", i)
}

func skipSpace(s string, i int) int {
	for i < len(s) && strings.IndexByte(" \t\r\n", s[i]) >= 0 {
		i++
	}
	return i
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
