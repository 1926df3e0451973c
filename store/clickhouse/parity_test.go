package clickhouse_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"

	"github.com/tidewatch/tidewatch/internal/testinfra"
	"github.com/tidewatch/tidewatch/store"
	"github.com/tidewatch/tidewatch/store/embedded"
)

// parityBase is where the parity data starts: 2023-11-14T22:13:20Z, so
// that the hour leaves a day boundary inside the data.
const parityBase int64 = 1_700_000_000_000

// paritySeries generates an hour and a half of 15 s samples: counters with
// resets, classic histograms, gauges, a target that goes stale and
// returns, and an info metric for joins.
func paritySeries() []struct {
	ls      labels.Labels
	samples []promql.FPoint
} {
	rng := rand.New(rand.NewPCG(1, 2))
	const step, n = 15_000, 361
	type series = struct {
		ls      labels.Labels
		samples []promql.FPoint
	}
	var out []series
	add := func(ls labels.Labels, f func(i int, prev float64) (float64, bool)) {
		s := series{ls: ls}
		prev := 0.0
		for i := range n {
			v, ok := f(i, prev)
			if !ok {
				continue
			}
			s.samples = append(s.samples, promql.FPoint{T: parityBase + int64(i)*step, F: v})
			if !value.IsStaleNaN(v) {
				prev = v
			}
		}
		out = append(out, s)
	}
	instances := []string{"a:9100", "b:9100", "c:9100"}
	for _, job := range []string{"api", "web"} {
		for ii, inst := range instances[:2] {
			for _, code := range []string{"200", "500"} {
				resetAt := 100 + 37*ii + len(code)*len(job)
				add(labels.FromStrings("__name__", "http_requests_total", "job", job, "instance", inst, "code", code),
					func(i int, prev float64) (float64, bool) {
						if i == resetAt {
							return float64(rng.IntN(5)), true
						}
						return prev + float64(rng.IntN(20)), true
					})
			}
			var cum [4]float64
			for bi, le := range []string{"0.1", "0.5", "1", "+Inf"} {
				add(labels.FromStrings("__name__", "http_request_duration_seconds_bucket", "job", job, "instance", inst, "le", le),
					func(i int, _ float64) (float64, bool) {
						if bi == 0 {
							// Advance all buckets together, cumulative.
							inc := [4]float64{float64(rng.IntN(10)), float64(rng.IntN(10)), float64(rng.IntN(5)), float64(rng.IntN(3))}
							run := 0.0
							for k := range cum {
								run += inc[k]
								cum[k] += run
							}
						}
						return cum[bi] + float64(i*0), true
					})
			}
		}
	}
	// Buckets above were generated one series at a time; rebuild them so
	// that every bucket is cumulative at every step.
	for idx := range out {
		if out[idx].ls.Get("__name__") != "http_request_duration_seconds_bucket" || out[idx].ls.Get("le") != "0.1" {
			continue
		}
		for k := 1; k < 4; k++ {
			for i := range out[idx+k].samples {
				out[idx+k].samples[i].F = out[idx+k-1].samples[i].F + float64(i*(k+1)+k)
			}
		}
	}
	for ii, inst := range instances {
		phase := float64(ii)
		add(labels.FromStrings("__name__", "node_load1", "instance", inst), func(i int, _ float64) (float64, bool) {
			return 0.5 + 0.4*math.Sin(float64(i)/20+phase) + rng.Float64()/50, true
		})
		add(labels.FromStrings("__name__", "node_memory_free_bytes", "instance", inst), func(i int, _ float64) (float64, bool) {
			return 8e9 - float64(i)*1e6*float64(ii+1) + float64(rng.IntN(1000)), true
		})
		add(labels.FromStrings("__name__", "node_meta", "instance", inst, "zone", []string{"eu", "us", "eu"}[ii]), func(int, float64) (float64, bool) {
			return 1, true
		})
		job := []string{"api", "web", "api"}[ii]
		add(labels.FromStrings("__name__", "up", "job", job, "instance", inst), func(i int, _ float64) (float64, bool) {
			switch {
			case inst == "c:9100" && i == 160:
				return math.Float64frombits(value.StaleNaN), true
			case inst == "c:9100" && i > 160 && i < 200:
				return 0, false
			case inst == "b:9100" && i%40 == 39:
				return 0, true
			}
			return 1, true
		})
	}
	return out
}

// parityExprs are the expressions both backends must answer identically.
var parityExprs = []string{
	`http_requests_total`,
	`rate(http_requests_total[5m])`,
	`irate(http_requests_total[1m])`,
	`increase(http_requests_total[10m])`,
	`resets(http_requests_total[30m])`,
	`sum by (job) (rate(http_requests_total[5m]))`,
	`sum without (instance) (rate(http_requests_total[5m]))`,
	`sum(rate({__name__=~"http_.*_total"}[5m])) by (code)`,
	`avg(node_load1)`,
	`max by (instance) (node_load1)`,
	`min(node_load1)`,
	`count(up)`,
	`count_values("v", up)`,
	`topk(2, node_load1)`,
	`bottomk(1, node_load1)`,
	`quantile(0.9, node_load1)`,
	`stddev(node_load1)`,
	`stdvar(node_load1)`,
	`group by (job) (up)`,
	`histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))`,
	`histogram_quantile(0.5, rate(http_request_duration_seconds_bucket[5m]))`,
	`histogram_quantile(0.99, sum by (le, job) (rate(http_request_duration_seconds_bucket[10m])))`,
	`node_load1 offset 10m`,
	`rate(http_requests_total[5m] offset 5m)`,
	`rate(http_requests_total[5m] offset -5m)`,
	`node_load1 @ 1700001800`,
	`rate(http_requests_total[5m] @ end())`,
	`max_over_time(node_load1[10m:1m])`,
	`max_over_time(rate(http_requests_total[5m])[30m:2m])`,
	`max_over_time(deriv(node_load1[5m])[20m:])`,
	`absent(nonexistent_metric)`,
	`absent(up{job="api"})`,
	`absent_over_time(up{job="gone"}[5m])`,
	`predict_linear(node_memory_free_bytes[10m], 3600)`,
	`deriv(node_memory_free_bytes[10m])`,
	`double_exponential_smoothing(node_load1[10m], 0.5, 0.5)`,
	`label_replace(up, "host", "$1", "instance", "(.*):.*")`,
	`label_join(up, "id", "-", "job", "instance")`,
	`up * on (instance) group_left (zone) node_meta`,
	`rate(http_requests_total[5m]) / ignoring (code) group_left sum without (code) (rate(http_requests_total[5m]))`,
	`node_load1 > 0.5`,
	`node_load1 > bool 0.5`,
	`up and on (instance) node_load1`,
	`up or node_load1`,
	`up unless on (instance) node_load1{instance="a:9100"}`,
	`-node_load1 + 2 * node_load1 ^ 2 % 3`,
	`abs(delta(node_load1[10m]))`,
	`idelta(node_load1[5m])`,
	`changes(up[30m])`,
	`avg_over_time(node_load1[5m])`,
	`sum_over_time(up[10m])`,
	`count_over_time(up[10m])`,
	`last_over_time(up[10m])`,
	`present_over_time(up[5m])`,
	`quantile_over_time(0.5, node_load1[10m])`,
	`stddev_over_time(node_load1[10m])`,
	`timestamp(up)`,
	`time() - timestamp(up)`,
	`clamp(node_load1, 0.2, 0.8)`,
	`round(node_load1, 0.1)`,
	`ln(node_memory_free_bytes)`,
	`exp(node_load1)`,
	`sort_desc(node_load1)`,
	`vector(1) + on () group_left count(up)`,
	`scalar(sum(up))`,
	`{__name__=~"node_.*", instance!="b:9100"}`,
	`up{job=~"api|web"}`,
	`up{instance!~"a.*"}`,
	`count by (zone) (node_meta)`,
}

func TestPromQLParity(t *testing.T) {
	t.Parallel()
	if len(parityExprs) < 50 {
		t.Fatalf("only %d expressions", len(parityExprs))
	}
	srv := testinfra.StartClickHouse(t)
	ch := openStore(t, testConfig(srv, t.TempDir()))
	t.Cleanup(func() { ch.Close() })
	cfg := embedded.DefaultConfig
	cfg.Path = t.TempDir()
	emb, err := embedded.Open(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emb.Close() })

	// The same data into both, in several transactions as scrapes would.
	data := paritySeries()
	for _, st := range []store.Store{ch, emb} {
		for i := 0; ; i++ {
			app := st.AppenderV2(context.Background())
			any := false
			for _, s := range data {
				if i < len(s.samples) {
					any = true
					if _, err := app.Append(0, s.ls, 0, s.samples[i].T, s.samples[i].F, nil, nil, storage.AppendV2Options{}); err != nil {
						t.Fatalf("append %s: %v", s.ls, err)
					}
				}
			}
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
			if !any {
				break
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ch.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	eng := store.NewEngine(store.DefaultQueryConfig, slog.New(slog.DiscardHandler), nil)
	// double_exponential_smoothing is experimental: the same engine
	// settings with experimental functions on.
	expEng := promql.NewEngine(promql.EngineOpts{
		Logger: slog.New(slog.DiscardHandler), MaxSamples: store.DefaultQueryConfig.MaxSamples,
		Timeout: time.Minute, LookbackDelta: 5 * time.Minute, EnableAtModifier: true, EnableNegativeOffset: true,
		NoStepSubqueryIntervalFn: func(int64) int64 { return time.Minute.Milliseconds() },
		Parser:                   parser.NewParser(parser.Options{EnableExperimentalFunctions: true}),
	})
	start, end := time.UnixMilli(parityBase+10*60_000), time.UnixMilli(parityBase+90*60_000)
	nonEmpty := 0
	for _, expr := range parityExprs {
		t.Run(expr, func(t *testing.T) {
			e := eng
			if strings.Contains(expr, "double_exponential_smoothing") {
				e = expEng
			}
			run := func(st storage.Queryable, instant bool, ts time.Time) string {
				var q promql.Query
				var err error
				if instant {
					q, err = e.NewInstantQuery(ctx, st, nil, expr, ts)
				} else {
					q, err = e.NewRangeQuery(ctx, st, nil, expr, start, end, time.Minute)
				}
				if err != nil {
					return "parse error: " + err.Error()
				}
				defer q.Close()
				return canonical(q.Exec(ctx), strings.HasPrefix(expr, "sort"))
			}
			for _, c := range []struct {
				name    string
				instant bool
				ts      time.Time
			}{
				{"range", false, time.Time{}},
				{"instant mid", true, time.UnixMilli(parityBase + 41*60_000)},
				{"instant end", true, end},
			} {
				want := run(emb, c.instant, c.ts)
				got := run(ch, c.instant, c.ts)
				if got != want {
					t.Errorf("%s: clickhouse and embedded differ\nclickhouse:\n%.3000s\nembedded:\n%.3000s", c.name, got, want)
				}
				if strings.Contains(want, "{") || strings.HasPrefix(want, "scalar") {
					nonEmpty++
				}
			}
		})
	}
	if nonEmpty < 2*len(parityExprs) {
		t.Errorf("only %d of %d results are non-empty: the data does not exercise the expressions", nonEmpty, 3*len(parityExprs))
	}
}

// canonical renders a result exactly (floats by their shortest exact
// representation, series sorted by labels unless keepOrder) with its error
// and warnings.
func canonical(res *promql.Result, keepOrder bool) string {
	var b strings.Builder
	if res.Err != nil {
		fmt.Fprintf(&b, "error: %v\n", res.Err)
	}
	warnings, infos := res.Warnings.AsStrings("", 0, 0)
	for _, w := range append(warnings, infos...) {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	switch v := res.Value.(type) {
	case promql.Matrix:
		ss := slices.Clone(v)
		slices.SortFunc(ss, func(a, b promql.Series) int { return labels.Compare(a.Metric, b.Metric) })
		for _, s := range ss {
			fmt.Fprintf(&b, "%s:", s.Metric)
			for _, p := range s.Floats {
				fmt.Fprintf(&b, " %d=%s", p.T, f(p.F))
			}
			b.WriteByte('\n')
		}
	case promql.Vector:
		// Sorted by labels: the engine keeps the order in which the store
		// returned series to an unsorted Select, which is the series
		// creation order in the embedded store. sort() and sort_desc()
		// results are compared in their order.
		ss := slices.Clone(v)
		if !keepOrder {
			slices.SortFunc(ss, func(a, b promql.Sample) int { return labels.Compare(a.Metric, b.Metric) })
		}
		for _, s := range ss {
			fmt.Fprintf(&b, "%s: %d=%s\n", s.Metric, s.T, f(s.F))
		}
	case promql.Scalar:
		fmt.Fprintf(&b, "scalar %d=%s\n", v.T, f(v.V))
	case nil:
	default:
		fmt.Fprintf(&b, "%T %v\n", v, v)
	}
	return b.String()
}
