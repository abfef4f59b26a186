package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// yaml.v3 reports decoding problems as "line N: ..." strings that name Go
// types ("field urll not found in type config.Backend"). explainYAML rewrites
// each into the form Validate uses: the field path first, then what is wrong,
// then the line.

var (
	reUnknownField = regexp.MustCompile(`^line (\d+): field (.*) not found in type (\S+)$`)
	reDuplicateKey = regexp.MustCompile(`^line (\d+): mapping key (".*") already defined at line (\d+)$`)
	reWrongType    = regexp.MustCompile("^line (\\d+): cannot unmarshal \\S+(?: `(.*)`)? into (.+)$")
	reOwnError     = regexp.MustCompile(`^line (\d+): column (\d+): (.*)$`)
)

// nodeError reports a bad value from an UnmarshalYAML method. It is a
// *yaml.TypeError so that decoding goes on and collects every problem, and it
// carries line and column so explainYAML can find the field path.
func nodeError(n *yaml.Node, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: column %d: %s", n.Line, n.Column, msg)}}
}

// explainYAML turns an error from yaml.Decoder.Decode into one error per
// problem, each naming its field path.
func explainYAML(data []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		root = yaml.Node{}
	}
	idx := &nodeIndex{}
	idx.walk(&root, "")
	fields := map[string][]string{}
	knownFields(reflect.TypeFor[Config](), fields)
	errs := make([]error, 0, len(te.Errors))
	for _, msg := range te.Errors {
		errs = append(errs, errors.New(idx.explain(msg, fields)))
	}
	return errors.Join(errs...)
}

// place is one node of the parsed document with the field path it sits at.
// For a mapping key, path is the mapping's path; for a value, its own.
type place struct {
	node *yaml.Node
	path string
	key  bool
	used bool
}

// nodeIndex lists every node in document order so that a "line N" message can
// be traced back to a field path.
type nodeIndex struct{ places []*place }

func (x *nodeIndex) walk(n *yaml.Node, path string) {
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			x.walk(c, path)
		}
		return
	}
	x.places = append(x.places, &place{node: n, path: path})
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			x.places = append(x.places, &place{node: k, path: path, key: true})
			child := k.Value
			if path != "" {
				child = path + "." + k.Value
			}
			x.walk(v, child)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			x.walk(c, fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

// find returns the first place not yet claimed by another message on the
// given line that satisfies match, so that repeated identical messages on one
// line (flow style) map to successive nodes.
func (x *nodeIndex) find(line int, key bool, match func(*yaml.Node) bool) *place {
	for _, p := range x.places {
		if !p.used && p.key == key && p.node.Line == line && match(p.node) {
			p.used = true
			return p
		}
	}
	return nil
}

func (x *nodeIndex) explain(msg string, fields map[string][]string) string {
	if m := reOwnError.FindStringSubmatch(msg); m != nil {
		line, col := atoi(m[1]), atoi(m[2])
		p := x.find(line, false, func(n *yaml.Node) bool { return n.Column == col })
		return located(p, line, m[3])
	}
	if m := reUnknownField.FindStringSubmatch(msg); m != nil {
		line, name := atoi(m[1]), m[2]
		p := x.find(line, true, func(n *yaml.Node) bool { return n.Value == name })
		text := fmt.Sprintf("unknown field %q (line %d)", name, line)
		if known := fields[m[3]]; len(known) > 0 {
			text += "; known fields are " + strings.Join(known, ", ")
		}
		if p == nil {
			return text
		}
		return pathName(p.path) + ": " + text
	}
	if m := reDuplicateKey.FindStringSubmatch(msg); m != nil {
		line := atoi(m[1])
		name, err := strconv.Unquote(m[2])
		if err != nil {
			name = m[2]
		}
		p := x.find(line, true, func(n *yaml.Node) bool { return n.Value == name })
		text := fmt.Sprintf("key %q is given twice (line %d, first at line %s)", name, line, m[3])
		if p == nil {
			return text
		}
		return pathName(p.path) + ": " + text
	}
	if m := reWrongType.FindStringSubmatch(msg); m != nil {
		line, shown, goType := atoi(m[1]), m[2], m[3]
		p := x.find(line, false, func(n *yaml.Node) bool {
			switch {
			case shown == "":
				return n.Kind != yaml.ScalarNode
			case strings.HasSuffix(shown, "..."):
				return strings.HasPrefix(n.Value, strings.TrimSuffix(shown, "..."))
			default:
				return n.Value == shown
			}
		})
		got := "`" + shown + "`"
		if p != nil {
			got = describe(p.node)
		}
		return located(p, line, fmt.Sprintf("want %s, got %s", wantFor(goType), got))
	}
	return msg
}

// located formats "path: text (line N)", or "line N: text" when the path is
// unknown.
func located(p *place, line int, text string) string {
	if p == nil {
		return fmt.Sprintf("line %d: %s", line, text)
	}
	return fmt.Sprintf("%s: %s (line %d)", pathName(p.path), text, line)
}

func pathName(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return strconv.Quote(n.Value)
}

// wantFor names the kind of YAML value a Go type takes.
func wantFor(goType string) string {
	t := strings.TrimLeft(goType, "*")
	switch {
	case t == "string":
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "int"):
		return "an integer"
	case strings.HasPrefix(t, "uint"):
		return "a non-negative integer"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["), strings.HasPrefix(t, "config."):
		return "a mapping"
	}
	return "a value of type " + t
}

// knownFields records, for every struct type reachable from t, its YAML field
// names in declaration order, keyed by the type's name as yaml.v3 prints it.
func knownFields(t reflect.Type, out map[string][]string) {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map:
		knownFields(t.Elem(), out)
	case reflect.Struct:
		if _, done := out[t.String()]; done {
			return
		}
		out[t.String()] = nil
		var names []string
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			names = append(names, name)
			knownFields(f.Type, out)
		}
		out[t.String()] = names
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
