package embedded_test

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/tidewatch/tidewatch/store"
	"github.com/tidewatch/tidewatch/store/embedded"
)

const (
	benchSeries     = 1000
	benchResolution = 15 * time.Second
	benchSpan       = time.Hour
)

// BenchmarkRangeQuery evaluates PromQL range queries over 1 h at a 60 s step
// against 1,000 counter series × 1 h of 15 s samples held in the embedded
// store's head (in memory, WAL on disk). One op = one query, parse to result.
func BenchmarkRangeQuery(b *testing.B) {
	logger := slog.New(slog.DiscardHandler)
	db, err := embedded.Open(embedded.Config{Path: b.TempDir(), Retention: model.Duration(24 * time.Hour)}, logger, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-benchSpan)
	loadCounters(b, db, start, end)
	engine := store.NewEngine(store.DefaultQueryConfig, logger, nil)
	runtime.GC() // do not bill the loader's garbage to the first sub-benchmark

	for _, q := range []struct {
		name, expr string
		series     int
	}{
		{"sum_rate", `sum(rate(m[5m]))`, 1},
		{"rate", `rate(m[5m])`, benchSeries},
	} {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				qry, err := engine.NewRangeQuery(context.Background(), db, nil, q.expr, start, end, time.Minute)
				if err != nil {
					b.Fatal(err)
				}
				res := qry.Exec(context.Background())
				if res.Err != nil {
					b.Fatal(res.Err)
				}
				m, err := res.Matrix()
				if err != nil {
					b.Fatal(err)
				}
				// 61 steps, but at the first one the left-open window
				// (start-5m, start] holds a single sample: no rate.
				if len(m) != q.series || len(m[0].Floats) != 60 {
					b.Fatalf("%s: %d series, %d points; want %d series × 60 points", q.expr, len(m), len(m[0].Floats), q.series)
				}
				qry.Close()
			}
		})
	}
}

// loadCounters appends benchSeries counters m{series, svc} every 15 s from
// start to end inclusive, one commit per timestamp (as scrapes would).
func loadCounters(b *testing.B, db storage.AppendableV2, start, end time.Time) {
	b.Helper()
	lsets := make([]labels.Labels, benchSeries)
	for i := range lsets {
		lsets[i] = labels.FromStrings("__name__", "m", "series", fmt.Sprintf("s%04d", i), "svc", fmt.Sprintf("svc%02d", i%20))
	}
	refs := make([]storage.SeriesRef, benchSeries)
	step := 0
	for ts := start; !ts.After(end); ts = ts.Add(benchResolution) {
		app := db.AppenderV2(context.Background())
		for i, ls := range lsets {
			ref, err := app.Append(refs[i], ls, 0, ts.UnixMilli(), float64(step*(i%7+1)), nil, nil, storage.AOptions{})
			if err != nil {
				b.Fatalf("append: %v", err)
			}
			refs[i] = ref
		}
		if err := app.Commit(); err != nil {
			b.Fatalf("commit: %v", err)
		}
		step++
	}
}

// BenchmarkAppendCommit appends one sample to each of 1,000 series and
// commits, as one scrape would, from as many goroutines as GOMAXPROCS.
// One op = one transaction of 1,000 samples.
func BenchmarkAppendCommit(b *testing.B) {
	db, err := embedded.Open(embedded.Config{Path: b.TempDir(), Retention: model.Duration(24 * time.Hour)}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var next atomic.Int64
	base := time.Now().UnixMilli()
	b.ReportAllocs()
	b.SetParallelism(1)
	b.RunParallel(func(pb *testing.PB) {
		g := next.Add(1)
		lsets := make([]labels.Labels, benchSeries)
		for i := range lsets {
			lsets[i] = labels.FromStrings("__name__", "m", "g", fmt.Sprint(g), "series", fmt.Sprintf("s%04d", i))
		}
		refs := make([]storage.SeriesRef, benchSeries)
		for n := int64(0); pb.Next(); n++ {
			app := db.AppenderV2(context.Background())
			for i, ls := range lsets {
				ref, err := app.Append(refs[i], ls, 0, base+n, float64(n), nil, nil, storage.AOptions{})
				if err != nil {
					b.Fatalf("append: %v", err)
				}
				refs[i] = ref
			}
			if err := app.Commit(); err != nil {
				b.Fatalf("commit: %v", err)
			}
		}
	})
}
