package web

import "github.com/prometheus/prometheus/rules"

// noRules serves empty rule and alert lists until rule evaluation is wired.
type noRules struct{}

func (noRules) RuleGroups() []*rules.Group           { return nil }
func (noRules) AlertingRules() []*rules.AlertingRule { return nil }
