package alerting_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"

	"github.com/tidewatch/tidewatch/store"
	"github.com/tidewatch/tidewatch/store/embedded"
)

const (
	benchSeries = 100_000
	benchRules  = 1_000
)

// BenchmarkRuleGroupEval evaluates one group of 1,000 rules over 100,000
// series in the embedded store (10 min of 15 s samples, in the head): 500
// recording rules sum(rate(x[5m])) by (job) over 100 series each, and 500
// alerting rules x > threshold over 100 series each. One op = one group
// evaluation (queries, ALERTS and recorded samples appended).
func BenchmarkRuleGroupEval(b *testing.B) {
	logger := slog.New(slog.DiscardHandler)
	dir := b.TempDir()
	db, err := embedded.Open(embedded.Config{Path: filepath.Join(dir, "db"), Retention: model.Duration(24 * time.Hour)}, logger, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	now := time.Now()
	app := db.AppenderV2(context.Background())
	for i := range benchSeries {
		ls := labels.FromStrings("__name__", "tw_bench_total", "shard", fmt.Sprint(i%benchRules), "job", fmt.Sprint("job", i%10), "instance", fmt.Sprint("i", i))
		var ref storage.SeriesRef
		for ts := now.Add(-10 * time.Minute); !ts.After(now); ts = ts.Add(15 * time.Second) {
			if ref, err = app.Append(ref, ls, 0, ts.UnixMilli(), float64(ts.Unix()%1000+int64(i%7)), nil, nil, storage.AppendV2Options{}); err != nil {
				b.Fatal(err)
			}
		}
		if i%10_000 == 9_999 {
			if err := app.Commit(); err != nil {
				b.Fatal(err)
			}
			app = db.AppenderV2(context.Background())
		}
	}
	if err := app.Commit(); err != nil {
		b.Fatal(err)
	}

	var rf strings.Builder
	rf.WriteString("groups:\n  - name: bench\n    rules:\n")
	for i := range benchRules {
		if i%2 == 0 {
			fmt.Fprintf(&rf, "      - record: job:tw_bench:rate5m_%d\n        expr: sum by (job) (rate(tw_bench_total{shard=\"%d\"}[5m]))\n", i, i)
		} else {
			fmt.Fprintf(&rf, "      - alert: Bench%d\n        expr: tw_bench_total{shard=\"%d\"} > 500\n        for: 5m\n", i, i)
		}
	}
	file := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(file, []byte(rf.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	engine := store.NewEngine(store.DefaultQueryConfig, logger, nil)
	m := rules.NewManager(&rules.ManagerOptions{
		ExternalURL:  &url.URL{Scheme: "http", Host: "localhost"},
		QueryFunc:    rules.EngineQueryFunc(engine, db),
		NotifyFunc:   func(context.Context, string, ...*rules.Alert) {},
		Context:      context.Background(),
		AppendableV2: db,
		Queryable:    db,
		Logger:       logger,
		Parser:       store.NewParser(),
	})
	groups, errs := m.LoadGroups(time.Minute, labels.EmptyLabels(), "", nil, false, file)
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	var g *rules.Group
	for _, g = range groups {
	}
	b.ReportAllocs()
	b.ResetTimer()
	ts := now
	for b.Loop() {
		ts = ts.Add(time.Second)
		g.Eval(context.Background(), ts)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchRules, "ns/rule")
}
