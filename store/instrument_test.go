package store_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/tidewatch/tidewatch/store"
	"github.com/tidewatch/tidewatch/store/embedded"
)

// metricValue reads one series from set's exposition; ok is false when
// the series is not exposed.
func metricValue(t *testing.T, set *metrics.Set, series string) (v float64, ok bool) {
	t.Helper()
	var buf bytes.Buffer
	set.WritePrometheus(&buf)
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		name, val, found := strings.Cut(sc.Text(), " ")
		if !found || name != series {
			continue
		}
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			t.Fatalf("parse %q: %v", sc.Text(), err)
		}
		return f, true
	}
	return 0, false
}

func counter(t *testing.T, set *metrics.Set, series string) float64 {
	t.Helper()
	v, ok := metricValue(t, set, series)
	if !ok {
		t.Fatalf("%s not exposed", series)
	}
	return v
}

const (
	appended = `tidewatch_store_samples_appended_total{source="test"}`
	failures = `tidewatch_store_append_failures_total{source="test"}`
	commits  = `tidewatch_store_commit_duration_seconds_count{source="test"}`
)

func openEmbeddedDB(t *testing.T) *embedded.DB {
	t.Helper()
	cfg := embedded.DefaultConfig
	cfg.Path = t.TempDir()
	db, err := embedded.Open(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestInstrumentCounts(t *testing.T) {
	const ts = int64(1_700_000_000_000)
	ls := labels.FromStrings("__name__", "x")
	cases := []struct {
		name string
		// run appends through app and finishes the transaction.
		run                                    func(t *testing.T, app storage.AppenderV2)
		wantAppended, wantFailures, wantCommit float64
	}{
		{"commit counts appended samples", func(t *testing.T, app storage.AppenderV2) {
			for i := range int64(3) {
				mustAppend(t, app, labels.FromStrings("__name__", "x", "i", strconv.FormatInt(i, 10)), ts, 1)
			}
			h := &histogram.Histogram{Count: 1, Sum: 1, PositiveSpans: []histogram.Span{{Length: 1}}, PositiveBuckets: []int64{1}}
			if _, err := app.Append(0, labels.FromStrings("__name__", "h"), 0, ts, 0, h, nil, storage.AppendV2Options{}); err != nil {
				t.Fatal(err)
			}
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
		}, 4, 0, 1},
		{"rollback counts nothing", func(t *testing.T, app storage.AppenderV2) {
			mustAppend(t, app, ls, ts, 1)
			if err := app.Rollback(); err != nil {
				t.Fatal(err)
			}
		}, 0, 0, 0},
		// Fails today: instrumentedAppender.Append (store/instrument.go) does not
		// count a rejected Append in append_failures_total.
		{"rejected append is a failure, not an appended sample", func(t *testing.T, app storage.AppenderV2) {
			mustAppend(t, app, ls, ts, 1)
			// An invalid histogram is rejected by Append itself.
			bad := &histogram.Histogram{Count: 5, PositiveSpans: []histogram.Span{{Length: 1}}, PositiveBuckets: []int64{1}}
			if _, err := app.Append(0, labels.FromStrings("__name__", "bad"), 0, ts, 0, bad, nil, storage.AppendV2Options{}); err == nil {
				t.Fatal("invalid histogram accepted")
			}
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
		}, 1, 1, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := openEmbeddedDB(t)
			set := metrics.NewSet()
			m := store.NewAppendMetrics(set, "test")
			app := store.Instrument(db, m).AppenderV2(context.Background())
			c.run(t, app)
			if got := counter(t, set, appended); got != c.wantAppended {
				t.Errorf("%s = %v, want %v", appended, got, c.wantAppended)
			}
			if got := counter(t, set, failures); got != c.wantFailures {
				t.Errorf("%s = %v, want %v", failures, got, c.wantFailures)
			}
			got, _ := metricValue(t, set, commits)
			if got != c.wantCommit {
				t.Errorf("%s = %v, want %v", commits, got, c.wantCommit)
			}
		})
	}
}

func mustAppend(t *testing.T, app storage.AppenderV2, ls labels.Labels, ts int64, v float64) {
	t.Helper()
	if _, err := app.Append(0, ls, 0, ts, v, nil, nil, storage.AppendV2Options{}); err != nil {
		t.Fatalf("append %s: %v", ls, err)
	}
}

// failingCommit is a storage whose commits fail, to check that the samples
// of a failed commit are counted as failures.
type failingCommit struct{ n int }

func (f *failingCommit) AppenderV2(context.Context) storage.AppenderV2 { return f }
func (f *failingCommit) Append(storage.SeriesRef, labels.Labels, int64, int64, float64, *histogram.Histogram, *histogram.FloatHistogram, storage.AppendV2Options) (storage.SeriesRef, error) {
	f.n++
	return storage.SeriesRef(f.n), nil
}
func (f *failingCommit) Commit() error   { return errors.New("disk full") }
func (f *failingCommit) Rollback() error { return nil }

func TestInstrumentFailedCommit(t *testing.T) {
	set := metrics.NewSet()
	app := store.Instrument(&failingCommit{}, store.NewAppendMetrics(set, "test")).AppenderV2(context.Background())
	mustAppend(t, app, labels.FromStrings("__name__", "a"), 1, 1)
	mustAppend(t, app, labels.FromStrings("__name__", "b"), 1, 1)
	if err := app.Commit(); err == nil || err.Error() != "disk full" {
		t.Fatalf("commit error = %v, want the backend's", err)
	}
	if got := counter(t, set, appended); got != 0 {
		t.Errorf("%s = %v, want 0", appended, got)
	}
	if got := counter(t, set, failures); got != 2 {
		t.Errorf("%s = %v, want 2", failures, got)
	}
	// A backend without exemplar support makes AppendExemplars fail with ErrNotFound.
	app = store.Instrument(&failingCommit{}, store.NewAppendMetrics(set, "test")).AppenderV2(context.Background())
	ea, ok := app.(storage.ExemplarAppenderV2)
	if !ok {
		t.Fatalf("%T does not implement storage.ExemplarAppenderV2", app)
	}
	if _, err := ea.AppendExemplars(1, labels.FromStrings("__name__", "a"), []exemplar.Exemplar{{Value: 1, Ts: 1, HasTs: true}}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("AppendExemplars on a backend without exemplars: err = %v, want storage.ErrNotFound", err)
	}
}

func TestInstrumentPreservesExemplarAppender(t *testing.T) {
	db := openEmbeddedDB(t)
	set := metrics.NewSet()
	app := store.Instrument(db, store.NewAppendMetrics(set, "test")).AppenderV2(context.Background())
	ea, ok := app.(storage.ExemplarAppenderV2)
	if !ok {
		t.Fatalf("%T does not implement storage.ExemplarAppenderV2", app)
	}
	const ts = int64(1_700_000_000_000)
	ls := labels.FromStrings("__name__", "req_duration_seconds_bucket", "le", "0.5")
	ref, err := ea.Append(0, ls, 0, ts, 3, nil, nil, storage.AppendV2Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []exemplar.Exemplar{
		{Labels: labels.FromStrings("trace_id", "abc"), Value: 0.3, Ts: ts - 10, HasTs: true},
		{Labels: labels.FromStrings("trace_id", "def"), Value: 0.4, Ts: ts, HasTs: true},
	}
	if _, err := ea.AppendExemplars(ref, ls, want); err != nil {
		t.Fatalf("append exemplars: %v", err)
	}
	if err := ea.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := counter(t, set, appended); got != 1 {
		t.Errorf("%s = %v, want 1", appended, got)
	}

	eq, err := db.ExemplarQuerier(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res, err := eq.Select(ts-1000, ts+1000, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "__name__", "req_duration_seconds_bucket")})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || !labels.Equal(res[0].SeriesLabels, ls) {
		t.Fatalf("exemplar query = %+v, want one series %s", res, ls)
	}
	if len(res[0].Exemplars) != len(want) {
		t.Fatalf("exemplars = %+v, want %+v", res[0].Exemplars, want)
	}
	for i, e := range res[0].Exemplars {
		if !e.Equals(want[i]) {
			t.Errorf("exemplar %d = %+v, want %+v", i, e, want[i])
		}
	}
}
