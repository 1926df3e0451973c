package config

import (
	"fmt"
	"regexp"
	"strings"

	yaml3 "go.yaml.in/yaml/v3"
)

// section is one top-level key of the file and the lines it spans.
type section struct {
	key   string
	key3  *yaml3.Node // the key node
	value *yaml3.Node
	start int // line of the key
	end   int // last line before the next top-level key (or of the file)
}

// document is the file's text split into lines, with its top-level sections.
type document struct {
	lines    []string
	sections []section
	// first is the line of the first top-level key; the lines before it
	// (comments, "---") are kept in every partial text.
	first int
}

// splitSections finds the top-level sections of the file. root is the
// document's root node, nil for an empty file.
func splitSections(content []byte, root *yaml3.Node) (*document, error) {
	d := &document{lines: strings.Split(string(content), "\n")}
	d.first = len(d.lines) + 1
	if root == nil {
		return d, nil
	}
	if root.Kind != yaml3.MappingNode {
		return nil, fmt.Errorf("the top level must be a mapping of section names (global, scrape_configs, storage…), got %s", kindName(root))
	}
	if root.Style&yaml3.FlowStyle != 0 {
		return nil, fmt.Errorf("the top level must be a block mapping with one section per line, not a flow mapping {…}")
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i]
		d.sections = append(d.sections, section{key: k.Value, key3: k, value: root.Content[i+1], start: k.Line})
	}
	for i := range d.sections {
		if i+1 < len(d.sections) {
			d.sections[i].end = d.sections[i+1].start - 1
		} else {
			d.sections[i].end = len(d.lines)
		}
	}
	if len(d.sections) > 0 {
		d.first = d.sections[0].start
	}
	return d, nil
}

func (d *document) section(key string) *section {
	for i := range d.sections {
		if d.sections[i].key == key {
			return &d.sections[i]
		}
	}
	return nil
}

// text returns the file with every line outside the kept ranges blanked, so
// line numbers in decoder errors stay those of the original file.
func (d *document) text(keep ...[2]int) string {
	out := make([]string, len(d.lines))
	for i, l := range d.lines {
		n := i + 1
		if n < d.first {
			out[i] = l
			continue
		}
		for _, r := range keep {
			if n >= r[0] && n <= r[1] {
				out[i] = l
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

var envRE = regexp.MustCompile(`\$?\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces ${NAME} with the environment variable NAME on lines
// [from, to] (comment-only lines are left alone); "$${NAME}" stands for a
// literal "${NAME}". Line numbers never change: a value holding a newline is
// a problem and is not substituted.
func (d *document) expandEnv(from, to int, lookup func(string) (string, bool)) []Problem {
	var problems []Problem
	for n := from; n <= to && n <= len(d.lines); n++ {
		l := d.lines[n-1]
		if !strings.Contains(l, "${") || strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		d.lines[n-1] = envRE.ReplaceAllStringFunc(l, func(m string) string {
			if strings.HasPrefix(m, "$$") {
				return m[1:]
			}
			name := m[2 : len(m)-1]
			v, ok := lookup(name)
			switch {
			case !ok:
				problems = append(problems, Problem{Line: n, Message: fmt.Sprintf("environment variable %q is not set", name)})
				return ""
			case strings.ContainsAny(v, "\r\n"):
				problems = append(problems, Problem{Line: n, Message: fmt.Sprintf("environment variable %q holds a newline", name)})
				return ""
			}
			return v
		})
	}
	return problems
}

// parseRoot parses content with yaml.v3 and returns the root node, nil when the
// file holds no document (empty or only comments).
func parseRoot(content []byte) (*yaml3.Node, error) {
	var doc yaml3.Node
	if err := yaml3.Unmarshal(content, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml3.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	root := resolveAlias(doc.Content[0])
	if isNull(root) {
		return nil, nil
	}
	return root, nil
}
