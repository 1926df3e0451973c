package clickhouse_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alecthomas/units"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/tidewatch/tidewatch/internal/testinfra"
	"github.com/tidewatch/tidewatch/store"
	"github.com/tidewatch/tidewatch/store/clickhouse"
)

// query runs SQL over the server's HTTP interface and trims the answer.
func query(t *testing.T, srv *testinfra.ClickHouse, sql string) string {
	t.Helper()
	out, err := srv.Query(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// Several instances starting at once on one database all succeed, record
// every migration, and starting again changes nothing.
func TestMigrationsConcurrentAndIdempotent(t *testing.T) {
	t.Parallel()
	srv := testinfra.StartClickHouse(t)
	base := testConfig(srv, t.TempDir())
	open := func(i int) (*clickhouse.Store, error) {
		cfg := base
		cfg.Queue.Path = filepath.Join(t.TempDir(), fmt.Sprint(i))
		return clickhouse.Open(cfg, slog.New(slog.DiscardHandler), nil)
	}
	for round := range 2 {
		var wg sync.WaitGroup
		errs := make([]error, 4)
		stores := make([]*clickhouse.Store, 4)
		for i := range stores {
			wg.Go(func() { stores[i], errs[i] = open(i) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, instance %d: %v", round, i, err)
			}
			stores[i].Close()
		}
		db := base.Database
		if got := query(t, srv, "SELECT groupArray(version) FROM (SELECT DISTINCT version FROM "+db+".schema_migrations ORDER BY version)"); got != "[1,2]" {
			t.Errorf("round %d: migrations %s, want [1,2]", round, got)
		}
		if got := query(t, srv, "SELECT groupArray(name) FROM (SELECT name FROM system.tables WHERE database = '"+db+"' ORDER BY name)"); got != "['samples','samples_5m','samples_5m_mv','schema_migrations','series']" {
			t.Errorf("round %d: tables %s", round, got)
		}
	}
}

// The rollup table aggregates inserted samples into 5-minute buckets,
// leaving NaN (stale markers) out.
func TestRollup(t *testing.T) {
	t.Parallel()
	srv := testinfra.StartClickHouse(t)
	cfg := testConfig(srv, t.TempDir())
	st := openStore(t, cfg)
	defer st.Close()
	ls := labels.FromStrings("__name__", "rolled")
	app := st.AppenderV2(context.Background())
	// Buckets start at multiples of 5 minutes: 1_700_000_100_000 is one.
	for i, v := range []float64{1, 5, 3, staleNaN(), 2} {
		ts := int64(1_700_000_100_000) + 180_000 + int64(i)*60_000
		if _, err := app.Append(0, ls, 0, ts, v, nil, nil, storage.AppendV2Options{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	flushWithin(t, st, time.Minute)
	got := query(t, srv, fmt.Sprintf(`SELECT bucket, minMerge(min_value), maxMerge(max_value), sumMerge(sum_value), countMerge(count), argMaxMerge(last_value)
FROM %s.samples_5m GROUP BY bucket ORDER BY bucket`, cfg.Database))
	want := "1700000100000\t1\t5\t6\t2\t5\n1700000400000\t2\t3\t5\t2\t2"
	if got != want {
		t.Errorf("rollup:\n%s\nwant\n%s", got, want)
	}
}

func TestQueryLimits(t *testing.T) {
	t.Parallel()
	srv := testinfra.StartClickHouse(t)
	cfg := testConfig(srv, t.TempDir())
	cfg.Query = clickhouse.QueryLimits{MaxSeries: 3, MaxSamples: 10}
	st := openStore(t, cfg)
	defer st.Close()
	app := st.AppenderV2(context.Background())
	for i := range 5 {
		for j := range 3 {
			ls := labels.FromStrings("__name__", "limited", "i", fmt.Sprint(i))
			if _, err := app.Append(0, ls, 0, 1_700_000_000_000+int64(j)*1000, 1, nil, nil, storage.AppendV2Options{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	flushWithin(t, st, time.Minute)
	eng := store.NewEngine(store.DefaultQueryConfig, slog.New(slog.DiscardHandler), nil)
	for _, tc := range []struct {
		expr string
		want error
		msg  string
	}{
		{`limited`, clickhouse.ErrTooManySeries, "storage.clickhouse.query.max_series=3"},
		{`limited{i=~"[0-2]"}`, nil, ""}, // 3 series, 9 samples
		{`limited{i=~"[0-3]"}`, clickhouse.ErrTooManySeries, "max_series"},
		{`count_over_time(limited{i=~"[0-2]"}[1m]) or count_over_time(limited{i=~"[34]"}[1m])`, nil, ""},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			q, err := eng.NewInstantQuery(context.Background(), st, nil, tc.expr, time.UnixMilli(1_700_000_002_000))
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			res := q.Exec(context.Background())
			if !errors.Is(res.Err, tc.want) && (tc.want != nil || res.Err != nil) {
				t.Fatalf("err = %v, want %v", res.Err, tc.want)
			}
			if tc.want != nil && !strings.Contains(res.Err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", res.Err, tc.msg)
			}
		})
	}
	t.Run("max_samples", func(t *testing.T) {
		q, _ := st.Querier(0, 1_800_000_000_000)
		defer q.Close()
		set := q.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchRegexp, "i", "[0-3]"))
		for set.Next() {
		}
		// 4 series are over max_series already; with 3 series and 9
		// samples under both limits, lower max_samples instead.
		if !errors.Is(set.Err(), clickhouse.ErrTooManySeries) {
			t.Errorf("err = %v", set.Err())
		}
		cfg2 := cfg
		cfg2.Queue.Path = filepath.Join(t.TempDir(), "q")
		cfg2.Query = clickhouse.QueryLimits{MaxSeries: 10, MaxSamples: 10}
		st2 := openStore(t, cfg2)
		defer st2.Close()
		q2, _ := st2.Querier(0, 1_800_000_000_000)
		defer q2.Close()
		set = q2.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "limited"))
		for set.Next() {
		}
		if !errors.Is(set.Err(), clickhouse.ErrTooManySamples) || !strings.Contains(set.Err().Error(), "max_samples=10") {
			t.Errorf("15 samples with max_samples 10: err = %v", set.Err())
		}
	})
}

// A full queue rejects commits loudly (error, Health, metric) and recovers
// once ClickHouse drains it; nothing accepted is lost.
func TestFullQueue(t *testing.T) {
	t.Parallel()
	srv := testinfra.StartClickHouse(t)
	cfg := testConfig(srv, t.TempDir())
	cfg.Queue.MaxSize = 4 * units.MiB
	st := openStore(t, cfg) // creates the schema
	st.Close()
	srv.Stop()
	st = openStore(t, cfg)
	defer st.Close()
	in := newIngester("full_test", 2000, 1_700_000_000_000)
	var err error
	for range 10_000 {
		if err = in.round(st); err != nil {
			break
		}
	}
	if !errors.Is(err, clickhouse.ErrQueueFull) {
		t.Fatalf("commit into a full queue: %v, want ErrQueueFull", err)
	}
	if herr := st.Health(); !errors.Is(herr, clickhouse.ErrQueueFull) {
		t.Errorf("health = %v, want ErrQueueFull", herr)
	}
	if v := metricValue(st, "tidewatch_clickhouse_queue_full"); v != 1 {
		t.Errorf("queue_full = %v, want 1", v)
	}
	if v := metricValue(st, "tidewatch_clickhouse_samples_rejected_total"); v < 2000 {
		t.Errorf("samples_rejected_total = %v, want ≥ 2000", v)
	}
	accepted := in.committed()
	t.Logf("queue full after %d rounds of %d series", accepted, len(in.series))
	srv.Start()
	flushWithin(t, st, 2*time.Minute)
	if err := st.Health(); err != nil {
		t.Errorf("health after the queue drained: %v", err)
	}
	if err := in.round(st); err != nil {
		t.Errorf("commit after the queue drained: %v", err)
	}
	flushWithin(t, st, time.Minute)
	checkExactly(t, st, in, accepted+1)
}

// On servers without TTL, retention drops the daily partitions older than
// storage.clickhouse.retention.
func TestRetentionWithoutTTL(t *testing.T) {
	t.Parallel()
	srv := testinfra.StartClickHouse(t)
	cfg := testConfig(srv, t.TempDir())
	cfg.Retention = model.Duration(2 * 24 * time.Hour)
	st := openStore(t, cfg)
	defer st.Close()
	now := time.Date(2023, 11, 20, 12, 0, 0, 0, time.UTC)
	app := st.AppenderV2(context.Background())
	ls := labels.FromStrings("__name__", "retained")
	for d := 5; d >= 0; d-- {
		if _, err := app.Append(0, ls, 0, now.AddDate(0, 0, -d).UnixMilli(), float64(d), nil, nil, storage.AppendV2Options{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	flushWithin(t, st, time.Minute)
	if err := st.DropExpired(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	// Days now-2 … now stay (the cut is at now-2d, 12:00: its day's
	// partition is not entirely expired).
	if got := query(t, srv, "SELECT groupArray(value) FROM (SELECT value FROM "+cfg.Database+".samples ORDER BY timestamp)"); got != "[2,1,0]" {
		t.Errorf("samples after retention: %s, want [2,1,0]", got)
	}
}

func staleNaN() float64 { return math.Float64frombits(0x7ff0000000000002) }
