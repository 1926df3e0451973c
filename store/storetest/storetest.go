// Package storetest is the conformance suite every store.Store backend runs:
// what the rest of Tidewatch relies on when it appends to and queries a store.
//
// A backend's test calls Run with a function that opens the backend in a
// directory; the suite opens it again on the same directory to check that
// committed data survives a restart.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/tidewatch/tidewatch/store"
)

// OpenFunc opens the backend under test in dir. Called twice on the same dir
// (after Close), it must find the data committed before.
type OpenFunc func(t *testing.T, dir string) store.Store

// OOOPolicy is what a backend does with a sample older than the newest one
// of its series.
type OOOPolicy int

const (
	// OOOReject rejects it with storage.ErrOutOfOrderSample (Prometheus' and
	// the embedded store's default).
	OOOReject OOOPolicy = iota
	// OOOAccept stores it and returns it in timestamp order.
	OOOAccept
)

type options struct {
	nativeHistograms bool
	ooo              OOOPolicy
}

// Option changes what the suite expects of the backend.
type Option func(*options)

// WithoutNativeHistograms skips the native-histogram cases, for backends
// that store floats only.
func WithoutNativeHistograms() Option { return func(o *options) { o.nativeHistograms = false } }

// WithOutOfOrder sets the expected out-of-order policy (default OOOReject).
func WithOutOfOrder(p OOOPolicy) Option { return func(o *options) { o.ooo = p } }

// base is the timestamp (ms) the cases write around: a fixed time, so that
// failures are reproducible.
const base int64 = 1_700_000_000_000

// Run runs the conformance suite against the backend that open opens.
func Run(t *testing.T, open OpenFunc, opts ...Option) {
	o := options{nativeHistograms: true, ooo: OOOReject}
	for _, opt := range opts {
		opt(&o)
	}
	s := &suite{open: open, o: o}
	cases := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"AppendCommitQueryFloats", s.testFloats},
		{"AppendCommitQueryNativeHistograms", s.testHistograms},
		{"RollbackDiscards", s.testRollback},
		{"StalenessMarkers", s.testStaleness},
		{"OutOfOrder", s.testOutOfOrder},
		{"DuplicateSampleIdempotent", s.testDuplicateSame},
		{"DuplicateTimestampDifferentValue", s.testDuplicateDifferent},
		{"LabelMatchers", s.testMatchers},
		{"LabelNamesAndValues", s.testLabelNamesValues},
		{"SelectHints", s.testSelectHints},
		{"ManySeries", s.testManySeries},
		{"Restart", s.testRestart},
		{"FlushHealth", s.testFlushHealth},
		{"CloseTwice", s.testCloseTwice},
		{"PromQLRate", s.testPromQLRate},
	}
	for _, c := range cases {
		t.Run(c.name, c.fn)
	}
}

type suite struct {
	open OpenFunc
	o    options
}

// Sample is one sample of one series; exactly one of V, H, FH is meaningful
// (H or FH when non-nil).
type Sample struct {
	T  int64
	V  float64
	H  *histogram.Histogram
	FH *histogram.FloatHistogram
}

func (s Sample) String() string {
	switch {
	case s.H != nil:
		return fmt.Sprintf("%d:h%s", s.T, s.H)
	case s.FH != nil:
		return fmt.Sprintf("%d:fh%s", s.T, s.FH)
	}
	return fmt.Sprintf("%d:%v(bits %#x)", s.T, s.V, math.Float64bits(s.V))
}

// equal compares values bit for bit (so NaN and StaleNaN are told apart) and
// histograms by content, ignoring the counter-reset hint the store may set.
func (s Sample) equal(o Sample) bool {
	if s.T != o.T {
		return false
	}
	switch {
	case s.H != nil || o.H != nil:
		if s.H == nil || o.H == nil {
			return false
		}
		a, b := s.H.Copy(), o.H.Copy()
		a.CounterResetHint, b.CounterResetHint = histogram.UnknownCounterReset, histogram.UnknownCounterReset
		return a.Equals(b)
	case s.FH != nil || o.FH != nil:
		if s.FH == nil || o.FH == nil {
			return false
		}
		a, b := s.FH.Copy(), o.FH.Copy()
		a.CounterResetHint, b.CounterResetHint = histogram.UnknownCounterReset, histogram.UnknownCounterReset
		return a.Equals(b)
	}
	return math.Float64bits(s.V) == math.Float64bits(o.V)
}

// Series is a label set with its samples in timestamp order.
type Series struct {
	Labels  labels.Labels
	Samples []Sample
}

func (s *suite) openStore(t *testing.T, dir string) store.Store {
	t.Helper()
	st := s.open(t, dir)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func (s *suite) fresh(t *testing.T) store.Store {
	t.Helper()
	return s.openStore(t, t.TempDir())
}

// appendOne appends one sample in its own transaction and returns the error
// of Append or, if that succeeded, of Commit: a backend may report a
// rejected sample from either.
func appendOne(st store.Store, ls labels.Labels, smp Sample) error {
	app := st.AppenderV2(context.Background())
	if _, err := app.Append(0, ls, 0, smp.T, smp.V, smp.H, smp.FH, storage.AppendV2Options{}); err != nil {
		_ = app.Rollback()
		return err
	}
	return app.Commit()
}

// write appends all series in one transaction, commits and flushes.
func write(t *testing.T, st store.Store, series ...Series) {
	t.Helper()
	app := st.AppenderV2(context.Background())
	for _, s := range series {
		var ref storage.SeriesRef
		for _, smp := range s.Samples {
			var err error
			ref, err = app.Append(ref, s.Labels, 0, smp.T, smp.V, smp.H, smp.FH, storage.AppendV2Options{})
			if err != nil {
				_ = app.Rollback()
				t.Fatalf("append %s %s: %v", s.Labels, smp, err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatalf("commit: %v", err)
	}
	flush(t, st)
}

func flush(t *testing.T, st store.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := st.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// sel returns the series matching ms in [mint, maxt], sorted by labels.
func sel(t *testing.T, st store.Store, mint, maxt int64, hints *storage.SelectHints, ms ...*labels.Matcher) []Series {
	t.Helper()
	q, err := st.Querier(mint, maxt)
	if err != nil {
		t.Fatalf("querier: %v", err)
	}
	defer q.Close()
	set := q.Select(context.Background(), true, hints, ms...)
	var out []Series
	var it chunkenc.Iterator
	for set.Next() {
		s := set.At()
		sr := Series{Labels: s.Labels()}
		it = s.Iterator(it)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			switch vt {
			case chunkenc.ValFloat:
				ts, v := it.At()
				sr.Samples = append(sr.Samples, Sample{T: ts, V: v})
			case chunkenc.ValHistogram:
				ts, h := it.AtHistogram(nil)
				sr.Samples = append(sr.Samples, Sample{T: ts, H: h})
			case chunkenc.ValFloatHistogram:
				ts, fh := it.AtFloatHistogram(nil)
				sr.Samples = append(sr.Samples, Sample{T: ts, FH: fh})
			}
		}
		if err := it.Err(); err != nil {
			t.Fatalf("iterate %s: %v", sr.Labels, err)
		}
		out = append(out, sr)
	}
	if err := set.Err(); err != nil {
		t.Fatalf("select %v: %v", ms, err)
	}
	return out
}

func mustMatcher(t *testing.T, mt labels.MatchType, name, val string) *labels.Matcher {
	t.Helper()
	m, err := labels.NewMatcher(mt, name, val)
	if err != nil {
		t.Fatalf("matcher %s %s %q: %v", name, mt, val, err)
	}
	return m
}

func nameEq(t *testing.T, name string) *labels.Matcher {
	return mustMatcher(t, labels.MatchEqual, labels.MetricName, name)
}

// assertSeries checks got against want: same label sets in order, same samples.
func assertSeries(t *testing.T, got, want []Series) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d series %v, want %d %v", len(got), seriesLabels(got), len(want), seriesLabels(want))
	}
	for i := range want {
		if !labels.Equal(got[i].Labels, want[i].Labels) {
			t.Fatalf("series %d: labels %s, want %s", i, got[i].Labels, want[i].Labels)
		}
		if !slices.EqualFunc(got[i].Samples, want[i].Samples, Sample.equal) {
			t.Fatalf("series %s: samples\n got  %v\n want %v", want[i].Labels, got[i].Samples, want[i].Samples)
		}
	}
}

func seriesLabels(ss []Series) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Labels.String()
	}
	return out
}

func floats(start, step int64, vs ...float64) []Sample {
	out := make([]Sample, len(vs))
	for i, v := range vs {
		out[i] = Sample{T: start + int64(i)*step, V: v}
	}
	return out
}

func (s *suite) testFloats(t *testing.T) {
	st := s.fresh(t)
	want := []Series{
		{labels.FromStrings("__name__", "cpu", "instance", "a"), floats(base, 15_000, 0, 1.5, -2, math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(1), math.Inf(-1))},
		{labels.FromStrings("__name__", "cpu", "instance", "b"), floats(base, 1, 42)},
		{labels.FromStrings("__name__", "mem", "instance", "a", "zone", "eu"), floats(base+1000, 10_000, 1e9, 2e9, math.NaN())},
	}
	write(t, st, want...)
	got := sel(t, st, base-1, base+time.Hour.Milliseconds(), nil, mustMatcher(t, labels.MatchRegexp, labels.MetricName, ".+"))
	assertSeries(t, got, want)
	// A narrower querier range returns only the samples inside it (inclusive).
	got = sel(t, st, base+15_000, base+30_000, nil, nameEq(t, "cpu"), mustMatcher(t, labels.MatchEqual, "instance", "a"))
	assertSeries(t, got, []Series{{want[0].Labels, want[0].Samples[1:3]}})
}

func (s *suite) testHistograms(t *testing.T) {
	if !s.o.nativeHistograms {
		t.Skip("backend does not store native histograms")
	}
	st := s.fresh(t)
	mkH := func(i int64) *histogram.Histogram {
		return &histogram.Histogram{
			Count:         12 + uint64(i*9),
			ZeroCount:     2 + uint64(i),
			ZeroThreshold: 0.001,
			Sum:           18.4 * float64(i+1),
			Schema:        1,
			PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}, {Offset: 1, Length: 2}},
			PositiveBuckets: []int64{
				i + 1, 1, -1, 0,
			},
			NegativeSpans:   []histogram.Span{{Offset: 0, Length: 2}, {Offset: 1, Length: 2}},
			NegativeBuckets: []int64{i + 1, 1, -1, 0},
		}
	}
	var hs, fhs []Sample
	for i := range int64(5) {
		hs = append(hs, Sample{T: base + i*15_000, H: mkH(i)})
		fhs = append(fhs, Sample{T: base + i*15_000, FH: mkH(i).ToFloat(nil)})
	}
	want := []Series{
		{labels.FromStrings("__name__", "latency", "kind", "float"), fhs},
		{labels.FromStrings("__name__", "latency", "kind", "int"), hs},
	}
	write(t, st, want...)
	assertSeries(t, sel(t, st, base, base+time.Hour.Milliseconds(), nil, nameEq(t, "latency")), want)
}

func (s *suite) testRollback(t *testing.T) {
	st := s.fresh(t)
	committed := Series{labels.FromStrings("__name__", "kept"), floats(base, 1000, 1)}
	write(t, st, committed)

	app := st.AppenderV2(context.Background())
	for _, ls := range []labels.Labels{labels.FromStrings("__name__", "discarded"), committed.Labels} {
		if _, err := app.Append(0, ls, 0, base+5000, 7, nil, nil, storage.AppendV2Options{}); err != nil {
			t.Fatalf("append %s: %v", ls, err)
		}
	}
	if err := app.Rollback(); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	flush(t, st)
	got := sel(t, st, base-1, base+time.Hour.Milliseconds(), nil, mustMatcher(t, labels.MatchRegexp, labels.MetricName, ".+"))
	assertSeries(t, got, []Series{committed})
}

func (s *suite) testStaleness(t *testing.T) {
	st := s.fresh(t)
	stale := math.Float64frombits(value.StaleNaN)
	want := []Series{{labels.FromStrings("__name__", "up", "job", "x"), floats(base, 15_000, 1, 1, stale, 1, stale)}}
	write(t, st, want...)
	got := sel(t, st, base, base+time.Hour.Milliseconds(), nil, nameEq(t, "up"))
	assertSeries(t, got, want) // compares bits
	for _, i := range []int{2, 4} {
		if v := got[0].Samples[i].V; !value.IsStaleNaN(v) || math.Float64bits(v) != value.StaleNaN {
			t.Errorf("sample %d: bits %#x, want StaleNaN %#x", i, math.Float64bits(v), value.StaleNaN)
		}
	}
	if value.IsStaleNaN(got[0].Samples[0].V) {
		t.Errorf("sample 0 read back as stale")
	}
}

func (s *suite) testOutOfOrder(t *testing.T) {
	st := s.fresh(t)
	ls := labels.FromStrings("__name__", "ooo")
	write(t, st, Series{ls, floats(base+60_000, 1, 2)})
	err := appendOne(st, ls, Sample{T: base + 30_000, V: 1})
	flush(t, st)
	got := sel(t, st, base, base+time.Hour.Milliseconds(), nil, nameEq(t, "ooo"))
	switch s.o.ooo {
	case OOOReject:
		if !errors.Is(err, storage.ErrOutOfOrderSample) {
			t.Fatalf("older sample: err = %v, want storage.ErrOutOfOrderSample", err)
		}
		assertSeries(t, got, []Series{{ls, floats(base+60_000, 1, 2)}})
	case OOOAccept:
		if err != nil {
			t.Fatalf("older sample: %v, want it accepted", err)
		}
		assertSeries(t, got, []Series{{ls, []Sample{{T: base + 30_000, V: 1}, {T: base + 60_000, V: 2}}}})
	}
}

func (s *suite) testDuplicateSame(t *testing.T) {
	st := s.fresh(t)
	ls := labels.FromStrings("__name__", "dup")
	write(t, st, Series{ls, floats(base, 1000, 3, 4)})
	if err := appendOne(st, ls, Sample{T: base + 1000, V: 4}); err != nil {
		t.Fatalf("re-append identical sample: %v, want it accepted", err)
	}
	flush(t, st)
	assertSeries(t, sel(t, st, base, base+time.Hour.Milliseconds(), nil, nameEq(t, "dup")), []Series{{ls, floats(base, 1000, 3, 4)}})
}

func (s *suite) testDuplicateDifferent(t *testing.T) {
	st := s.fresh(t)
	ls := labels.FromStrings("__name__", "dup")
	write(t, st, Series{ls, floats(base, 1000, 3, 4)})
	err := appendOne(st, ls, Sample{T: base + 1000, V: 5})
	if !errors.Is(err, storage.ErrDuplicateSampleForTimestamp) {
		t.Fatalf("same timestamp, different value: err = %v, want storage.ErrDuplicateSampleForTimestamp", err)
	}
	flush(t, st)
	assertSeries(t, sel(t, st, base, base+time.Hour.Milliseconds(), nil, nameEq(t, "dup")), []Series{{ls, floats(base, 1000, 3, 4)}})
}

// matcherFixture is the series set the matcher and label cases query.
func matcherFixture() []Series {
	mk := func(kv ...string) Series { return Series{labels.FromStrings(kv...), floats(base, 1000, 1)} }
	return []Series{
		mk("__name__", "http_requests_total", "code", "200", "job", "api", "path", "/a"),
		mk("__name__", "http_requests_total", "code", "200", "job", "web"),
		mk("__name__", "http_requests_total", "code", "404", "job", "web-canary"),
		mk("__name__", "http_requests_total", "code", "500", "job", "api", "path", "/b"),
		mk("__name__", "up", "job", "api"),
		mk("__name__", "up", "job", "web"),
	}
}

func (s *suite) testMatchers(t *testing.T) {
	st := s.fresh(t)
	all := matcherFixture()
	write(t, st, all...)
	// Indexes into all (sorted by labels, as the fixture is).
	type m = struct {
		t         labels.MatchType
		name, val string
	}
	cases := []struct {
		name string
		ms   []m
		want []int
	}{
		{"equal", []m{{labels.MatchEqual, "job", "api"}}, []int{0, 3, 4}},
		{"not equal", []m{{labels.MatchEqual, "__name__", "http_requests_total"}, {labels.MatchNotEqual, "code", "200"}}, []int{2, 3}},
		{"regexp", []m{{labels.MatchRegexp, "code", "2..|4.."}}, []int{0, 1, 2}},
		{"regexp is anchored", []m{{labels.MatchRegexp, "job", "web"}}, []int{1, 5}},
		{"regexp prefix", []m{{labels.MatchRegexp, "job", "web.*"}}, []int{1, 2, 5}},
		{"regexp anchored at start", []m{{labels.MatchRegexp, "job", ".*canary"}}, []int{2}},
		{"not regexp", []m{{labels.MatchRegexp, "__name__", ".+"}, {labels.MatchNotRegexp, "job", "web.*"}}, []int{0, 3, 4}},
		{"not regexp anchored", []m{{labels.MatchEqual, "__name__", "up"}, {labels.MatchNotRegexp, "job", "we"}}, []int{4, 5}},
		{"empty value: label absent", []m{{labels.MatchEqual, "__name__", "http_requests_total"}, {labels.MatchEqual, "path", ""}}, []int{1, 2}},
		{"not empty value: label present", []m{{labels.MatchNotEqual, "path", ""}}, []int{0, 3}},
		{"regexp matching empty", []m{{labels.MatchEqual, "__name__", "http_requests_total"}, {labels.MatchRegexp, "path", "/a|"}}, []int{0, 1, 2}},
		{"not regexp on absent label", []m{{labels.MatchEqual, "__name__", "up"}, {labels.MatchNotRegexp, "path", ".+"}}, []int{4, 5}},
		{"absent label equal", []m{{labels.MatchEqual, "nonexistent", "x"}}, nil},
		{"multiple matchers", []m{{labels.MatchEqual, "__name__", "http_requests_total"}, {labels.MatchRegexp, "job", "api|web"}, {labels.MatchNotEqual, "code", "500"}}, []int{0, 1}},
		{"name regexp", []m{{labels.MatchRegexp, "__name__", "u.*"}}, []int{4, 5}},
		{"case sensitive", []m{{labels.MatchEqual, "job", "API"}}, nil},
		{"case insensitive regexp", []m{{labels.MatchRegexp, "job", "(?i)API"}}, []int{0, 3, 4}},
		{"regexp with dots is not a literal", []m{{labels.MatchRegexp, "code", "2.0"}}, []int{0, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ms []*labels.Matcher
			for _, x := range c.ms {
				ms = append(ms, mustMatcher(t, x.t, x.name, x.val))
			}
			var want []Series
			for _, i := range c.want {
				want = append(want, all[i])
			}
			assertSeries(t, sel(t, st, base-1000, base+time.Hour.Milliseconds(), nil, ms...), want)
		})
	}
}

func (s *suite) testLabelNamesValues(t *testing.T) {
	st := s.fresh(t)
	write(t, st, matcherFixture()...)
	// A series that exists only later, to check the time range.
	late := base + 30*time.Minute.Milliseconds()
	write(t, st, Series{labels.FromStrings("__name__", "late", "job", "batch", "late_only", "yes"), floats(late, 1000, 1)})

	type m = struct {
		t         labels.MatchType
		name, val string
	}
	end := base + time.Hour.Milliseconds()
	allNames := []string{"__name__", "code", "job", "late_only", "path"}
	allJobs := []string{"api", "batch", "web", "web-canary"}
	cases := []struct {
		name       string
		mint, maxt int64
		ms         []m
		wantNames  []string
		valuesOf   string
		wantValues []string
		// Prometheus' label APIs may over-report for a partial time range
		// (the TSDB head answers from its index, not its samples): then the
		// result must contain the wanted values and be a subset of all.
		superset bool
	}{
		{"all", base - 1000, end, nil, allNames, "job", allJobs, false},
		{"time range before all data", base - 10*time.Hour.Milliseconds(), base - 9*time.Hour.Milliseconds(), nil, nil, "job", nil, false},
		{"time range after all data", end + time.Hour.Milliseconds(), end + 2*time.Hour.Milliseconds(), nil, nil, "job", nil, false},
		{"time range early series", base - 1000, base + 1000, nil, []string{"__name__", "code", "job", "path"}, "job", []string{"api", "web", "web-canary"}, true},
		{"time range late series", late, end, nil, []string{"__name__", "job", "late_only"}, "job", []string{"batch"}, true},
		{"matcher", base - 1000, end, []m{{labels.MatchEqual, "__name__", "up"}}, []string{"__name__", "job"}, "job", []string{"api", "web"}, false},
		{"matchers", base - 1000, end, []m{{labels.MatchEqual, "__name__", "http_requests_total"}, {labels.MatchRegexp, "job", "web.*"}}, []string{"__name__", "code", "job"}, "code", []string{"200", "404"}, false},
		{"matcher, values of name", base - 1000, end, []m{{labels.MatchRegexp, "job", "api"}}, []string{"__name__", "code", "job", "path"}, "__name__", []string{"http_requests_total", "up"}, false},
		{"matcher with empty value", base - 1000, end, []m{{labels.MatchEqual, "__name__", "http_requests_total"}, {labels.MatchEqual, "path", ""}}, []string{"__name__", "code", "job"}, "job", []string{"web", "web-canary"}, false},
		{"matcher and time range", late, end, []m{{labels.MatchEqual, "job", "batch"}}, []string{"__name__", "job", "late_only"}, "__name__", []string{"late"}, false},
		{"no match", base - 1000, end, []m{{labels.MatchEqual, "job", "nope"}}, nil, "job", nil, false},
		{"unknown label", base - 1000, end, nil, allNames, "nonexistent", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ms []*labels.Matcher
			for _, x := range c.ms {
				ms = append(ms, mustMatcher(t, x.t, x.name, x.val))
			}
			q, err := st.Querier(c.mint, c.maxt)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			names, _, err := q.LabelNames(context.Background(), nil, ms...)
			if err != nil {
				t.Fatalf("label names: %v", err)
			}
			checkStrings(t, "label names", names, c.wantNames, allNames, c.superset)
			vals, _, err := q.LabelValues(context.Background(), c.valuesOf, nil, ms...)
			if err != nil {
				t.Fatalf("label values: %v", err)
			}
			checkStrings(t, "label values of "+c.valuesOf, vals, c.wantValues, nil, c.superset)
		})
	}
	t.Run("limit hint", func(t *testing.T) {
		q, err := st.Querier(base-1000, end)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		names, _, err := q.LabelNames(context.Background(), &storage.LabelHints{Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(names) > 2 || !slices.IsSorted(names) {
			t.Errorf("label names with limit 2 = %q, want at most 2, sorted", names)
		}
	})
}

// checkStrings checks a sorted label API result against want (exactly, or
// as a lower bound within all when superset is set).
func checkStrings(t *testing.T, what string, got, want, all []string, superset bool) {
	t.Helper()
	if !slices.IsSorted(got) {
		t.Errorf("%s = %q, not sorted", what, got)
	}
	if !superset {
		if len(got) != 0 || len(want) != 0 {
			if !slices.Equal(got, want) {
				t.Errorf("%s = %q, want %q", what, got, want)
			}
		}
		return
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("%s = %q, missing %q", what, got, w)
		}
	}
	for _, g := range got {
		if all != nil && !slices.Contains(all, g) {
			t.Errorf("%s = %q: %q was never written", what, got, g)
		}
	}
}

func (s *suite) testSelectHints(t *testing.T) {
	st := s.fresh(t)
	ls := labels.FromStrings("__name__", "hinted", "job", "x")
	all := floats(base, 10_000, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	write(t, st, Series{ls, all}, Series{labels.FromStrings("__name__", "hinted", "job", "y"), floats(base, 10_000, 1)})
	mint, maxt := base, base+90_000

	t.Run("range", func(t *testing.T) {
		// The engine selects with hints narrower than the querier (a range
		// vector); everything in the hinted range must come back, nothing
		// outside the querier's range may.
		h := &storage.SelectHints{Start: base + 20_000, End: base + 50_000, Step: 10_000, Range: 30_000, Func: "rate"}
		got := sel(t, st, mint+10_000, maxt-10_000, h, nameEq(t, "hinted"), mustMatcher(t, labels.MatchEqual, "job", "x"))
		if len(got) != 1 {
			t.Fatalf("got %d series, want 1", len(got))
		}
		for _, smp := range got[0].Samples {
			if smp.T < mint+10_000 || smp.T > maxt-10_000 {
				t.Errorf("sample %s outside querier range", smp)
			}
		}
		for _, w := range all[2:6] {
			if !slices.ContainsFunc(got[0].Samples, w.equal) {
				t.Errorf("sample %s in hinted range missing from %v", w, got[0].Samples)
			}
		}
	})
	t.Run("series func", func(t *testing.T) {
		// Func "series" (the /api/v1/series path) needs only label sets.
		h := &storage.SelectHints{Start: mint, End: maxt, Func: "series"}
		q, err := st.Querier(mint, maxt)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		set := q.Select(context.Background(), true, h, nameEq(t, "hinted"))
		var got []string
		for set.Next() {
			got = append(got, set.At().Labels().String())
		}
		if err := set.Err(); err != nil {
			t.Fatal(err)
		}
		if want := []string{ls.String(), `{__name__="hinted", job="y"}`}; !slices.Equal(got, want) {
			t.Errorf("series = %v, want %v", got, want)
		}
	})
	t.Run("unsorted", func(t *testing.T) {
		q, err := st.Querier(mint, maxt)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		set := q.Select(context.Background(), false, &storage.SelectHints{Start: mint, End: maxt}, nameEq(t, "hinted"))
		n := 0
		for set.Next() {
			n++
		}
		if err := set.Err(); err != nil || n != 2 {
			t.Errorf("unsorted select: %d series, err %v; want 2", n, err)
		}
	})
}

func (s *suite) testManySeries(t *testing.T) {
	st := s.fresh(t)
	const n = 2000
	want := make([]Series, 0, n)
	for i := range n {
		want = append(want, Series{
			labels.FromStrings("__name__", "many", "i", fmt.Sprintf("%05d", i), "mod", fmt.Sprint(i%7)),
			floats(base+int64(i), 15_000, float64(i), float64(i)+0.5, float64(2*i)),
		})
	}
	write(t, st, want...)
	got := sel(t, st, base, base+time.Hour.Milliseconds(), nil, nameEq(t, "many"))
	assertSeries(t, got, want)

	got = sel(t, st, base, base+time.Hour.Milliseconds(), nil, nameEq(t, "many"), mustMatcher(t, labels.MatchEqual, "mod", "3"))
	if len(got) != (n+3)/7 {
		t.Errorf("mod=3: %d series, want %d", len(got), (n+3)/7)
	}
}

func (s *suite) testRestart(t *testing.T) {
	dir := t.TempDir()
	st := s.open(t, dir)
	want := []Series{
		{labels.FromStrings("__name__", "persisted", "k", "a"), floats(base, 15_000, 1, 2, math.Float64frombits(value.StaleNaN), 4)},
		{labels.FromStrings("__name__", "persisted", "k", "b"), floats(base, 15_000, 10)},
	}
	if s.o.nativeHistograms {
		h := &histogram.Histogram{Count: 3, Sum: 4.5, Schema: 0, PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}}, PositiveBuckets: []int64{1, 1}}
		want = append(want, Series{labels.FromStrings("__name__", "persisted", "k", "h"), []Sample{{T: base, H: h}}})
	}
	write(t, st, want...)
	if err := st.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	st = s.openStore(t, dir)
	got := sel(t, st, base, base+time.Hour.Milliseconds(), nil, nameEq(t, "persisted"))
	assertSeries(t, got, want)

	// The reopened store keeps accepting appends to the old series, and
	// still enforces ordering against what it had before.
	if err := appendOne(st, want[0].Labels, Sample{T: base + 60_000, V: 5}); err != nil {
		t.Fatalf("append after restart: %v", err)
	}
	if s.o.ooo == OOOReject {
		if err := appendOne(st, want[1].Labels, Sample{T: base - 1000, V: 0}); !errors.Is(err, storage.ErrOutOfOrderSample) {
			t.Errorf("out-of-order append after restart: err = %v, want storage.ErrOutOfOrderSample", err)
		}
	}
	flush(t, st)
	got = sel(t, st, base, base+time.Hour.Milliseconds(), nil, nameEq(t, "persisted"), mustMatcher(t, labels.MatchEqual, "k", "a"))
	assertSeries(t, got, []Series{{want[0].Labels, append(slices.Clone(want[0].Samples), Sample{T: base + 60_000, V: 5})}})
}

func (s *suite) testFlushHealth(t *testing.T) {
	st := s.fresh(t)
	if err := st.Health(); err != nil {
		t.Fatalf("health of a fresh store: %v", err)
	}
	write(t, st, Series{labels.FromStrings("__name__", "f"), floats(base, 1, 1)})
	if err := st.Health(); err != nil {
		t.Fatalf("health after flush: %v", err)
	}
	// Flush with nothing pending returns.
	flush(t, st)
}

func (s *suite) testCloseTwice(t *testing.T) {
	st := s.open(t, t.TempDir())
	write(t, st, Series{labels.FromStrings("__name__", "c"), floats(base, 1, 1)})
	if err := st.Close(); err != nil {
		t.Fatalf("first close: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func (s *suite) testPromQLRate(t *testing.T) {
	st := s.fresh(t)
	// A counter going up by 15 every 15s (1/s), with a reset in the second
	// series: rate must see through it.
	a := floats(base, 15_000, 0, 15, 30, 45, 60, 75, 90, 105, 120)
	b := floats(base, 15_000, 100, 130, 160, 10, 40, 70, 100, 130, 160)
	write(t, st,
		Series{labels.FromStrings("__name__", "reqs_total", "inst", "a"), a},
		Series{labels.FromStrings("__name__", "reqs_total", "inst", "b"), b},
	)
	eng := store.NewEngine(store.DefaultQueryConfig, discardLogger(), nil)
	ts := time.UnixMilli(base + 120_000)
	q, err := eng.NewInstantQuery(context.Background(), st, nil, `rate(reqs_total[2m])`, ts)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	res := q.Exec(context.Background())
	if res.Err != nil {
		t.Fatalf("exec: %v", res.Err)
	}
	vec, err := res.Vector()
	if err != nil {
		t.Fatalf("result %v: %v", res.Value, err)
	}
	// b: +30 per 15s with a reset to 10: increase 190 over the 105s sampled.
	want := map[string]float64{"a": 1, "b": 190.0 / 105}
	if len(vec) != len(want) {
		t.Fatalf("got %v, want 2 series", vec)
	}
	for _, smp := range vec {
		inst := smp.Metric.Get("inst")
		if smp.Metric.Get(labels.MetricName) != "" {
			t.Errorf("rate kept the metric name: %s", smp.Metric)
		}
		if math.Abs(smp.F-want[inst]) > 1e-9 {
			t.Errorf("rate for %s = %v, want %v", inst, smp.F, want[inst])
		}
	}

	// A range query evaluates the same path step by step.
	rq, err := eng.NewRangeQuery(context.Background(), st, nil, `sum(reqs_total)`, time.UnixMilli(base), time.UnixMilli(base+120_000), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer rq.Close()
	rres := rq.Exec(context.Background())
	if rres.Err != nil {
		t.Fatalf("range exec: %v", rres.Err)
	}
	m, err := rres.Matrix()
	if err != nil || len(m) != 1 {
		t.Fatalf("range result %v: %v", rres.Value, err)
	}
	wantPts := []promql.FPoint{{T: base, F: 100}, {T: base + 60_000, F: 100}, {T: base + 120_000, F: 280}}
	if !slices.Equal(m[0].Floats, wantPts) {
		t.Errorf("sum(reqs_total) = %v, want %v", m[0].Floats, wantPts)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
