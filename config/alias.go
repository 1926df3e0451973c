package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	yaml3 "go.yaml.in/yaml/v3"
)

// Limits of alias expansion: a file whose aliases expand to more is refused
// (the "billion laughs": ten aliases of ten aliases of … fit in a few lines).
const (
	maxAliasNodes = 1 << 20
	maxAliasBytes = 64 << 20
)

var errAliasBomb = fmt.Errorf("aliases expand to more than %d nodes or %d MiB (an alias bomb?)", maxAliasNodes, maxAliasBytes>>20)

// expandAliases returns lines with every alias (*name, including the ones of
// merge keys "<<: *name") replaced in place by a one-line flow rendering of
// the node it names, so that the text holds no alias and line numbers do not
// move. Every later pass decodes parts of the file on their own (a section, a
// scrape config, one value); with the aliases expanded, an anchor defined in
// another part is never out of scope, and yaml.v2 sees the values the whole
// file means. root is the file's root node.
func expandAliases(lines []string, root *yaml3.Node) ([]string, *Problem) {
	var aliases []*yaml3.Node
	var collect func(n *yaml3.Node)
	collect = func(n *yaml3.Node) {
		if n.Kind == yaml3.AliasNode {
			aliases = append(aliases, n)
			return // the anchored node is walked where it is defined
		}
		for _, c := range n.Content {
			collect(c)
		}
	}
	collect(root)
	if len(aliases) == 0 {
		return lines, nil
	}
	// Right to left on each line, so that earlier columns stay valid.
	slices.SortFunc(aliases, func(a, b *yaml3.Node) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(b.Column, a.Column))
	})
	out := slices.Clone(lines)
	r := &aliasRenderer{}
	for _, a := range aliases {
		if a.Line < 1 || a.Line > len(out) {
			return nil, &Problem{Line: a.Line, Message: fmt.Sprintf("alias *%s: no such line", a.Value)}
		}
		var b strings.Builder
		if err := r.render(&b, a.Alias); err != nil {
			return nil, &Problem{Line: a.Line, Message: fmt.Sprintf("alias *%s: %v", a.Value, err)}
		}
		r.bytes += b.Len()
		line := []rune(out[a.Line-1])
		token := []rune("*" + a.Value)
		at := a.Column - 1
		if at < 0 || at+len(token) > len(line) || string(line[at:at+len(token)]) != string(token) {
			return nil, &Problem{Line: a.Line, Message: fmt.Sprintf("alias *%s not found at column %d", a.Value, a.Column)}
		}
		out[a.Line-1] = string(line[:at]) + b.String() + string(line[at+len(token):])
	}
	return out, nil
}

// aliasRenderer writes nodes in YAML flow style on one line, counting the
// nodes and bytes it writes over all the aliases of a file.
type aliasRenderer struct {
	nodes, bytes int
}

func (r *aliasRenderer) render(b *strings.Builder, n *yaml3.Node) error {
	r.nodes++
	if r.nodes > maxAliasNodes || r.bytes+b.Len() > maxAliasBytes {
		return errAliasBomb
	}
	switch n.Kind {
	case yaml3.AliasNode:
		return r.render(b, n.Alias)
	case yaml3.DocumentNode:
		if len(n.Content) == 0 {
			b.WriteString("null")
			return nil
		}
		return r.render(b, n.Content[0])
	case yaml3.MappingNode, yaml3.SequenceNode:
		open, close := "[", "]"
		step := 1
		if n.Kind == yaml3.MappingNode {
			open, close, step = "{", "}", 2
		}
		b.WriteString(tagPrefix(n))
		b.WriteString(open)
		for i := 0; i+step-1 < len(n.Content); i += step {
			if i > 0 {
				b.WriteString(", ")
			}
			if err := r.render(b, n.Content[i]); err != nil {
				return err
			}
			if step == 2 {
				b.WriteString(": ")
				if err := r.render(b, n.Content[i+1]); err != nil {
					return err
				}
			}
		}
		b.WriteString(close)
	case yaml3.ScalarNode:
		b.WriteString(tagPrefix(n))
		b.WriteString(flowScalar(n))
	default:
		return errors.New("unexpected YAML node kind")
	}
	return nil
}

// tagPrefix is the explicit tag of n ("!!str ", "!secret ") when the file
// wrote one.
func tagPrefix(n *yaml3.Node) string {
	if n.Style&yaml3.TaggedStyle == 0 || n.Tag == "" {
		return ""
	}
	if strings.HasPrefix(n.Tag, "!") {
		return n.Tag + " "
	}
	return "!<" + n.Tag + "> "
}

// flowScalar writes scalar n so that yaml.v2 reads the same value: plain as
// written when that is safe in a flow collection on one line, else
// double-quoted (a plain scalar that is not safe there holds a flow
// indicator, so it was a string anyway).
func flowScalar(n *yaml3.Node) string {
	quoted := n.Style&(yaml3.SingleQuotedStyle|yaml3.DoubleQuotedStyle|yaml3.LiteralStyle|yaml3.FoldedStyle) != 0
	if !quoted {
		if n.Value == "" {
			return "null" // an empty plain scalar is null
		}
		if plainSafe(n.Value) {
			return n.Value
		}
	}
	return strconv.Quote(n.Value) // Go's escapes are valid in YAML double quotes
}

func plainSafe(s string) bool {
	if strings.TrimSpace(s) != s || strings.ContainsAny(s, ",[]{}\n\r\t") ||
		strings.Contains(s, ": ") || strings.Contains(s, " #") || strings.HasSuffix(s, ":") {
		return false
	}
	if strings.ContainsRune("?:,[]{}#&*!|>'\"%@`", rune(s[0])) {
		return false
	}
	return !(s[0] == '-' && (len(s) == 1 || s[1] == ' '))
}
