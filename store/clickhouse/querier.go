package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/annotations"
)

// Errors of the read path.
var (
	// ErrTooManySeries is returned when a selector matches more than
	// storage.clickhouse.query.max_series series.
	ErrTooManySeries = errors.New("query selects too many series")
	// ErrTooManySamples is returned when a selector reads more than
	// storage.clickhouse.query.max_samples samples.
	ErrTooManySamples = errors.New("query reads too many samples")
)

// Querier returns a querier over [mint, maxt] (milliseconds, inclusive).
func (s *Store) Querier(mint, maxt int64) (storage.Querier, error) {
	return &querier{s: s, mint: mint, maxt: maxt}, nil
}

// ChunkQuerier returns a querier that encodes the selected samples into
// chunks, for callers that need a storage.SampleAndChunkQueryable.
func (s *Store) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	return &chunkQuerier{querier{s: s, mint: mint, maxt: maxt}}, nil
}

type querier struct {
	s          *Store
	mint, maxt int64
}

func (querier) Close() error { return nil }

// condition renders the matchers as a SQL condition on the series table,
// with its bind arguments. Regular expressions are anchored and use the
// (?s) flag as Prometheus' are; ClickHouse's match() is RE2 like Go's.
func condition(ms []*labels.Matcher) (string, []any) {
	var conds []string
	var args []any
	for _, m := range ms {
		col := "label_values[indexOf(label_names, ?)]"
		colArgs := []any{m.Name}
		if m.Name == labels.MetricName {
			col, colArgs = "metric_name", nil
		}
		switch m.Type {
		case labels.MatchEqual:
			conds = append(conds, col+" = ?")
			args = append(append(args, colArgs...), m.Value)
		case labels.MatchNotEqual:
			conds = append(conds, col+" != ?")
			args = append(append(args, colArgs...), m.Value)
		case labels.MatchRegexp, labels.MatchNotRegexp:
			not := ""
			if m.Type == labels.MatchNotRegexp {
				not = "NOT "
			}
			switch m.Value {
			case ".*":
				if not == "" {
					continue // matches everything
				}
				conds = append(conds, "0")
				continue
			case ".+":
				op := " != ''"
				if not != "" {
					op = " = ''"
				}
				conds = append(conds, col+op)
				args = append(args, colArgs...)
				continue
			}
			conds = append(conds, not+"match("+col+", ?)")
			args = append(append(args, colArgs...), "^(?s:"+m.Value+")$")
		}
	}
	if len(conds) == 0 {
		return "1", nil
	}
	return strings.Join(conds, " AND "), args
}

// periodRange is the series table condition for samples in [mint, maxt].
func periodRange(mint, maxt int64) (string, []any) {
	return "period >= toDateTime(?) AND period <= toDateTime(?)",
		[]any{floorDiv(mint, hourMillis) * 3600, floorDiv(maxt, hourMillis) * 3600}
}

// seriesWhere is the WHERE clause selecting the series table rows of
// matchers ms with samples in [mint, maxt] (at hour granularity).
func seriesWhere(mint, maxt int64, ms []*labels.Matcher) (string, []any) {
	pc, pargs := periodRange(mint, maxt)
	mc, margs := condition(ms)
	return pc + " AND " + mc, append(pargs, margs...)
}

// selectedSeries is one series of a Select: its labels and samples.
type selectedSeries struct {
	fp  uint64
	ls  labels.Labels
	ts  []int64
	vs  []float64
	got bool // has samples
}

// Select resolves the matchers against the series table, then reads the
// samples of all selected series in the hinted range with one query, in
// (fingerprint, timestamp) order, skipping duplicates of retried inserts.
func (q *querier) Select(ctx context.Context, _ bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	mint, maxt := q.mint, q.maxt
	if hints != nil {
		mint, maxt = max(mint, hints.Start), min(maxt, hints.End)
	}
	if mint > maxt {
		return storage.EmptySeriesSet()
	}
	sch := q.s.names
	where, args := seriesWhere(mint, maxt, ms)
	limit := q.s.cfg.Query.MaxSeries
	rows, err := q.s.conn.Query(ctx, fmt.Sprintf(
		"SELECT fingerprint, any(label_names), any(label_values) FROM %s WHERE %s GROUP BY fingerprint LIMIT %d",
		sch.table(tableSeries), where, limit+1), args...)
	if err != nil {
		return storage.ErrSeriesSet(fmt.Errorf("select series from %s: %w", sch.table(tableSeries), err))
	}
	var series []*selectedSeries
	byFp := make(map[uint64]*selectedSeries)
	for rows.Next() {
		var fp uint64
		var names, values []string
		if err := rows.Scan(&fp, &names, &values); err != nil {
			rows.Close()
			return storage.ErrSeriesSet(fmt.Errorf("read series: %w", err))
		}
		if len(series) >= limit {
			rows.Close()
			q.s.metrics.queryLimitHits.Inc()
			return storage.ErrSeriesSet(fmt.Errorf("%w: more than storage.clickhouse.query.max_series=%d match %s", ErrTooManySeries, limit, matchersString(ms)))
		}
		b := labels.NewScratchBuilder(len(names))
		for i := range names {
			b.Add(names[i], values[i])
		}
		b.Sort()
		ls := b.Labels()
		// The SQL condition is a filter; the matchers decide.
		if !matchAll(ms, ls) {
			continue
		}
		ss := &selectedSeries{fp: fp, ls: ls}
		series = append(series, ss)
		byFp[fp] = ss
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return storage.ErrSeriesSet(fmt.Errorf("read series: %w", err))
	}
	q.s.metrics.querySeriesRead.Add(len(series))
	// Sorted whether or not the caller asks: it is cheap next to the
	// query and keeps results deterministic.
	slices.SortFunc(series, func(a, b *selectedSeries) int { return labels.Compare(a.ls, b.ls) })
	if hints != nil && hints.Func == "series" {
		return &seriesSet{series: series, all: true}
	}
	if len(series) == 0 {
		return storage.EmptySeriesSet()
	}
	if err := q.readSamples(ctx, mint, maxt, ms, series, byFp); err != nil {
		return storage.ErrSeriesSet(err)
	}
	return &seriesSet{series: series}
}

// readSamples fills in the samples of series in [mint, maxt]. The rows
// come without ORDER BY: sorting on the server would hold back the whole
// result until the last row is read, while rows of one part arrive sorted
// by (hour, fingerprint, timestamp) anyway. Each series' samples are put
// in order (and rid of duplicates from retried inserts) in Go.
func (q *querier) readSamples(ctx context.Context, mint, maxt int64, ms []*labels.Matcher, series []*selectedSeries, byFp map[uint64]*selectedSeries) error {
	sch := q.s.names
	in := "IN"
	if sch.cluster != "" {
		in = "GLOBAL IN"
	}
	var fpCond string
	var args []any
	if len(series) <= q.s.literalFingerprints {
		var sb strings.Builder
		for i, ss := range series {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(strconv.FormatUint(ss.fp, 10))
		}
		fpCond = "fingerprint IN (" + sb.String() + ")"
	} else {
		where, wargs := seriesWhere(mint, maxt, ms)
		fpCond = fmt.Sprintf("fingerprint %s (SELECT fingerprint FROM %s WHERE %s)", in, sch.table(tableSeries), where)
		args = wargs
	}
	// The hour condition selects primary key ranges; the timestamp
	// condition trims their ends.
	args = append(args, mint/hourMillis, maxt/hourMillis, mint, maxt)
	stmt := fmt.Sprintf("SELECT fingerprint, timestamp, value FROM %s WHERE %s AND %s >= ? AND %[3]s <= ? AND timestamp >= ? AND timestamp <= ?",
		sch.table(tableSamples), fpCond, sampleHour)
	rows, err := q.s.conn.Query(ctx, stmt, args...)
	if err != nil {
		return fmt.Errorf("select samples from %s: %w", sch.table(tableSamples), err)
	}
	defer rows.Close()
	limit := q.s.cfg.Query.MaxSamples
	var (
		n   int
		cur *selectedSeries
		fp  uint64
		t   int64
		v   float64
	)
	dest := []any{&fp, &t, &v} // one slice for all rows: Scan(&fp, &t, &v) allocates per call
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("read samples: %w", err)
		}
		n++
		if cur == nil || cur.fp != fp {
			cur = byFp[fp]
			if cur == nil {
				continue // a series the matchers rejected, or new since
			}
		}
		// Duplicates are not removed yet: allow for some.
		if n > limit*2 {
			q.s.metrics.queryLimitHits.Inc()
			return fmt.Errorf("%w: more than storage.clickhouse.query.max_samples=%d for %s", ErrTooManySamples, limit, matchersString(ms))
		}
		cur.ts = append(cur.ts, t)
		cur.vs = append(cur.vs, v)
	}
	q.s.metrics.queryRowsRead.Add(n)
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read samples: %w", err)
	}
	total := 0
	for _, ss := range series {
		ss.sortSamples()
		ss.got = len(ss.ts) > 0
		total += len(ss.ts)
	}
	if total > limit {
		q.s.metrics.queryLimitHits.Inc()
		return fmt.Errorf("%w: %d samples, more than storage.clickhouse.query.max_samples=%d for %s", ErrTooManySamples, total, limit, matchersString(ms))
	}
	return nil
}

// sortSamples puts the samples in timestamp order and drops repeated
// timestamps (the duplicates of a retried insert, not merged yet), keeping
// the first.
func (ss *selectedSeries) sortSamples() {
	if !slices.IsSorted(ss.ts) {
		sort.Stable(byTimestamp{ss})
	}
	k := 0
	for i := range ss.ts {
		if i > 0 && ss.ts[i] == ss.ts[k-1] {
			continue
		}
		ss.ts[k], ss.vs[k] = ss.ts[i], ss.vs[i]
		k++
	}
	ss.ts, ss.vs = ss.ts[:k], ss.vs[:k]
}

// byTimestamp sorts a series' parallel timestamp and value slices.
type byTimestamp struct{ *selectedSeries }

func (b byTimestamp) Len() int           { return len(b.ts) }
func (b byTimestamp) Less(i, j int) bool { return b.ts[i] < b.ts[j] }
func (b byTimestamp) Swap(i, j int) {
	b.ts[i], b.ts[j] = b.ts[j], b.ts[i]
	b.vs[i], b.vs[j] = b.vs[j], b.vs[i]
}

func matchAll(ms []*labels.Matcher, ls labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

func matchersString(ms []*labels.Matcher) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// LabelNames returns the label names of the series with samples in the
// querier's range (at hour granularity) that match ms, sorted.
func (q *querier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	where, args := seriesWhere(q.mint, q.maxt, ms)
	stmt := fmt.Sprintf("SELECT DISTINCT arrayJoin(label_names) AS name FROM %s WHERE %s ORDER BY name", q.s.names.table(tableSeries), where)
	if hints != nil && hints.Limit > 0 {
		stmt += fmt.Sprintf(" LIMIT %d", hints.Limit)
	}
	out, err := q.strings(ctx, stmt, args)
	if err != nil {
		return nil, nil, fmt.Errorf("label names: %w", err)
	}
	return out, nil, nil
}

// LabelValues returns the non-empty values of label name on the series
// with samples in the querier's range (at hour granularity) that match ms.
func (q *querier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	where, args := seriesWhere(q.mint, q.maxt, ms)
	col := "label_values[indexOf(label_names, ?)]"
	colArgs := []any{name}
	if name == labels.MetricName {
		col, colArgs = "metric_name", nil
	}
	stmt := fmt.Sprintf("SELECT DISTINCT %s AS value FROM %s WHERE %s AND value != '' ORDER BY value", col, q.s.names.table(tableSeries), where)
	if hints != nil && hints.Limit > 0 {
		stmt += fmt.Sprintf(" LIMIT %d", hints.Limit)
	}
	out, err := q.strings(ctx, stmt, append(colArgs, args...))
	if err != nil {
		return nil, nil, fmt.Errorf("label values of %q: %w", name, err)
	}
	return out, nil, nil
}

func (q *querier) strings(ctx context.Context, stmt string, args []any) ([]string, error) {
	rows, err := q.s.conn.Query(ctx, stmt, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// seriesSet iterates selected series in label order, skipping those
// without samples unless all is set (Func "series").
type seriesSet struct {
	series []*selectedSeries
	all    bool
	i      int
	cur    *selectedSeries
}

func (s *seriesSet) Next() bool {
	for s.i < len(s.series) {
		s.cur = s.series[s.i]
		s.i++
		if s.all || s.cur.got {
			return true
		}
	}
	return false
}

func (s *seriesSet) At() storage.Series              { return sampleSeries{s.cur} }
func (*seriesSet) Err() error                        { return nil }
func (*seriesSet) Warnings() annotations.Annotations { return nil }
func (s sampleSeries) Labels() labels.Labels         { return s.ss.ls }
func (s sampleSeries) Iterator(it chunkenc.Iterator) chunkenc.Iterator {
	if fi, ok := it.(*floatIterator); ok {
		fi.reset(s.ss)
		return fi
	}
	fi := &floatIterator{}
	fi.reset(s.ss)
	return fi
}

type sampleSeries struct{ ss *selectedSeries }

// floatIterator iterates one series' samples.
type floatIterator struct {
	ts []int64
	vs []float64
	i  int
}

var _ chunkenc.Iterator = (*floatIterator)(nil)

func (it *floatIterator) reset(ss *selectedSeries) { it.ts, it.vs, it.i = ss.ts, ss.vs, -1 }

func (it *floatIterator) Next() chunkenc.ValueType {
	if it.i+1 >= len(it.ts) {
		it.i = len(it.ts)
		return chunkenc.ValNone
	}
	it.i++
	return chunkenc.ValFloat
}

// millis is int64 under another name: chunkenc.Iterator's Seek is not
// io.Seeker's, and go vet's stdmethods check would take it for one.
type millis = int64

func (it *floatIterator) Seek(t millis) chunkenc.ValueType {
	if it.i < 0 {
		it.i = 0
	}
	if it.i >= len(it.ts) {
		return chunkenc.ValNone
	}
	if it.ts[it.i] >= t {
		return chunkenc.ValFloat
	}
	j, _ := slices.BinarySearch(it.ts[it.i:], t)
	it.i += j
	if it.i >= len(it.ts) {
		return chunkenc.ValNone
	}
	return chunkenc.ValFloat
}

func (it *floatIterator) At() (int64, float64) { return it.ts[it.i], it.vs[it.i] }

// AtHistogram is never called: Next returns ValFloat only.
func (it *floatIterator) AtHistogram(*histogram.Histogram) (int64, *histogram.Histogram) {
	return it.ts[it.i], nil
}

// AtFloatHistogram is never called: Next returns ValFloat only.
func (it *floatIterator) AtFloatHistogram(*histogram.FloatHistogram) (int64, *histogram.FloatHistogram) {
	return it.ts[it.i], nil
}

func (it *floatIterator) AtT() int64  { return it.ts[it.i] }
func (it *floatIterator) AtST() int64 { return 0 }
func (*floatIterator) Err() error     { return nil }

// chunkQuerier adapts the sample querier to storage.ChunkQuerier.
type chunkQuerier struct{ querier }

func (q *chunkQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.ChunkSeriesSet {
	return storage.NewSeriesSetToChunkSet(q.querier.Select(ctx, sortSeries, hints, ms...))
}
