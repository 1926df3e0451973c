package collector_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/storage"

	"github.com/tidewatch/tidewatch/store"
	"github.com/tidewatch/tidewatch/store/embedded"
)

// exposition10k renders a realistic Prometheus text exposition of exactly
// 10,000 samples: a labelled counter family (4,000), two gauge families
// (2,000 + 2,600) and a classic histogram (100 handlers × 14 series).
func exposition10k() (body []byte, samples int) {
	var b bytes.Buffer
	methods := []string{"GET", "POST", "PUT", "DELETE"}
	codes := []string{"200", "201", "204", "301", "400", "401", "403", "404", "500", "503"}
	b.WriteString("# HELP app_http_requests_total Requests handled, by handler, method and code.\n# TYPE app_http_requests_total counter\n")
	for h := range 100 {
		for _, m := range methods {
			for i, c := range codes {
				fmt.Fprintf(&b, "app_http_requests_total{handler=\"/api/v1/resource%03d\",method=%q,code=%q} %d\n", h, m, c, 1000*h+37*i+7)
				samples++
			}
		}
	}
	b.WriteString("# HELP app_queue_depth Items waiting, by queue and shard.\n# TYPE app_queue_depth gauge\n")
	for q := range 1000 {
		for s := range 2 {
			fmt.Fprintf(&b, "app_queue_depth{queue=\"queue-%04d\",shard=\"%d\"} %d\n", q, s, (q*7+s)%113)
			samples++
		}
	}
	b.WriteString("# HELP app_cache_entries Entries, by cache.\n# TYPE app_cache_entries gauge\n")
	for c := range 2600 {
		fmt.Fprintf(&b, "app_cache_entries{cache=\"cache-%04d\",tier=\"l%d\"} %d.5\n", c, c%3, c*11)
		samples++
	}
	bounds := []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"}
	b.WriteString("# HELP app_request_duration_seconds Request latency.\n# TYPE app_request_duration_seconds histogram\n")
	for h := range 100 {
		for i, le := range bounds {
			fmt.Fprintf(&b, "app_request_duration_seconds_bucket{handler=\"/api/v1/resource%03d\",le=%q} %d\n", h, le, (i+1)*100+h)
			samples++
		}
		fmt.Fprintf(&b, "app_request_duration_seconds_sum{handler=\"/api/v1/resource%03d\"} %d.25\n", h, 40+h)
		fmt.Fprintf(&b, "app_request_duration_seconds_count{handler=\"/api/v1/resource%03d\"} %d\n", h, 1200+h)
		samples += 2
	}
	return b.Bytes(), samples
}

// BenchmarkScrapeParseAppend10k is one scrape of a 10,000-series target
// without HTTP: textparse the exposition, append every sample through
// store.Instrument into a real embedded TSDB, commit. One op = one scrape.
//
// no_cache resolves every series by its labels on every scrape;
// ref_cache keeps series refs and label sets between scrapes keyed by the
// raw series bytes, as Prometheus' scrape loop does (its steady state).
func BenchmarkScrapeParseAppend10k(b *testing.B) {
	body, perScrape := exposition10k()
	for _, cached := range []bool{false, true} {
		name := "no_cache"
		if cached {
			name = "ref_cache"
		}
		b.Run(name, func(b *testing.B) {
			db, err := embedded.Open(embedded.Config{Path: b.TempDir(), Retention: model.Duration(24 * time.Hour)}, quietLogger, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			app := store.Instrument(db, store.NewAppendMetrics(metrics.NewSet(), "bench"))
			s := &benchScraper{app: app, symbols: labels.NewSymbolTable(), body: body}
			if cached {
				s.cache = make(map[string]cacheEntry, perScrape)
			}
			ts := time.Now().Add(-time.Hour).UnixMilli()
			// Create the series first: measure the steady state, not series creation.
			if n := s.scrape(b, ts); n != perScrape {
				b.Fatalf("appended %d samples, want %d", n, perScrape)
			}

			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			total := 0
			for b.Loop() {
				ts += 15_000
				total += s.scrape(b, ts)
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "samples/s")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(total), "allocs/sample")
		})
	}
}

type cacheEntry struct {
	ref  storage.SeriesRef
	lset labels.Labels
}

type benchScraper struct {
	app     storage.AppendableV2
	symbols *labels.SymbolTable
	body    []byte
	cache   map[string]cacheEntry // nil: no cache
}

func (s *benchScraper) scrape(b *testing.B, ts int64) int {
	p, err := textparse.New(s.body, "text/plain; version=0.0.4", s.symbols, textparse.ParserOptions{})
	if p == nil {
		b.Fatalf("textparse.New: %v", err)
	}
	app := s.app.AppenderV2(context.Background())
	n := 0
	var lset labels.Labels
	for {
		et, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatalf("parse: %v", err)
		}
		if et != textparse.EntrySeries {
			continue
		}
		met, _, v := p.Series()
		var ref storage.SeriesRef
		ce, ok := s.cache[string(met)] // no allocation for the lookup
		if ok {
			ref, lset = ce.ref, ce.lset
		} else {
			p.Labels(&lset)
		}
		ref, err = app.Append(ref, lset, 0, ts, v, nil, nil, storage.AOptions{})
		if err != nil {
			b.Fatalf("append %s: %v", lset, err)
		}
		if !ok && s.cache != nil {
			s.cache[string(met)] = cacheEntry{ref: ref, lset: lset}
		}
		n++
	}
	if err := app.Commit(); err != nil {
		b.Fatalf("commit: %v", err)
	}
	return n
}
