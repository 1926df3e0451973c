package web

import "github.com/prometheus/prometheus/rules"

// noRules serves empty rule and alert lists while no rule files are loaded.
type noRules struct{}

func (noRules) RuleGroups() []*rules.Group           { return nil }
func (noRules) AlertingRules() []*rules.AlertingRule { return nil }
