package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration file.
type Problem struct {
	// File is the configuration file as named by the caller.
	File string
	// Line is 1-based; 0 when unknown.
	Line int
	// Field is the dotted path of the key, e.g. "scrape_configs[1].scrape_interval"; empty when unknown.
	Field string
	// Message says what is wrong.
	Message string
}

// String formats p as "file:line: field: message", leaving out the parts that are unknown.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		if b.Len() > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(p.Line))
	}
	for _, s := range []string{p.Field, p.Message} {
		if s == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(s)
	}
	return b.String()
}

// Problems is every problem found in a configuration file, in file order.
// It is the error returned by Load and Parse when the file is invalid.
type Problems []Problem

// Error lists the problems one per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sortProblems orders problems by line (unknown lines first) and drops exact duplicates.
func sortProblems(ps Problems) Problems {
	slices.SortStableFunc(ps, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
	return slices.Compact(ps)
}
