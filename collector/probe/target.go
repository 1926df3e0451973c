package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
)

// abandonGrace is how long past its timeout a prober may take before its
// loop stops waiting for it (blackbox_exporter's probers honour their
// context; this guards the loop against one that does not).
const abandonGrace = time.Second

// Health of a target's last probe, as in /api/v1/targets.
const (
	healthUnknown = "unknown"
	healthUp      = "up"
	healthDown    = "down"
)

// target is one probed endpoint and its probe loop.
type target struct {
	key     string
	jobName string
	addr    string // what is probed
	labels  labels.Labels

	j       atomic.Pointer[job]
	changed chan struct{} // the job's config changed
	cancel  context.CancelFunc
	done    chan struct{}
	// markStale makes the loop write stale markers for its series when it ends.
	markStale atomic.Bool

	mtx        sync.Mutex
	discovered labels.Labels
	health     string
	lastProbe  time.Time
	lastDur    time.Duration
	lastErr    error

	// series are the series of the last probe; only the loop touches it.
	series map[uint64]labels.Labels
}

func newTarget(key, jobName, addr string, ls, discovered labels.Labels) *target {
	return &target{
		key: key, jobName: jobName, addr: addr, labels: ls, discovered: discovered,
		changed: make(chan struct{}, 1),
		done:    make(chan struct{}),
		health:  healthUnknown,
	}
}

func (t *target) job() *job { return t.j.Load() }

// update gives the target its job's current config and discovered labels.
func (t *target) update(j *job, discovered labels.Labels) {
	t.mtx.Lock()
	t.discovered = discovered
	t.mtx.Unlock()
	if old := t.j.Swap(j); old != nil && old != j {
		select {
		case t.changed <- struct{}{}:
		default:
		}
	}
}

func (t *target) discoveredLabels() labels.Labels {
	t.mtx.Lock()
	defer t.mtx.Unlock()
	return t.discovered
}

// stop ends the loop without waiting; with stale, it marks the target's
// series stale first.
func (t *target) stop(stale bool) {
	t.markStale.Store(stale)
	if t.cancel != nil {
		t.cancel()
	}
}

func (t *target) record(health string, at time.Time, d time.Duration, err error) {
	t.mtx.Lock()
	defer t.mtx.Unlock()
	t.health, t.lastProbe, t.lastDur, t.lastErr = health, at, d, err
}

// probe runs one probe of t and appends its result.
func (m *Manager) probe(ctx context.Context, t *target, start time.Time) {
	j := t.job()
	// A probe waits for a free slot at most one interval; then it is skipped.
	wait, cancelWait := context.WithTimeout(ctx, j.interval)
	select {
	case m.sem <- struct{}{}:
		cancelWait()
	case <-wait.Done():
		cancelWait()
		if ctx.Err() != nil {
			return
		}
		j.metrics.skipped.Inc()
		t.record(healthDown, start, 0, fmt.Errorf("probe %s: skipped: %d probes already in flight", t.addr, cap(m.sem)))
		return
	}

	pctx, cancel := context.WithTimeout(ctx, j.timeout)
	defer cancel()
	reg := prometheus.NewRegistry()
	successGauge := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "probe_success",
		Help: "Displays whether or not the probe was a success",
	})
	durationGauge := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "probe_duration_seconds",
		Help: "Returns how long the probe took to complete in seconds",
	})
	reg.MustRegister(successGauge, durationGauge)
	rec := newErrorRecorder(m.logger.Handler())
	logger := slog.New(rec).With("job", t.jobName, "target", t.addr, "prober", j.cfg.Module.Prober)

	done := make(chan bool, 1)
	go func() {
		defer func() { <-m.sem }()
		// A prober that panics (on a hostile answer, say) fails its probe;
		// it must never take the process down.
		defer func() {
			if p := recover(); p != nil {
				logger.Error(fmt.Sprintf("prober panicked: %v", p), "stack", string(debug.Stack()))
				done <- false
			}
		}()
		done <- j.probe(pctx, t.addr, j.cfg.Module, reg, logger)
	}()
	var success bool
	select {
	case success = <-done:
	case <-time.After(j.timeout + abandonGrace):
		// The prober ignores its context; its slot stays taken until it returns.
		err := fmt.Errorf("probe %s: prober %s did not return within its timeout (%s)", t.addr, j.cfg.Module.Prober, j.timeout)
		j.metrics.probes.Inc()
		j.metrics.failures.Inc()
		t.record(healthDown, start, time.Since(start), err)
		m.logger.Warn("abandoned a probe", "job", t.jobName, "target", t.addr, "err", err)
		return
	}
	dur := time.Since(start)
	if !success && ctx.Err() != nil {
		return // stopping: the failure is ours, not the target's
	}
	durationGauge.Set(dur.Seconds())
	if success {
		successGauge.Set(1)
	}
	j.metrics.probes.Inc()
	j.metrics.duration.Update(dur.Seconds())

	var probeErr error
	health := healthUp
	if !success {
		health = healthDown
		j.metrics.failures.Inc()
		probeErr = probeFailure(pctx, t, j, rec.lastError())
	}
	mfs, err := reg.Gather()
	if err != nil {
		m.logger.Warn("gather probe results", "job", t.jobName, "target", t.addr, "err", err)
	}
	if err := m.appendResults(t, mfs, start.UnixMilli()); err != nil {
		m.logger.Warn("append probe results", "job", t.jobName, "target", t.addr, "err", err)
		probeErr = errors.Join(probeErr, err)
	}
	t.record(health, start, dur, probeErr)
}

// failure explains a failed probe from what the prober logged.
func probeFailure(pctx context.Context, t *target, j *job, logged string) error {
	var cause error
	switch {
	case j.cfg.Module.Prober == "icmp" && icmpHint(logged) != nil:
		cause = icmpHint(logged)
	case logged != "":
		cause = errors.New(logged)
	default:
		cause = errors.New("probe failed")
	}
	if errors.Is(pctx.Err(), context.DeadlineExceeded) {
		cause = fmt.Errorf("timeout after %s: %w", j.timeout, cause)
	}
	return fmt.Errorf("probe %s: %w", t.addr, cause)
}

// appendResults appends the gathered series with t's labels at ts, and
// stale markers for series of the previous probe that this one lacks.
func (m *Manager) appendResults(t *target, mfs []*dto.MetricFamily, ts int64) error {
	app := m.app.AppenderV2(context.Background())
	seen := make(map[uint64]labels.Labels, len(t.series)+8)
	var errs []error
	for _, mf := range mfs {
		opts := storage.AppendV2Options{
			MetricFamilyName: mf.GetName(),
			Metadata:         metadata.Metadata{Type: metricType(mf.GetType()), Help: mf.GetHelp()},
		}
		for _, mt := range mf.GetMetric() {
			v, ok := sampleValue(mf.GetType(), mt)
			if !ok {
				continue
			}
			ls := t.seriesLabels(mf.GetName(), mt.GetLabel())
			if _, err := app.Append(0, ls, 0, ts, v, nil, nil, opts); err != nil {
				errs = append(errs, fmt.Errorf("append %s: %w", ls, err))
				continue
			}
			seen[ls.Hash()] = ls
		}
	}
	stale := math.Float64frombits(value.StaleNaN)
	for h, ls := range t.series {
		if _, ok := seen[h]; !ok {
			if _, err := app.Append(0, ls, 0, ts, stale, nil, nil, storage.AppendV2Options{}); err != nil {
				errs = append(errs, fmt.Errorf("append stale marker for %s: %w", ls, err))
			}
		}
	}
	if err := app.Commit(); err != nil {
		return fmt.Errorf("commit probe results of %s: %w", t.addr, err)
	}
	t.series = seen
	return errors.Join(errs...)
}

// writeStale marks every series of t's last probe stale (t is gone).
func (m *Manager) writeStale(t *target) {
	if len(t.series) == 0 {
		return
	}
	app := m.app.AppenderV2(context.Background())
	ts := time.Now().UnixMilli()
	stale := math.Float64frombits(value.StaleNaN)
	for _, ls := range t.series {
		if _, err := app.Append(0, ls, 0, ts, stale, nil, nil, storage.AppendV2Options{}); err != nil {
			m.logger.Debug("append stale marker", "series", ls.String(), "err", err)
		}
	}
	if err := app.Commit(); err != nil {
		m.logger.Warn("commit stale markers", "job", t.jobName, "target", t.addr, "err", err)
		return
	}
	t.series = nil
}

// seriesLabels are t's labels, the metric name and the metric's own labels;
// a metric label that clashes with a target label is kept as exported_<name>,
// as a scrape without honor_labels does.
func (t *target) seriesLabels(name string, lps []*dto.LabelPair) labels.Labels {
	lb := labels.NewBuilder(t.labels)
	for _, lp := range lps {
		n := lp.GetName()
		if t.labels.Has(n) {
			n = model.ExportedLabelPrefix + n
		}
		lb.Set(n, lp.GetValue())
	}
	lb.Set(model.MetricNameLabel, name)
	return lb.Labels()
}

// sampleValue is the value of a gauge, counter or untyped metric (all that
// blackbox_exporter's probers register).
func sampleValue(typ dto.MetricType, mt *dto.Metric) (float64, bool) {
	switch typ {
	case dto.MetricType_GAUGE:
		return mt.GetGauge().GetValue(), true
	case dto.MetricType_COUNTER:
		return mt.GetCounter().GetValue(), true
	case dto.MetricType_UNTYPED:
		return mt.GetUntyped().GetValue(), true
	default:
		return 0, false
	}
}

func metricType(typ dto.MetricType) model.MetricType {
	switch typ {
	case dto.MetricType_GAUGE:
		return model.MetricTypeGauge
	case dto.MetricType_COUNTER:
		return model.MetricTypeCounter
	default:
		return model.MetricTypeUnknown
	}
}
