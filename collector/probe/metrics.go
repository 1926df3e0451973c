package probe

import (
	"fmt"

	"github.com/VictoriaMetrics/metrics"
)

// jobMetrics are one probe job's self-metrics.
type jobMetrics struct {
	probes   *metrics.Counter
	failures *metrics.Counter
	skipped  *metrics.Counter
	targets  *metrics.Gauge
	duration *metrics.PrometheusHistogram
}

func newJobMetrics(set *metrics.Set, job string) *jobMetrics {
	return &jobMetrics{
		probes:   set.GetOrCreateCounter(fmt.Sprintf(`tidewatch_probes_total{job=%q}`, job)),
		failures: set.GetOrCreateCounter(fmt.Sprintf(`tidewatch_probe_failures_total{job=%q}`, job)),
		skipped:  set.GetOrCreateCounter(fmt.Sprintf(`tidewatch_probes_skipped_total{job=%q}`, job)),
		targets:  set.GetOrCreateGauge(fmt.Sprintf(`tidewatch_probe_targets{job=%q}`, job), nil),
		duration: set.GetOrCreatePrometheusHistogram(fmt.Sprintf(`tidewatch_probe_duration_seconds{job=%q}`, job)),
	}
}
