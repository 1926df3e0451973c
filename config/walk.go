package config

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/discovery"
	yaml2 "go.yaml.in/yaml/v2"
	yaml3 "go.yaml.in/yaml/v3"
)

var (
	unmarshalerType     = reflect.TypeFor[yaml2.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	discoveryConfigs    = reflect.TypeFor[discovery.Configs]()
)

// walker checks a yaml.v3 node tree against the Go type it will be decoded
// into, reporting every problem with its line instead of stopping at the first.
type walker struct {
	problems []Problem
	// keyLines maps a dotted field path to the line of its key (or list item).
	keyLines map[string]int
	// lineFields maps a line to the deepest field path that starts on it.
	lineFields map[int]string
}

func newWalker() *walker {
	return &walker{keyLines: map[string]int{}, lineFields: map[int]string{}}
}

func (w *walker) report(line int, field, format string, args ...any) {
	w.problems = append(w.problems, Problem{Line: line, Field: field, Message: fmt.Sprintf(format, args...)})
}

func (w *walker) mark(path string, line int) {
	if _, ok := w.keyLines[path]; !ok {
		w.keyLines[path] = line
	}
	w.lineFields[line] = path
}

// problemsIn reports whether the walk found a problem on a line in [from, to].
func (w *walker) problemsIn(from, to int) bool {
	return slices.ContainsFunc(w.problems, func(p Problem) bool { return p.Line >= from && p.Line <= to })
}

// walk checks node n, found at path and reported at line, against type t.
func (w *walker) walk(n *yaml3.Node, t reflect.Type, path string, line int) {
	n = resolveAlias(n)
	if n == nil || isNull(n) {
		return // yaml.v2 leaves the zero value (or the defaults) in place.
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	custom := implements(t, unmarshalerType)
	switch {
	case t.Kind() == reflect.Struct && custom && implements(t, unionType) && n.Kind == yaml3.MappingNode:
		before := len(w.problems)
		w.walkUnion(n, t, path)
		if len(w.problems) == before {
			w.decodeStruct(n, t, path, line)
		}
	case t.Kind() == reflect.Struct && custom && !hasYAMLTags(t):
		// A custom decoder with its own input shape (labels.Labels, relabel.Regexp, targetgroup.Group…).
		w.decodeWhole(n, t, path, n.Line)
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml3.MappingNode {
			if !custom && implements(t, textUnmarshalerType) && n.Kind == yaml3.ScalarNode {
				w.decodeWhole(n, t, path, n.Line)
				return
			}
			w.report(n.Line, path, "expected a mapping, got %s", kindName(n))
			return
		}
		before := len(w.problems)
		w.walkStruct(n, t, path)
		if custom && len(w.problems) == before {
			// The fields are fine on their own: let the type's UnmarshalYAML check
			// them against each other (e.g. relabel action without target_label).
			w.decodeStruct(n, t, path, line)
		}
	case custom, implements(t, textUnmarshalerType):
		w.decodeWhole(n, t, path, n.Line)
	case t.Kind() == reflect.Map:
		if n.Kind != yaml3.MappingNode {
			w.report(n.Line, path, "expected a mapping, got %s", kindName(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := resolveAlias(n.Content[i]), n.Content[i+1]
			p := joinPath(path, k.Value)
			w.mark(p, k.Line)
			w.decodeLeaf(k, t.Key(), p, k.Line)
			w.walk(v, t.Elem(), p, k.Line)
		}
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		if n.Kind != yaml3.SequenceNode {
			w.report(n.Line, path, "expected a list, got %s", kindName(n))
			return
		}
		for i, item := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			w.mark(p, item.Line)
			w.walk(item, t.Elem(), p, item.Line)
		}
	case t.Kind() == reflect.Interface:
		// Anything goes.
	default:
		w.decodeLeaf(n, t, path, n.Line)
	}
}

// walkStruct checks the keys of mapping n against the yaml fields of struct t.
func (w *walker) walkStruct(n *yaml3.Node, t reflect.Type, path string) {
	fields, sd := structFields(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolveAlias(n.Content[i]), n.Content[i+1]
		if k.Value == "<<" && k.Tag == "!!merge" {
			v = resolveAlias(v)
			if v.Kind == yaml3.SequenceNode {
				for _, m := range v.Content {
					w.walk(m, t, path, k.Line)
				}
			} else {
				w.walk(v, t, path, k.Line)
			}
			continue
		}
		p := joinPath(path, k.Value)
		w.mark(p, k.Line)
		ft, ok := fields[k.Value]
		if !ok {
			if sd && strings.HasSuffix(k.Value, "_sd_configs") {
				w.report(k.Line, p, "unknown service discovery type %q (known: %s)",
					strings.TrimSuffix(k.Value, "_sd_configs"), strings.Join(sdNames(), ", "))
				continue
			}
			msg := "unknown field"
			if s := suggest(k.Value, fields); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			w.report(k.Line, p, "%s", msg)
			continue
		}
		w.walk(v, ft, p, k.Line)
	}
}

// union is a mapping whose keys depend on the value of one of them
// (autoscaler.BackendConfig: name, type, and the keys of that type's
// Config). UnionFields returns the struct whose keys are allowed beside the
// union's own for value; false when value is unknown.
type union interface {
	UnionKey() string
	UnionFields(value string) (reflect.Type, bool)
}

var unionType = reflect.TypeFor[union]()

// walkUnion checks the keys of mapping n that union type t or the struct
// for its key's value list; other keys are left to t's UnmarshalYAML and
// Validate, which know what to say of them.
func (w *walker) walkUnion(n *yaml3.Node, t reflect.Type, path string) {
	u := reflect.New(t).Interface().(union)
	fields, _ := structFields(t)
	value := ""
	if v := resolveAlias(mappingValue(n, u.UnionKey())); v != nil {
		value = v.Value
	}
	if ft, ok := u.UnionFields(value); ok {
		addFields(ft, fields)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolveAlias(n.Content[i]), n.Content[i+1]
		p := joinPath(path, k.Value)
		w.mark(p, k.Line)
		if ft, ok := fields[k.Value]; ok {
			w.walk(v, ft, p, k.Line)
		}
	}
}

// decodeLeaf decodes a scalar node on its own with yaml.v2, as the real decode would.
func (w *walker) decodeLeaf(n *yaml3.Node, t reflect.Type, path string, line int) {
	if t.Kind() == reflect.String && !implements(t, unmarshalerType) && !implements(t, textUnmarshalerType) && n.Kind == yaml3.ScalarNode {
		return
	}
	w.decodeWhole(n, t, path, line)
}

// decodeWhole re-encodes n and decodes it with yaml.v2 into a new t, reporting
// the decoder's errors at line (errors inside a snippet have no useful line).
func (w *walker) decodeWhole(n *yaml3.Node, t reflect.Type, path string, line int) {
	w.decodeAs(n, t, path, line, func(string) (int, string) { return line, path })
}

// decodeStruct decodes a mapping whose fields are fine with yaml.v2, so that the
// type's UnmarshalYAML checks them together; its errors have no line, so they
// go to the key they name when known (see hints), else to line.
func (w *walker) decodeStruct(n *yaml3.Node, t reflect.Type, path string, line int) {
	w.decodeAs(n, t, path, line, func(msg string) (int, string) { return hintLine(n, path, line, msg) })
}

// decodeAs decodes n into a new t with yaml.v2 and reports each error where
// place puts it.
func (w *walker) decodeAs(n *yaml3.Node, t reflect.Type, path string, line int, place func(msg string) (int, string)) {
	text, err := yaml3.Marshal(n)
	if err != nil {
		w.report(line, path, "%v", err)
		return
	}
	if err := yaml2.UnmarshalStrict(text, reflect.New(t).Interface()); err != nil {
		for _, e := range splitYAMLError(err) {
			l, f := place(e.msg)
			w.report(l, f, "%s", e.msg)
		}
	}
}

// lineError is one message from a yaml.v2 error, with its line when it has one.
type lineError struct {
	line int
	msg  string
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// splitYAMLError splits a yaml.v2 (or Prometheus) error into messages, one per line of text.
func splitYAMLError(err error) []lineError {
	var msgs []string
	if te := (*yaml2.TypeError)(nil); errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = strings.Split(err.Error(), "\n")
	}
	var out []lineError
	for _, m := range msgs {
		m = strings.TrimSpace(m)
		if m == "" || m == "yaml: unmarshal errors:" {
			continue
		}
		if sub := lineRE.FindStringSubmatch(m); sub != nil {
			l, _ := strconv.Atoi(sub[1])
			out = append(out, lineError{line: l, msg: sub[2]})
			continue
		}
		out = append(out, lineError{msg: strings.TrimPrefix(m, "yaml: ")})
	}
	return out
}

// structFields returns the yaml keys of struct t and their types, following
// yaml.v2's rules (",inline", "-", lower-cased field name when untagged).
// A struct with a discovery.Configs field accepts Prometheus' registered
// "<name>_sd_configs" keys as well; sd reports whether it has one.
func structFields(t reflect.Type) (fields map[string]reflect.Type, sd bool) {
	fields = map[string]reflect.Type{}
	if sd = hasConfigsField(t); sd {
		t = sdStructType(t)
	}
	addFields(t, fields)
	return fields, sd
}

func addFields(t reflect.Type, fields map[string]reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.PkgPath != "" && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if slices.Contains(strings.Split(opts, ","), "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(ft, fields)
			}
			continue
		}
		if f.PkgPath != "" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
}

func hasConfigsField(t reflect.Type) bool {
	for i := range t.NumField() {
		if t.Field(i).Type == discoveryConfigs {
			return true
		}
	}
	return false
}

var errCaptured = errors.New("type captured")

// sdStructType returns the struct type that discovery.UnmarshalYAMLWithInlineConfigs
// really decodes t through: t's exported fields plus one "<name>_sd_configs" list per
// registered service discovery. It is captured by handing the function an unmarshal
// callback that records the type and stops.
func sdStructType(t reflect.Type) reflect.Type {
	var captured reflect.Type
	_ = discovery.UnmarshalYAMLWithInlineConfigs(reflect.New(t).Interface(), func(v any) error {
		captured = reflect.TypeOf(v).Elem()
		return errCaptured
	})
	if captured == nil {
		return t
	}
	return captured
}

// sdNames lists the registered service discovery names usable as "<name>_sd_configs".
func sdNames() []string {
	return slices.DeleteFunc(discovery.RegisteredConfigNames(), func(s string) bool { return s == "static" })
}

// hasYAMLTags reports whether struct t has a field with a yaml tag, which tells a
// Prometheus-style "type plain" UnmarshalYAML from one with its own input shape.
func hasYAMLTags(t reflect.Type) bool {
	if hasConfigsField(t) {
		return true
	}
	for i := range t.NumField() {
		if _, ok := t.Field(i).Tag.Lookup("yaml"); ok {
			return true
		}
	}
	return false
}

func implements(t, iface reflect.Type) bool {
	return t.Implements(iface) || reflect.PointerTo(t).Implements(iface)
}

func resolveAlias(n *yaml3.Node) *yaml3.Node {
	for n != nil && n.Kind == yaml3.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml3.Node) bool {
	return n.Kind == yaml3.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml3.Node) string {
	switch n.Kind {
	case yaml3.MappingNode:
		return "a mapping"
	case yaml3.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// suggest returns the known key closest to key when it is a likely typo.
func suggest(key string, fields map[string]reflect.Type) string {
	best, bestD := "", 3
	for f := range fields {
		if d := distance(key, f); d < bestD || (d == bestD && f < best) {
			best, bestD = f, d
		}
	}
	if bestD > 2 {
		return ""
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
