package store

import (
	"context"
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// AppendMetrics counts and times the appends of one source of samples.
type AppendMetrics struct {
	samples  *metrics.Counter
	failures *metrics.Counter
	commit   *metrics.PrometheusHistogram
}

// NewAppendMetrics registers the append metrics of source (scrape,
// remote_write, rules…) in set.
func NewAppendMetrics(set *metrics.Set, source string) *AppendMetrics {
	return &AppendMetrics{
		samples:  set.GetOrCreateCounter(fmt.Sprintf(`tidewatch_store_samples_appended_total{source=%q}`, source)),
		failures: set.GetOrCreateCounter(fmt.Sprintf(`tidewatch_store_append_failures_total{source=%q}`, source)),
		commit:   set.GetOrCreatePrometheusHistogram(fmt.Sprintf(`tidewatch_store_commit_duration_seconds{source=%q}`, source)),
	}
}

// Instrument wraps app so that its appends are counted and committed
// transactions timed in m. The returned appenders implement
// storage.ExemplarAppenderV2 when app's do.
func Instrument(app storage.AppendableV2, m *AppendMetrics) storage.AppendableV2 {
	return instrumented{app: app, m: m}
}

type instrumented struct {
	app storage.AppendableV2
	m   *AppendMetrics
}

func (i instrumented) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return &instrumentedAppender{next: i.app.AppenderV2(ctx), m: i.m}
}

type instrumentedAppender struct {
	next storage.AppenderV2
	m    *AppendMetrics
	n    int
}

var (
	_ storage.ExemplarAppenderV2 = (*instrumentedAppender)(nil)
	_ storage.GetRef             = (*instrumentedAppender)(nil)
)

func (a *instrumentedAppender) Append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AppendV2Options) (storage.SeriesRef, error) {
	ref, err := a.next.Append(ref, ls, st, t, v, h, fh, opts)
	if err != nil {
		a.m.failures.Inc()
		return ref, err
	}
	a.n++
	return ref, nil
}

// GetRef forwards the backend's series-reference lookup, which the scrape
// loop and the remote-write handler use to skip hashing known series.
func (a *instrumentedAppender) GetRef(ls labels.Labels, hash uint64) (storage.SeriesRef, labels.Labels) {
	if g, ok := a.next.(storage.GetRef); ok {
		return g.GetRef(ls, hash)
	}
	return 0, labels.EmptyLabels()
}

func (a *instrumentedAppender) AppendExemplars(ref storage.SeriesRef, ls labels.Labels, es []exemplar.Exemplar) (storage.SeriesRef, error) {
	ea, ok := a.next.(storage.ExemplarAppenderV2)
	if !ok {
		return 0, fmt.Errorf("append exemplars: %T does not store exemplars: %w", a.next, storage.ErrNotFound)
	}
	return ea.AppendExemplars(ref, ls, es)
}

func (a *instrumentedAppender) Commit() error {
	start := time.Now()
	err := a.next.Commit()
	a.m.commit.UpdateDuration(start)
	if err != nil {
		a.m.failures.Add(a.n)
		return err
	}
	a.m.samples.Add(a.n)
	return nil
}

func (a *instrumentedAppender) Rollback() error {
	return a.next.Rollback()
}
