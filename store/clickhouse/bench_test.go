package clickhouse_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/tidewatch/tidewatch/internal/testinfra"
	"github.com/tidewatch/tidewatch/store"
	"github.com/tidewatch/tidewatch/store/embedded"
)

func benchSeries(n int) []labels.Labels {
	out := make([]labels.Labels, n)
	for i := range out {
		out[i] = labels.FromStrings("__name__", "bench_requests_total", "job", fmt.Sprintf("job-%d", i%10),
			"instance", fmt.Sprintf("10.0.%d.%d:9100", i/250, i%250), "path", fmt.Sprintf("/api/v1/items/%d", i%37))
	}
	return out
}

// BenchmarkIngest measures the write path end to end: commits of 1,000
// series (a scrape) into the disk queue and their insert into ClickHouse.
// It reports samples/s, samples per CPU second of this process (the whole
// Tidewatch write path: append, commit, queue, batch, insert), ClickHouse's
// own CPU seconds per million samples (/proc/<pid>/stat), and the on-disk
// bytes per sample of the samples table (system.parts, after the inserts;
// merges shrink it further).
func BenchmarkIngest(b *testing.B) {
	srv := testinfra.StartClickHouse(b)
	cfg := testConfig(srv, b.TempDir())
	st := openStore(b, cfg)
	defer st.Close()
	series := benchSeries(1000)
	ctx := context.Background()
	t0 := time.Now().UnixMilli()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	cpu0, chCPU0 := processCPU(b, os.Getpid()), processCPU(b, srv.Proc.PID)
	for i := range b.N {
		app := st.AppenderV2(ctx)
		for j, ls := range series {
			if _, err := app.Append(0, ls, 0, t0+int64(i)*15_000, float64(i*j), nil, nil, storage.AppendV2Options{}); err != nil {
				b.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := st.Flush(fctx); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	cpu, chCPU := processCPU(b, os.Getpid())-cpu0, processCPU(b, srv.Proc.PID)-chCPU0
	b.StopTimer()
	samples := float64(b.N * len(series))
	b.ReportMetric(samples/elapsed.Seconds(), "samples/s")
	b.ReportMetric(samples/cpu.Seconds(), "samples/cpu-s")
	b.ReportMetric(chCPU.Seconds()/samples*1e6, "ch-cpu-s/Msamples")
	out, err := srv.Query(ctx, "SELECT sum(bytes_on_disk), sum(rows) FROM system.parts WHERE active AND database = '"+cfg.Database+"' AND table = 'samples'")
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(out)
	bytes, _ := strconv.ParseFloat(f[0], 64)
	rows, _ := strconv.ParseFloat(f[1], 64)
	if rows > 0 {
		b.ReportMetric(bytes/rows, "disk-bytes/sample")
	}
}

// BenchmarkRangeQuery compares `sum by (job) (rate(m[5m]))` over 1,000
// series on the embedded and ClickHouse stores, for 1 h and 24 h ranges at
// a 60 s step (samples every 60 s). Besides wall time it reports the CPU
// time per query of the benchmark process and the ClickHouse server
// together.
func BenchmarkRangeQuery(b *testing.B) {
	srv := testinfra.StartClickHouse(b)
	ch := openStore(b, testConfig(srv, b.TempDir()))
	defer ch.Close()
	ecfg := embedded.DefaultConfig
	ecfg.Path = b.TempDir()
	emb, err := embedded.Open(ecfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer emb.Close()
	series := benchSeries(1000)
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-24 * time.Hour)
	ctx := context.Background()
	for _, st := range []store.Store{ch, emb} {
		for ts := start; !ts.After(end); ts = ts.Add(time.Minute) {
			app := st.AppenderV2(ctx)
			i := ts.Sub(start).Minutes()
			for j, ls := range series {
				if _, err := app.Append(0, ls, 0, ts.UnixMilli(), i*float64(j%13+1), nil, nil, storage.AppendV2Options{}); err != nil {
					b.Fatal(err)
				}
			}
			if err := app.Commit(); err != nil {
				b.Fatal(err)
			}
		}
		if err := st.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	eng := store.NewEngine(store.DefaultQueryConfig, slog.New(slog.DiscardHandler), nil)
	for _, rng := range []time.Duration{time.Hour, 24 * time.Hour} {
		for _, bk := range []struct {
			name string
			st   storage.Queryable
		}{{"embedded", emb}, {"clickhouse", ch}} {
			b.Run(fmt.Sprintf("range=%s/store=%s", rng, bk.name), func(b *testing.B) {
				b.ReportAllocs()
				// CPU per query of this process plus the ClickHouse server
				// (idle during the embedded runs): steadier than wall time
				// on a shared machine.
				cpu0 := processCPU(b, os.Getpid()) + processCPU(b, srv.Proc.PID)
				for b.Loop() {
					q, err := eng.NewRangeQuery(ctx, bk.st, nil, `sum by (job) (rate(bench_requests_total[5m]))`, end.Add(-rng), end, time.Minute)
					if err != nil {
						b.Fatal(err)
					}
					res := q.Exec(ctx)
					if res.Err != nil {
						b.Fatal(res.Err)
					}
					q.Close()
				}
				cpu := processCPU(b, os.Getpid()) + processCPU(b, srv.Proc.PID) - cpu0
				b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
			})
		}
	}
}

// processCPU returns the user and system CPU time a process has used so
// far, from /proc/<pid>/stat (in clock ticks of 10 ms, as on Linux/amd64).
func processCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the parenthesised command name: state is field 3,
	// utime and stime are fields 14 and 15.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("parse /proc/%d/stat: %v %v", pid, err1, err2)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
