package autoscaler

import (
	"fmt"

	"github.com/VictoriaMetrics/metrics"
)

// managerMetrics are the autoscaler's self-metrics.
type managerMetrics struct {
	set *metrics.Set
}

func newManagerMetrics(set *metrics.Set) *managerMetrics { return &managerMetrics{set: set} }

func (m *managerMetrics) evaluations(policy string) *metrics.Counter {
	return m.set.GetOrCreateCounter(fmt.Sprintf(`tidewatch_autoscaler_evaluations_total{policy=%q}`, policy))
}

func (m *managerMetrics) failures(policy string) *metrics.Counter {
	return m.set.GetOrCreateCounter(fmt.Sprintf(`tidewatch_autoscaler_evaluation_failures_total{policy=%q}`, policy))
}

func (m *managerMetrics) actions(policy, result string) *metrics.Counter {
	return m.set.GetOrCreateCounter(fmt.Sprintf(`tidewatch_autoscaler_scale_actions_total{policy=%q,result=%q}`, policy, result))
}

func (m *managerMetrics) evalDuration(policy string) *metrics.PrometheusHistogram {
	return m.set.GetOrCreatePrometheusHistogram(fmt.Sprintf(`tidewatch_autoscaler_evaluation_duration_seconds{policy=%q}`, policy))
}

func (m *managerMetrics) scaleDuration(backend string) *metrics.PrometheusHistogram {
	return m.set.GetOrCreatePrometheusHistogram(fmt.Sprintf(`tidewatch_autoscaler_scale_duration_seconds{backend=%q}`, backend))
}
