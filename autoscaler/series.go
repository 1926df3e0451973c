package autoscaler

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// record keeps d for the API and writes its series.
func (r *runner) record(d *Decision) {
	if d.Time.IsZero() {
		d.Time = d.Evaluation.Time
	}
	r.mtx.Lock()
	r.last = d
	r.mtx.Unlock()
	r.m.log.add(d)
	if r.m.o.Appendable != nil && d.Action != ActionError {
		if err := r.appendSeries(d); err != nil {
			r.m.logger.Warn("append autoscaler series", "policy", d.Policy, "err", err)
		}
	}
}

func (r *runner) appendSeries(d *Decision) error {
	app := r.m.o.Appendable.AppenderV2(context.Background())
	ts := d.Time.UnixMilli()
	base := []string{"policy", d.Policy, "backend", d.Backend, "target", r.policy.Config.Target.String()}
	add := func(name string, v float64, extra ...string) error {
		ls := labels.FromStrings(append(append([]string{labels.MetricName, name}, base...), extra...)...)
		_, err := app.Append(0, ls, 0, ts, v, nil, nil, storage.AppendV2Options{})
		return err
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	ev := d.Evaluation
	errs := []error{
		add("tidewatch_autoscaler_current_replicas", float64(ev.Current)),
		add("tidewatch_autoscaler_desired_replicas", float64(ev.Desired)),
		add("tidewatch_autoscaler_recommended_replicas", float64(ev.Raw)),
		add("tidewatch_autoscaler_stabilized_replicas", float64(ev.Stabilized)),
		add("tidewatch_autoscaler_min_replicas", float64(ev.Floor)),
		add("tidewatch_autoscaler_max_replicas", float64(ev.Max)),
		add("tidewatch_autoscaler_paused", b2f(d.Paused)),
		add("tidewatch_autoscaler_dry_run", b2f(d.DryRun)),
	}
	for i, me := range ev.Metrics {
		idx := fmt.Sprint(i)
		errs = append(errs, add("tidewatch_autoscaler_metric_target", me.Target, "metric", idx))
		if me.Value != nil {
			errs = append(errs, add("tidewatch_autoscaler_metric_value", *me.Value, "metric", idx))
		}
		if me.Forecast != nil && !math.IsNaN(*me.Forecast) {
			errs = append(errs, add("tidewatch_autoscaler_forecast", *me.Forecast, "metric", idx))
		}
	}
	if err := errors.Join(errs...); err != nil {
		_ = app.Rollback()
		return err
	}
	return app.Commit()
}
