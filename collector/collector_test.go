package collector_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
)

// TestScrapeFormats checks that each exposition format's samples land in
// the store, and which format the scrape negotiated.
func TestScrapeFormats(t *testing.T) {
	t.Parallel()

	textBody := `# HELP fmt_requests_total Requests.
# TYPE fmt_requests_total counter
fmt_requests_total{code="200",method="get"} 42
fmt_requests_total{code="500",method="get"} 3
# TYPE fmt_temperature_celsius gauge
fmt_temperature_celsius 21.5
# TYPE fmt_latency_seconds histogram
fmt_latency_seconds_bucket{le="0.1"} 1
fmt_latency_seconds_bucket{le="1"} 4
fmt_latency_seconds_bucket{le="+Inf"} 5
fmt_latency_seconds_sum 2.5
fmt_latency_seconds_count 5
`
	omBody := `# HELP fmt_requests Requests.
# TYPE fmt_requests counter
fmt_requests_total{code="200",method="get"} 42 # {trace_id="abc123"} 1.0
fmt_requests_total{code="500",method="get"} 3
# TYPE fmt_temperature_celsius gauge
fmt_temperature_celsius 21.5
# EOF
`
	protoReg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fmt_requests_total", Help: "Requests."}, []string{"code", "method"})
	reqs.WithLabelValues("200", "get").Add(42)
	reqs.WithLabelValues("500", "get").Add(3)
	temp := prometheus.NewGauge(prometheus.GaugeOpts{Name: "fmt_temperature_celsius", Help: "Temperature."})
	temp.Set(21.5)
	lat := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "fmt_native_seconds", Help: "Latency.", NativeHistogramBucketFactor: 1.1,
	})
	for _, v := range []float64{0.01, 0.2, 0.3, 1.5, 2} {
		lat.Observe(v)
	}
	protoReg.MustRegister(reqs, temp, lat)

	cases := []struct {
		name       string
		handler    http.Handler
		jobExtra   string
		wantAccept promconfig.ScrapeProtocol // first protocol the scraper offers
		wantCType  string                    // prefix of the content type the exporter answered with
		check      func(t *testing.T, h *harness, job string)
	}{
		{
			name:       "prometheus_text_0.0.4",
			handler:    staticHandler(textContentType, textBody),
			wantAccept: promconfig.OpenMetricsText1_0_0, // Prometheus' default list, OpenMetrics first
			wantCType:  "text/plain; version=0.0.4",
			check: func(t *testing.T, h *harness, job string) {
				wantValue(t, h, fmt.Sprintf(`fmt_requests_total{job=%q,code="200"}`, job), 42)
				wantValue(t, h, fmt.Sprintf(`fmt_temperature_celsius{job=%q}`, job), 21.5)
				wantValue(t, h, fmt.Sprintf(`fmt_latency_seconds_bucket{job=%q,le="1.0"}`, job), 4)
				wantValue(t, h, fmt.Sprintf(`scrape_samples_scraped{job=%q}`, job), 8)
			},
		},
		{
			name:       "prometheus_text_only_protocol",
			handler:    staticHandler(textContentType, textBody),
			jobExtra:   "scrape_protocols: [PrometheusText0.0.4]",
			wantAccept: promconfig.PrometheusText0_0_4,
			wantCType:  "text/plain; version=0.0.4",
			check: func(t *testing.T, h *harness, job string) {
				wantValue(t, h, fmt.Sprintf(`fmt_requests_total{job=%q,code="500"}`, job), 3)
			},
		},
		{
			name:       "openmetrics_1.0.0",
			handler:    staticHandler("application/openmetrics-text; version=1.0.0; charset=utf-8", omBody),
			wantAccept: promconfig.OpenMetricsText1_0_0,
			wantCType:  "application/openmetrics-text; version=1.0.0",
			check: func(t *testing.T, h *harness, job string) {
				wantValue(t, h, fmt.Sprintf(`fmt_requests_total{job=%q,code="200"}`, job), 42)
				wantValue(t, h, fmt.Sprintf(`fmt_temperature_celsius{job=%q}`, job), 21.5)
				// Only the OpenMetrics parser understands exemplars: the text
				// parser would have failed the scrape on this line.
				wantExemplar(t, h, fmt.Sprintf(`fmt_requests_total{job=%q,code="200"}`, job), "trace_id", "abc123")
			},
		},
		{
			name:       "protobuf_via_client_golang",
			handler:    promhttp.HandlerFor(protoReg, promhttp.HandlerOpts{}),
			jobExtra:   "scrape_protocols: [PrometheusProto, OpenMetricsText1.0.0, PrometheusText0.0.4]\nscrape_native_histograms: true",
			wantAccept: promconfig.PrometheusProto,
			wantCType:  "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
			check: func(t *testing.T, h *harness, job string) {
				wantValue(t, h, fmt.Sprintf(`fmt_requests_total{job=%q,code="200"}`, job), 42)
				wantValue(t, h, fmt.Sprintf(`fmt_temperature_celsius{job=%q}`, job), 21.5)
				// Native histograms only travel in protobuf (of the formats offered).
				got := h.raw(fmt.Sprintf(`fmt_native_seconds{job=%q}`, job))
				if len(got) != 1 {
					t.Fatalf("fmt_native_seconds: want 1 series, got %v", got)
				}
				for ls, ss := range got {
					if len(ss) == 0 || !ss[len(ss)-1].Histogram {
						t.Errorf("%s: want native histogram samples, got %v", ls, ss)
					}
				}
				wantValue(t, h, fmt.Sprintf(`histogram_count(fmt_native_seconds{job=%q})`, job), 5)
			},
		},
		{
			name: "gzip_body",
			handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
					http.Error(w, "scraper did not offer gzip", http.StatusNotAcceptable)
					return
				}
				var buf bytes.Buffer
				zw := gzip.NewWriter(&buf)
				_, _ = zw.Write([]byte(textBody))
				_ = zw.Close()
				w.Header().Set("Content-Type", textContentType)
				w.Header().Set("Content-Encoding", "gzip")
				_, _ = w.Write(buf.Bytes())
			}),
			wantAccept: promconfig.OpenMetricsText1_0_0,
			wantCType:  "text/plain; version=0.0.4",
			check: func(t *testing.T, h *harness, job string) {
				wantValue(t, h, fmt.Sprintf(`fmt_requests_total{job=%q,code="200"}`, job), 42)
				wantValue(t, h, fmt.Sprintf(`fmt_latency_seconds_count{job=%q}`, job), 5)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			exp := newExporter(t, tc.handler)
			const job = "fmt"
			h := newHarness(t, config(jobConfig(job, []string{exp.addr()}, tc.jobExtra)), harnessOpts{})
			h.waitScrapes(job, 2)

			if up := h.single(`up{job="fmt"}`); up != 1 {
				tg := h.activeTarget(job, exp.addr())
				t.Fatalf("up = %v, want 1 (last error: %v)", up, tg.LastError())
			}
			accept, _ := exp.lastAccept()
			wantPrefix := promconfig.ScrapeProtocolsHeaders[tc.wantAccept]
			if mt := firstMediaType(accept); !strings.EqualFold(mt, wantPrefix) {
				t.Errorf("Accept %q: first offered media type %q, want %q", accept, mt, wantPrefix)
			}
			if ct := exp.lastRespContentType(); !strings.HasPrefix(ct, tc.wantCType) {
				t.Errorf("exporter answered with Content-Type %q, want prefix %q", ct, tc.wantCType)
			}
			tc.check(t, h, job)
		})
	}
}

// TestScrapeFailures checks payloads and responses that fail a scrape: up is
// 0, the target reports the error, and nothing but the report series of that
// scrape is stored.
func TestScrapeFailures(t *testing.T) {
	t.Parallel()

	var manyLabels strings.Builder
	manyLabels.WriteString("lim_small 1\nlim_wide{")
	for i := range 8 {
		fmt.Fprintf(&manyLabels, `l%d="v",`, i)
	}
	manyLabels.WriteString("} 1\n")

	var bigBody strings.Builder
	for i := range 50 {
		fmt.Fprintf(&bigBody, "lim_metric{i=\"%d\"} %d\n", i, i)
	}

	cases := []struct {
		name     string
		handler  http.Handler
		jobExtra string
		wantErr  *regexp.Regexp
		// scraped and added are scrape_samples_scraped and
		// scrape_samples_post_metric_relabeling reported for the failed
		// scrape: Prometheus reports what it counted before it gave up,
		// although none of it is stored.
		scraped, added float64
	}{
		{
			name:    "broken_payload",
			handler: staticHandler(textContentType, "lim_ok 1\nlim_broken{a=\"1\" 2\n"),
			wantErr: regexp.MustCompile(`.+`),
			scraped: 1, added: 1, // lim_ok was parsed before the error
		},
		{
			name: "slow_response_beyond_timeout",
			handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select { // block until the scraper gives up (or a safety cap)
				case <-r.Context().Done():
				case <-time.After(10 * time.Second):
				}
				w.Header().Set("Content-Type", textContentType)
				_, _ = w.Write([]byte("lim_slow 1\n"))
			}),
			jobExtra: "scrape_interval: 500ms\nscrape_timeout: 150ms",
			wantErr:  regexp.MustCompile(`(?i)timeout|deadline`),
		},
		{
			name:     "sample_limit",
			handler:  staticHandler(textContentType, bigBody.String()),
			jobExtra: "sample_limit: 10",
			wantErr:  regexp.MustCompile(`sample limit exceeded`),
			scraped:  50, added: 50,
		},
		{
			name:     "label_limit",
			handler:  staticHandler(textContentType, manyLabels.String()),
			jobExtra: "label_limit: 6",
			wantErr:  regexp.MustCompile(`label_limit exceeded`),
			scraped:  2, added: 1, // lim_wide is counted as scraped, then fails the label check
		},
		{
			name:     "body_size_limit",
			handler:  staticHandler(textContentType, bigBody.String()),
			jobExtra: "body_size_limit: 100B",
			wantErr:  regexp.MustCompile(`body size limit exceeded`),
		},
		{
			name:    "http_500",
			handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) }),
			wantErr: regexp.MustCompile(`500`),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			exp := newExporter(t, tc.handler)
			const job = "fail"
			h := newHarness(t, config(jobConfig(job, []string{exp.addr()}, tc.jobExtra)), harnessOpts{})
			h.waitScrapes(job, 2)

			err := h.waitTargetError(job, exp.addr())
			if !tc.wantErr.MatchString(err.Error()) {
				t.Errorf("target last error %q does not match %q", err, tc.wantErr)
			}
			if up := h.single(`up{job="fail"}`); up != 0 {
				t.Errorf("up = %v, want 0", up)
			}
			if got := h.raw(`{__name__=~"lim_.+"}`); len(got) != 0 {
				t.Errorf("samples of the failed scrape were stored: %v", got)
			}
			// Only the report series of this job exist.
			for ls := range h.raw(`{job="fail"}`) {
				if !strings.Contains(ls, `__name__="up"`) && !strings.Contains(ls, `__name__="scrape_`) {
					t.Errorf("unexpected series stored for failed job: %s", ls)
				}
			}
			wantValue(t, h, `scrape_samples_scraped{job="fail"}`, tc.scraped)
			wantValue(t, h, `scrape_samples_post_metric_relabeling{job="fail"}`, tc.added)
			c := h.jobCounters()
			if c["tidewatch_scrape_failures_total"]["fail"] < 2 ||
				c["tidewatch_scrape_failures_total"]["fail"] != c["tidewatch_scrapes_total"]["fail"] {
				t.Errorf("failures %v / scrapes %v: every scrape of this job fails",
					c["tidewatch_scrape_failures_total"]["fail"], c["tidewatch_scrapes_total"]["fail"])
			}
		})
	}
}

// TestDuplicateSeriesInPayload: Prometheus keeps the first sample of a
// duplicated series, drops the rest, and the scrape stays up.
func TestDuplicateSeriesInPayload(t *testing.T) {
	t.Parallel()
	exp := newExporter(t, staticHandler(textContentType, "dup_metric{a=\"1\"} 1\ndup_metric{a=\"1\"} 2\ndup_other 5\n"))
	h := newHarness(t, config(jobConfig("dup", []string{exp.addr()}, "")), harnessOpts{})
	h.waitScrapes("dup", 3)

	wantValue(t, h, `up{job="dup"}`, 1)
	wantValue(t, h, `scrape_samples_scraped{job="dup"}`, 3)
	wantValue(t, h, `dup_metric{job="dup"}`, 1)
	wantValue(t, h, `dup_other{job="dup"}`, 5)
	for ls, ss := range h.raw(`dup_metric`) {
		for i := 1; i < len(ss); i++ {
			if ss[i].T == ss[i-1].T {
				t.Errorf("%s: two samples at the same timestamp %d", ls, ss[i].T)
			}
		}
	}
}

// TestReportSeries: every scrape appends up, scrape_duration_seconds,
// scrape_samples_scraped, scrape_samples_post_metric_relabeling and
// scrape_series_added with the target's labels.
func TestReportSeries(t *testing.T) {
	t.Parallel()
	exp := newExporter(t, staticHandler(textContentType, "rep_a 1\nrep_b 2\nrep_c{x=\"y\"} 3\n"))
	// One job, one target with an extra static label.
	cfg := "global:\n  scrape_interval: 200ms\n  scrape_timeout: 200ms\nscrape_configs:\n" +
		"  - job_name: report\n    static_configs:\n      - targets: ['" + exp.addr() + "']\n        labels:\n          env: test\n"
	h := newHarness(t, cfg, harnessOpts{})
	h.waitScrapes("report", 2)

	want := map[string]func(float64) bool{
		"up":                                    func(v float64) bool { return v == 1 },
		"scrape_duration_seconds":               func(v float64) bool { return v > 0 && v < 0.2 },
		"scrape_samples_scraped":                func(v float64) bool { return v == 3 },
		"scrape_samples_post_metric_relabeling": func(v float64) bool { return v == 3 },
		"scrape_series_added":                   func(v float64) bool { return v == 0 }, // 3 on the first scrape, 0 after
	}
	for name, ok := range want {
		t.Run(name, func(t *testing.T) {
			res := h.instant(name)
			if len(res) != 1 {
				t.Fatalf("want 1 series, got %v", res)
			}
			for ls, v := range res {
				wantLabels := fmt.Sprintf(`{__name__=%q, env="test", instance=%q, job="report"}`, name, exp.addr())
				if ls != wantLabels {
					t.Errorf("labels %s, want %s", ls, wantLabels)
				}
				if !ok(v) {
					t.Errorf("value %v out of range", v)
				}
			}
		})
	}
	t.Run("scrape_series_added_first_scrape", func(t *testing.T) {
		ss := h.raw(`scrape_series_added{job="report"}`)
		for _, samples := range ss {
			if len(samples) == 0 || samples[0].V != 3 {
				t.Errorf("first scrape_series_added = %v, want 3", samples)
			}
		}
	})
}

// TestRelabeling covers relabel_configs (drop a target, add/rewrite a
// label) and metric_relabel_configs (drop a metric).
func TestRelabeling(t *testing.T) {
	t.Parallel()
	body := "rel_keep 1\nrel_drop_me_a 2\nrel_drop_me_b 3\n"
	kept := newExporter(t, staticHandler(textContentType, body))
	dropped := newExporter(t, staticHandler(textContentType, body))
	extra := fmt.Sprintf(`relabel_configs:
  - source_labels: [__address__]
    regex: '%s'
    action: drop
  - target_label: team
    replacement: core
  - source_labels: [__address__]
    regex: '127\.0\.0\.1:(\d+)'
    target_label: port
    replacement: 'p$1'
metric_relabel_configs:
  - source_labels: [__name__]
    regex: 'rel_drop_me_.*'
    action: drop
`, regexp.QuoteMeta(dropped.addr()))
	h := newHarness(t, config(jobConfig("rel", []string{kept.addr(), dropped.addr()}, extra)), harnessOpts{})
	h.waitScrapes("rel", 3)

	t.Run("target_dropped", func(t *testing.T) {
		if n := dropped.hits.Load(); n != 0 {
			t.Errorf("dropped target was scraped %d times", n)
		}
		if active := h.col.Targets().TargetsActive()["rel"]; len(active) != 1 {
			t.Errorf("want 1 active target, got %d", len(active))
		}
		if n := h.col.Targets().TargetsDroppedCounts()["rel"]; n != 1 {
			t.Errorf("want 1 dropped target, got %d", n)
		}
		if got := h.instant(fmt.Sprintf(`{instance=%q}`, dropped.addr())); len(got) != 0 {
			t.Errorf("series of the dropped target: %v", got)
		}
	})
	t.Run("labels_rewritten", func(t *testing.T) {
		_, port, _ := strings.Cut(kept.addr(), ":")
		res := h.instant(`rel_keep`)
		want := fmt.Sprintf(`{__name__="rel_keep", instance=%q, job="rel", port="p%s", team="core"}`, kept.addr(), port)
		if _, ok := res[want]; !ok || len(res) != 1 {
			t.Errorf("rel_keep series %v, want exactly %s", res, want)
		}
	})
	t.Run("metric_dropped", func(t *testing.T) {
		if got := h.raw(`{__name__=~"rel_drop_me_.*"}`); len(got) != 0 {
			t.Errorf("dropped metrics stored: %v", got)
		}
		wantValue(t, h, `scrape_samples_scraped{job="rel"}`, 3)
		wantValue(t, h, `scrape_samples_post_metric_relabeling{job="rel"}`, 1)
	})
}

// TestHonorLabelsAndTimestamps checks honor_labels and honor_timestamps as
// Prometheus documents them.
func TestHonorLabelsAndTimestamps(t *testing.T) {
	t.Parallel()
	exposedTS := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	body := fmt.Sprintf("hon_labels{job=\"exporter_job\",instance=\"inner:1\",x=\"y\"} 1\nhon_ts 7 %d\n", exposedTS.UnixMilli())

	cases := []struct {
		name     string
		jobExtra string
		// wantLabels of hon_labels (minus __name__), with %s = target address.
		wantLabels string
		honorTS    bool
	}{
		{
			name:       "defaults",
			wantLabels: `exported_instance="inner:1", exported_job="exporter_job", instance=%q, job="hon", x="y"`,
			honorTS:    true, // honor_timestamps defaults to true
		},
		{
			name:       "honor_labels_true",
			jobExtra:   "honor_labels: true",
			wantLabels: `instance="inner:1", job="exporter_job", x="y"`,
			honorTS:    true,
		},
		{
			name:       "honor_timestamps_false",
			jobExtra:   "honor_timestamps: false",
			wantLabels: `exported_instance="inner:1", exported_job="exporter_job", instance=%q, job="hon", x="y"`,
			honorTS:    false,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			exp := newExporter(t, staticHandler(textContentType, body))
			start := time.Now()
			h := newHarness(t, config(jobConfig("hon", []string{exp.addr()}, tc.jobExtra)), harnessOpts{})
			h.waitScrapes("hon", 2)

			wantLS := tc.wantLabels
			if strings.Contains(wantLS, "%q") {
				wantLS = fmt.Sprintf(wantLS, exp.addr())
			}
			wantLS = `{__name__="hon_labels", ` + wantLS + `}`
			got := h.raw(`hon_labels`)
			if _, ok := got[wantLS]; !ok || len(got) != 1 {
				t.Errorf("hon_labels series %v, want exactly %s", keys(got), wantLS)
			}

			ts := h.raw(`hon_ts`)
			if len(ts) != 1 {
				t.Fatalf("hon_ts: want 1 series, got %v", ts)
			}
			for ls, ss := range ts {
				for _, s := range ss {
					if tc.honorTS && s.T != exposedTS.UnixMilli() {
						t.Errorf("%s: sample at %d, want the exposed timestamp %d", ls, s.T, exposedTS.UnixMilli())
					}
					if !tc.honorTS && s.T < start.UnixMilli() {
						t.Errorf("%s: sample at %d, want the scrape time (>= %d)", ls, s.T, start.UnixMilli())
					}
				}
			}
		})
	}
}

// TestStaleness: a series that disappears from the exposition, and the
// series of a target removed from the configuration, get stale markers.
func TestStaleness(t *testing.T) {
	t.Parallel()

	t.Run("series_disappears", func(t *testing.T) {
		t.Parallel()
		var gone atomic.Bool
		exp := newExporter(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", textContentType)
			_, _ = w.Write([]byte("stale_keep 1\n"))
			if !gone.Load() {
				_, _ = w.Write([]byte("stale_gone 2\n"))
			}
		}))
		h := newHarness(t, config(jobConfig("stale", []string{exp.addr()}, "")), harnessOpts{})
		h.waitScrapes("stale", 2)
		wantValue(t, h, `stale_gone`, 2)

		gone.Store(true)
		// The scrape in flight may still have seen the series; the one after it cannot.
		h.waitScrapes("stale", h.scrapes("stale")+2)

		if got := h.instant(`stale_gone`); len(got) != 0 {
			t.Errorf("stale_gone still returned within lookback: %v", got)
		}
		wantValue(t, h, `stale_keep`, 1)
		wantStaleLast(t, h, `stale_gone`)
	})

	t.Run("target_removed_by_apply_config", func(t *testing.T) {
		t.Parallel()
		stay := newExporter(t, staticHandler(textContentType, "stale_target 1\n"))
		leave := newExporter(t, staticHandler(textContentType, "stale_target 2\n"))
		h := newHarness(t, config(jobConfig("st", []string{stay.addr(), leave.addr()}, "")), harnessOpts{})
		h.eventually("both targets scraped", func() (bool, string) {
			got := h.instant(`stale_target`)
			return len(got) == 2, fmt.Sprint(got)
		})

		h.apply(config(jobConfig("st", []string{stay.addr()}, "")))
		leaving := fmt.Sprintf(`{job="st",instance=%q}`, leave.addr())
		h.eventually("stale markers for the removed target", func() (bool, string) {
			for ls, ss := range h.raw(leaving) {
				if len(ss) == 0 || !value.IsStaleNaN(ss[len(ss)-1].V) {
					return false, ls + " not stale yet"
				}
			}
			return true, ""
		})
		// The stale markers cover the scraped series and the report series.
		for _, name := range []string{"stale_target", "up", "scrape_samples_scraped"} {
			wantStaleLast(t, h, fmt.Sprintf(`%s{job="st",instance=%q}`, name, leave.addr()))
		}
		if got := h.instant(`stale_target`); len(got) != 1 {
			t.Errorf("want only the remaining target's series, got %v", got)
		}
		h.waitScrapes("st", h.scrapes("st")+2)
		wantValue(t, h, fmt.Sprintf(`up{instance=%q}`, stay.addr()), 1)
	})
}

// TestApplyConfigAndJobCounters: a new job added by ApplyConfig is scraped;
// tidewatch_scrapes_total / tidewatch_scrape_failures_total count each
// job's scrapes, matching the up samples in the store.
func TestApplyConfigAndJobCounters(t *testing.T) {
	t.Parallel()
	healthy := newExporter(t, staticHandler(textContentType, "jc_metric 1\n"))
	failing := newExporter(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	late := newExporter(t, staticHandler(textContentType, "jc_late 1\n"))

	jobs := []string{
		jobConfig("healthy", []string{healthy.addr()}, ""),
		jobConfig("failing", []string{failing.addr()}, ""),
	}
	h := newHarness(t, config(jobs...), harnessOpts{})
	h.waitScrapes("healthy", 2)
	h.waitScrapes("failing", 2)
	if n := late.hits.Load(); n != 0 {
		t.Fatalf("job not yet configured was scraped %d times", n)
	}

	h.apply(config(append(jobs, jobConfig("late", []string{late.addr()}, ""))...))
	h.waitScrapes("late", 2)
	wantValue(t, h, `jc_late{job="late"}`, 1)

	if err := h.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	c := h.jobCounters()
	for _, job := range []string{"healthy", "failing", "late"} {
		t.Run(job, func(t *testing.T) {
			var ups, downs float64
			for _, ss := range h.raw(fmt.Sprintf(`up{job=%q}`, job)) {
				for _, s := range ss {
					switch {
					case value.IsStaleNaN(s.V):
					case s.V == 1:
						ups++
					default:
						downs++
					}
				}
			}
			if got := c["tidewatch_scrapes_total"][job]; got != ups+downs {
				t.Errorf("tidewatch_scrapes_total{job=%q} = %v, want %v (up samples stored)", job, got, ups+downs)
			}
			if got := c["tidewatch_scrape_failures_total"][job]; got != downs {
				t.Errorf("tidewatch_scrape_failures_total{job=%q} = %v, want %v (up==0 samples stored)", job, got, downs)
			}
			wantFail := job == "failing"
			if (downs > 0) != wantFail || (ups > 0) == wantFail {
				t.Errorf("job %q: %v up, %v down samples", job, ups, downs)
			}
		})
	}
}

// TestJobCounterUsesScrapeJobName: relabel_configs may rewrite the job
// label; the per-job counters must still be keyed by the configured job (the
// scrape pool), or a relabeled job's counters do not exist at all.
func TestJobCounterUsesScrapeJobName(t *testing.T) {
	t.Parallel()
	exp := newExporter(t, staticHandler(textContentType, "jr_metric 1\n"))
	extra := "relabel_configs:\n  - target_label: job\n    replacement: renamed\n"
	h := newHarness(t, config(jobConfig("configured", []string{exp.addr()}, extra)), harnessOpts{})
	h.eventually("a scrape of the relabeled job", func() (bool, string) {
		got := h.instant(`up{job="renamed"}`)
		return len(got) == 1, fmt.Sprint(got)
	})
	c := h.jobCounters()["tidewatch_scrapes_total"]
	if c["configured"] < 1 {
		t.Errorf("tidewatch_scrapes_total by job = %v, want a count for the configured job %q: "+
			"collector.go jobCounter keys the counters by the job label of the stored up sample, "+
			"which relabel_configs can rewrite or drop (unbounded cardinality, counts under the wrong job)", c, "configured")
	}
}

// TestRunStops: Run returns after ctx cancel and nothing is appended after.
func TestRunStops(t *testing.T) {
	t.Parallel()
	var afterRun atomic.Bool
	var lateAppends atomic.Int64
	exp := newExporter(t, staticHandler(textContentType, "run_metric 1\n"))
	h := newHarness(t, config(jobConfig("run", []string{exp.addr()}, "")), harnessOpts{
		wrap: func(next storage.AppendableV2) storage.AppendableV2 {
			return watchAppendable{next: next, after: &afterRun, count: &lateAppends}
		},
	})
	h.waitScrapes("run", 2)

	if err := h.stop(); err != nil {
		t.Fatalf("Run returned %v after cancel, want nil", err)
	}
	afterRun.Store(true)
	hits := exp.hits.Load()
	before := h.raw(`{job="run"}`)

	// Observe three scrape intervals: a leaked scrape loop would scrape and
	// append in that window.
	window := time.After(600 * time.Millisecond)
	for done := false; !done; {
		select {
		case <-window:
			done = true
		case <-time.After(20 * time.Millisecond):
			if n := lateAppends.Load(); n != 0 {
				t.Fatalf("%d samples appended after Run returned", n)
			}
		}
	}
	if n := exp.hits.Load() - hits; n != 0 {
		t.Errorf("target scraped %d times after Run returned", n)
	}
	if after := h.raw(`{job="run"}`); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("store changed after Run returned")
	}
}

// watchAppendable counts appends made once after is set.
type watchAppendable struct {
	next  storage.AppendableV2
	after *atomic.Bool
	count *atomic.Int64
}

func (w watchAppendable) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return watchAppender{AppenderV2: w.next.AppenderV2(ctx), w: w}
}

type watchAppender struct {
	storage.AppenderV2
	w watchAppendable
}

func (a watchAppender) Append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AppendV2Options) (storage.SeriesRef, error) {
	if a.w.after.Load() {
		a.w.count.Add(1)
	}
	return a.AppenderV2.Append(ref, ls, st, t, v, h, fh, opts)
}

// --- assertions -----------------------------------------------------------

func staticHandler(ct, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ct)
		_, _ = w.Write([]byte(body))
	})
}

func wantValue(t *testing.T, h *harness, q string, want float64) {
	t.Helper()
	if got := h.single(q); got != want {
		t.Errorf("%s = %v, want %v", q, got, want)
	}
}

func wantStaleLast(t *testing.T, h *harness, sel string) {
	t.Helper()
	got := h.raw(sel)
	if len(got) == 0 {
		t.Errorf("%s: no series stored", sel)
	}
	for ls, ss := range got {
		if len(ss) == 0 || !value.IsStaleNaN(ss[len(ss)-1].V) {
			t.Errorf("%s: last sample is not a stale marker: %v", ls, ss)
		}
	}
}

func wantExemplar(t *testing.T, h *harness, sel, name, val string) {
	t.Helper()
	ms, err := parseSelector(sel)
	if err != nil {
		t.Fatal(err)
	}
	eq, err := h.db.ExemplarQuerier(context.Background())
	if err != nil {
		t.Fatalf("exemplar querier: %v", err)
	}
	res, err := eq.Select(math.MinInt64, math.MaxInt64, ms)
	if err != nil {
		t.Fatalf("select exemplars: %v", err)
	}
	for _, r := range res {
		for _, e := range r.Exemplars {
			if e.Labels.Get(name) == val {
				return
			}
		}
	}
	t.Errorf("%s: no exemplar with %s=%q in %v", sel, name, val, exemplarsString(res))
}

func exemplarsString(res []exemplar.QueryResult) string {
	var b strings.Builder
	for _, r := range res {
		fmt.Fprintf(&b, "%s:%v ", r.SeriesLabels, r.Exemplars)
	}
	return b.String()
}

// firstMediaType returns the media type (without q and escaping parameters)
// of the first entry of an Accept header.
func firstMediaType(accept string) string {
	first, _, _ := strings.Cut(accept, ",")
	var keep []string
	for i, part := range strings.Split(first, ";") {
		part = strings.TrimSpace(part)
		if i > 0 && (strings.HasPrefix(part, "q=") || strings.HasPrefix(part, model.EscapingKey+"=")) {
			continue
		}
		keep = append(keep, part)
	}
	return strings.Join(keep, ";")
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
