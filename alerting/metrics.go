package alerting

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/prometheus/rules"
)

// ruleMetrics counts and times rule group evaluations in Tidewatch's
// metrics set, per group (file and name).
type ruleMetrics struct {
	set *metrics.Set

	mtx    sync.Mutex
	groups map[string]*groupMetrics
}

type groupMetrics struct {
	evaluations *metrics.Counter
	failures    *metrics.Counter
	duration    *metrics.PrometheusHistogram
}

func newRuleMetrics(set *metrics.Set) *ruleMetrics {
	return &ruleMetrics{set: set, groups: map[string]*groupMetrics{}}
}

func (m *ruleMetrics) group(g *rules.Group) *groupMetrics {
	key := rules.GroupKey(g.File(), g.Name())
	m.mtx.Lock()
	defer m.mtx.Unlock()
	gm, ok := m.groups[key]
	if !ok {
		l := fmt.Sprintf(`{file=%q,rule_group=%q}`, g.File(), g.Name())
		gm = &groupMetrics{
			evaluations: m.set.GetOrCreateCounter("tidewatch_rule_group_evaluations_total" + l),
			failures:    m.set.GetOrCreateCounter("tidewatch_rule_evaluation_failures_total" + l),
			duration:    m.set.GetOrCreatePrometheusHistogram("tidewatch_rule_group_evaluation_duration_seconds" + l),
		}
		m.groups[key] = gm
	}
	return gm
}

// evalIteration is the rule groups' GroupEvalIterationFunc: Prometheus'
// default, counted.
func (m *ruleMetrics) evalIteration(ctx context.Context, g *rules.Group, ts time.Time) {
	start := time.Now()
	rules.DefaultEvalIterationFunc(ctx, g, ts)
	gm := m.group(g)
	gm.duration.UpdateDuration(start)
	gm.evaluations.Inc()
	for _, r := range g.Rules() {
		if r.LastError() != nil {
			gm.failures.Inc()
		}
	}
}
