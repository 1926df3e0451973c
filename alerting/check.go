package alerting

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	yaml "go.yaml.in/yaml/v3"

	"github.com/tidewatch/tidewatch/internal/fileread"
	"github.com/tidewatch/tidewatch/store"
)

// RuleProblem is one thing wrong with a rule file.
type RuleProblem struct {
	File    string
	Line    int // 0 when unknown
	Message string
}

// String formats p as "file:line: message".
func (p RuleProblem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Message)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Message)
}

// RuleProblems is every problem found in a set of rule files.
type RuleProblems []RuleProblem

func (ps RuleProblems) Error() string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, "\n")
}

// CheckRuleFiles parses files as Prometheus rule files with Tidewatch's
// PromQL parser (so holt_winters and the experimental functions parse) and
// returns every problem with its file and line. It returns nil when all
// are valid. Each file is read once, bounded by fileread.RuleFileLimit; a
// file that is not a regular file (a directory, a symlink loop, a device)
// is a problem.
func CheckRuleFiles(files []string, logger *slog.Logger) RuleProblems {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := store.NewParser()
	var probs RuleProblems
	for _, f := range files {
		content, err := fileread.ReadFile(f, fileread.RuleFileLimit)
		if err != nil {
			probs = append(probs, RuleProblem{File: f, Message: strings.TrimPrefix(pathErrorMessage(err), f+": ")})
			continue
		}
		_, errs := rulefmt.Parse(content, false, model.UTF8Validation, p, logger)
		var te *yaml.TypeError
		if len(errs) == 1 && errors.As(errs[0], &te) {
			// Unknown fields stop the parse before the rules are checked:
			// check them too, so that every problem is reported at once.
			if _, more := rulefmt.Parse(content, true, model.UTF8Validation, p, logger); len(more) > 0 {
				errs = append(errs, more...)
			}
		}
		var fileProbs RuleProblems
		for _, err := range errs {
			fileProbs = append(fileProbs, ruleProblems(f, err)...)
		}
		placeRuleProblems(content, fileProbs)
		slices.SortStableFunc(fileProbs, func(a, b RuleProblem) int { return cmp.Compare(a.Line, b.Line) })
		probs = append(probs, slices.Compact(fileProbs)...)
	}
	return probs
}

// pathErrorMessage is err's message, with an *fs.PathError shown as
// "path: what went wrong" rather than "open path: …".
func pathErrorMessage(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}

// RuleLoader is the rules manager's rules.GroupLoader: rulefmt.ParseFile's
// work with each file read through fileread, so that the manager never reads
// a rule file that CheckRuleFiles would refuse (a symlink to /dev/zero grown
// in between included).
type RuleLoader struct {
	Parser parser.Parser
	Logger *slog.Logger
}

var _ rules.GroupLoader = RuleLoader{}

// Load reads and parses the rule file named identifier.
func (l RuleLoader) Load(identifier string, ignoreUnknownFields bool, scheme model.ValidationScheme) (*rulefmt.RuleGroups, []error) {
	content, err := fileread.ReadFile(identifier, fileread.RuleFileLimit)
	if err != nil {
		return nil, []error{fmt.Errorf("read rule file: %w", err)}
	}
	logger := l.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	rgs, errs := rulefmt.Parse(content, ignoreUnknownFields, scheme, l.Parser, logger)
	for i := range errs {
		errs[i] = fmt.Errorf("%s: %w", identifier, errs[i])
	}
	return rgs, errs
}

// Parse parses a rule's expression.
func (l RuleLoader) Parse(query string) (parser.Expr, error) { return l.Parser.ParseExpr(query) }

var (
	// "12:5: group ..." from rulefmt.Error and WrappedError.
	posRE = regexp.MustCompile(`^(\d+):\d+: (?:\d+:\d+: )?(.*)$`)
	// "line 7: field foo not found" from the YAML decoder.
	yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
)

// ruleProblems splits one rulefmt error (prefixed "file: ") into problems.
func ruleProblems(file string, err error) []RuleProblem {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		out := make([]RuleProblem, 0, len(te.Errors))
		for _, e := range te.Errors {
			out = append(out, lineProblem(file, e))
		}
		return out
	}
	msg := strings.TrimPrefix(err.Error(), file+": ")
	var out []RuleProblem
	for _, m := range strings.Split(msg, "\n") {
		m = strings.TrimSpace(m)
		if m == "" || m == "yaml: unmarshal errors:" {
			continue
		}
		out = append(out, lineProblem(file, m))
	}
	return out
}

func lineProblem(file, m string) RuleProblem {
	if sub := posRE.FindStringSubmatch(m); sub != nil {
		l, _ := strconv.Atoi(sub[1])
		return RuleProblem{File: file, Line: l, Message: sub[2]}
	}
	if sub := yamlLineRE.FindStringSubmatch(m); sub != nil {
		l, _ := strconv.Atoi(sub[1])
		return RuleProblem{File: file, Line: l, Message: sub[2]}
	}
	return RuleProblem{File: file, Message: m}
}

// ruleRE finds the rule a line-less rulefmt message is about.
var ruleRE = regexp.MustCompile(`^group "((?:[^"\\]|\\.)*)", rule (\d+), "(?:[^"\\]|\\.)*": (?:(annotation|label) "((?:[^"\\]|\\.)*)")?`)

// placeRuleProblems gives line-less problems about a rule (templates,
// labels) the line of that rule, or of the annotation or label they name.
func placeRuleProblems(content []byte, probs RuleProblems) {
	var root *yaml.Node
	for i := range probs {
		if probs[i].Line > 0 {
			continue
		}
		m := ruleRE.FindStringSubmatch(probs[i].Message)
		if m == nil {
			continue
		}
		if root == nil {
			var doc yaml.Node
			if yaml.Unmarshal(content, &doc) != nil || len(doc.Content) == 0 {
				return
			}
			root = doc.Content[0]
		}
		group, _ := strconv.Unquote(`"` + m[1] + `"`)
		idx, _ := strconv.Atoi(m[2])
		rule := findRule(root, group, idx-1)
		if rule == nil {
			continue
		}
		probs[i].Line = rule.Line
		if m[3] != "" {
			section := "annotations"
			if m[3] == "label" {
				section = "labels"
			}
			key, _ := strconv.Unquote(`"` + m[4] + `"`)
			if sec := mapValue(rule, section); sec != nil {
				if k := mapKey(sec, key); k != nil {
					probs[i].Line = k.Line
				}
			}
		}
	}
}

func findRule(root *yaml.Node, group string, idx int) *yaml.Node {
	groups := mapValue(root, "groups")
	if groups == nil || groups.Kind != yaml.SequenceNode {
		return nil
	}
	for _, g := range groups.Content {
		if n := mapValue(g, "name"); n == nil || n.Value != group {
			continue
		}
		rs := mapValue(g, "rules")
		if rs == nil || rs.Kind != yaml.SequenceNode || idx < 0 || idx >= len(rs.Content) {
			return nil
		}
		return rs.Content[idx]
	}
	return nil
}

func mapKey(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i]
		}
	}
	return nil
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
