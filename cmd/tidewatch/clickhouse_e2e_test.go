package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/internal/testinfra"
)

// stampedExporter serves the exporter expositions of main_test.go with
// explicit timestamps, one sequence per URL path: the n-th request to a
// path gets exposition n with every sample at base + n seconds. Two
// Tidewatch instances scraping different paths therefore ingest identical
// samples, however their scrapes are timed. After the last exposition the
// same one is served again (identical samples, which the stores drop).
type stampedExporter struct {
	srv   *httptest.Server
	addr  string
	base  int64 // milliseconds
	last  int64 // expositions per path
	mu    sync.Mutex
	count map[string]int64
}

func newStampedExporter(t *testing.T, base time.Time, expositions int64) *stampedExporter {
	t.Helper()
	e := &stampedExporter{base: base.UnixMilli(), last: expositions, count: map[string]int64{}}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		n := min(e.count[r.URL.Path]+1, e.last)
		e.count[r.URL.Path] = n
		e.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		io.WriteString(w, withTimestamp(exposition(0, n), e.base+n*1000))
	}))
	t.Cleanup(e.srv.Close)
	e.addr = strings.TrimPrefix(e.srv.URL, "http://")
	return e
}

// withTimestamp appends ts (milliseconds) to every sample line of a text
// exposition.
func withTimestamp(expo string, ts int64) string {
	var b strings.Builder
	for line := range strings.Lines(expo) {
		line = strings.TrimSuffix(line, "\n")
		if line != "" && !strings.HasPrefix(line, "#") {
			line += " " + strconv.FormatInt(ts, 10)
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// stampedJob scrapes the exporter at path every second, keeping its
// timestamps.
func stampedJob(addr, path string) string {
	return fmt.Sprintf("  - job_name: stamped\n    honor_timestamps: true\n    metrics_path: %s\n    static_configs:\n      - targets: [%q]\n", path, addr)
}

// clickHouseConfig is tw's configuration with the ClickHouse store in
// database db of srv instead of the embedded store.
func (tw *twInstance) clickHouseConfig(scrapeConfigs string, srv *testinfra.ClickHouse, db string) string {
	embedded := fmt.Sprintf("storage:\n  type: embedded\n  embedded:\n    path: %s\n", filepath.Join(tw.dir, "data"))
	cfg := tw.configYAML(scrapeConfigs, "")
	if !strings.Contains(cfg, embedded) {
		tw.t.Fatalf("unexpected storage section in the base config:\n%s", cfg)
	}
	return strings.Replace(cfg, embedded, fmt.Sprintf(`storage:
  type: clickhouse
  clickhouse:
    addresses: [%q]
    database: %s
    batch: {max_delay: 100ms}
    queue: {path: %s}
`, srv.Addr, db, filepath.Join(tw.dir, "queue")), 1)
}

// rawSamples counts the samples of selector in the last hour, read as a
// range vector (count_over_time would merge series that differ only in
// their metric name).
func rawSamples(t *testing.T, baseURL, selector string) (int, error) {
	r, err := apiQuery(t.Context(), baseURL, "/api/v1/query", url.Values{"query": {selector + "[1h]"}})
	if err != nil {
		return 0, err
	}
	res, err := decodeResult(r)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range res.Series {
		n += len(s.Points)
	}
	return n, nil
}

// TestClickHouseAcceptance runs the tidewatch binary twice on the same
// scrapes, once with the embedded store and once with a real ClickHouse:
// the samples land in ClickHouse's tables, and promtool's range queries
// print exactly the same output against both.
func TestClickHouseAcceptance(t *testing.T) {
	t.Parallel()
	promtool := testinfra.Promtool(t)
	srv := testinfra.StartClickHouse(t)
	const expositions = 12
	// Timestamps a little in the past, whole seconds, advancing 1 s per
	// scrape like real ones.
	base := time.Now().Add(-30 * time.Second).Truncate(time.Second)
	exp := newStampedExporter(t, base, expositions)

	emb := newTidewatch(t, stampedJob(exp.addr, "/embedded"), "")
	ch := newTidewatch(t, "", "")
	ch.writeRawConfig(ch.clickHouseConfig(stampedJob(exp.addr, "/clickhouse"), srv, "tidewatch_e2e"))
	emb.start()
	ch.start()

	// The exposition has 18 tw_* series; the sample count proves every
	// exposition was scraped and, on ClickHouse, inserted.
	const seriesPerScrape = 18
	const want = expositions * seriesPerScrape
	selector := `{__name__=~"tw_.+",job="stamped"}`
	for _, tw := range []*twInstance{emb, ch} {
		var got int
		poll(t, 60*time.Second, fmt.Sprintf("%d samples of %s on %s", want, selector, tw.url), func() error {
			var err error
			got, err = rawSamples(t, tw.url, selector)
			if err == nil && got < want {
				err = fmt.Errorf("%d samples so far", got)
			}
			return err
		})
		if got != want {
			t.Fatalf("%s: %d samples of %s, want %d", tw.url, got, selector, want)
		}
	}

	t.Run("samples in clickhouse tables", func(t *testing.T) {
		sql := func(q string) string {
			t.Helper()
			out, err := srv.Query(t.Context(), q)
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(out)
		}
		tw := "SELECT fingerprint FROM tidewatch_e2e.series WHERE metric_name LIKE 'tw\\\\_%' AND has(label_values, 'stamped')"
		got := sql("SELECT uniqExact(fingerprint), uniqExact(fingerprint, timestamp) FROM tidewatch_e2e.samples WHERE fingerprint IN (" + tw + ")")
		if wantRow := fmt.Sprintf("%d\t%d", seriesPerScrape, want); got != wantRow {
			t.Errorf("series and samples of tw_* in tidewatch_e2e.samples: got %q, want %q", got, wantRow)
		}
		// One series checked value by value against the exporter's formula.
		got = sql(`SELECT groupArray(toString(timestamp) || '=' || toString(value)) FROM (
  SELECT DISTINCT timestamp, value FROM tidewatch_e2e.samples
  WHERE fingerprint IN (SELECT fingerprint FROM tidewatch_e2e.series WHERE metric_name = 'tw_queue_length' AND has(label_values, 'stamped'))
  ORDER BY timestamp)`)
		var wantVals []string
		for n := int64(1); n <= expositions; n++ {
			wantVals = append(wantVals, fmt.Sprintf("'%d=%d'", base.UnixMilli()+n*1000, n%5*2))
		}
		if wantArr := "[" + strings.Join(wantVals, ",") + "]"; got != wantArr {
			t.Errorf("tw_queue_length in ClickHouse:\n got  %s\n want %s", got, wantArr)
		}
	})

	t.Run("promtool range queries", func(t *testing.T) {
		start := base.Unix() + 1
		end := base.Unix() + expositions
		for _, q := range []string{
			selector,
			`rate(tw_requests_total[5s])`,
			`increase(tw_resetting_total[4s])`,
			`histogram_quantile(0.9, sum by (le) (rate(tw_latency_seconds_bucket[5s])))`,
			`sum by (room) (avg_over_time(tw_temperature_celsius[3s]))`,
			`tw_build_info * on (job) group_left tw_queue_length`,
		} {
			args := []string{"query", "range", "--start=" + strconv.FormatInt(start, 10), "--end=" + strconv.FormatInt(end, 10), "--step=1s"}
			outs := make([]string, 2)
			for i, tw := range []*twInstance{emb, ch} {
				out, code := runCmd(t, promtool, append(args, tw.url, q)...)
				if code != 0 {
					t.Fatalf("promtool query range %s against %s exited %d:\n%s", q, tw.url, code, out)
				}
				outs[i] = out
			}
			if n := strings.Count(outs[0], "=>"); n == 0 || q == selector && n != seriesPerScrape {
				t.Errorf("%s: the embedded store returned %d series:\n%s", q, n, outs[0])
			}
			if outs[0] != outs[1] {
				t.Errorf("%s: promtool output differs\nembedded:\n%s\nclickhouse:\n%s", q, outs[0], outs[1])
			}
		}
	})
}
