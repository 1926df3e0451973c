package collector_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/tidewatch/tidewatch/collector"
	"github.com/tidewatch/tidewatch/store"
	"github.com/tidewatch/tidewatch/store/embedded"
)

// waitTimeout bounds every poll: discovery (1 s) + scrape reload (1 s) +
// a few scrape intervals, with plenty of slack for a loaded CI machine.
const waitTimeout = 20 * time.Second

var quietLogger = slog.New(slog.DiscardHandler)

// harness is one collector scraping into a real embedded TSDB in a temp dir.
type harness struct {
	t      *testing.T
	db     *embedded.DB
	set    *metrics.Set
	col    *collector.Collector
	engine *promql.Engine

	cancel  context.CancelFunc
	runDone chan error
	stopped atomic.Bool
}

type harnessOpts struct {
	// wrap, when set, wraps the appendable the collector writes to.
	wrap func(storage.AppendableV2) storage.AppendableV2
}

func newHarness(t *testing.T, cfgYAML string, o harnessOpts) *harness {
	t.Helper()
	db, err := embedded.Open(embedded.Config{Path: t.TempDir(), Retention: model.Duration(24 * time.Hour)}, quietLogger, nil)
	if err != nil {
		t.Fatalf("open embedded store: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	set := metrics.NewSet()
	var app storage.AppendableV2 = store.Instrument(db, store.NewAppendMetrics(set, "scrape"))
	if o.wrap != nil {
		app = o.wrap(app)
	}
	col, err := collector.New(collector.Options{
		Logger:     quietLogger,
		Registerer: prometheus.NewRegistry(),
		Metrics:    set,
		Appendable: app,
	})
	if err != nil {
		t.Fatalf("collector.New: %v", err)
	}
	h := &harness{
		t: t, db: db, set: set, col: col,
		engine:  store.NewEngine(store.DefaultQueryConfig, quietLogger, nil),
		runDone: make(chan error, 1),
	}
	h.apply(cfgYAML)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.runDone <- col.Run(ctx) }()
	t.Cleanup(func() { h.stop() })
	return h
}

func loadConfig(t *testing.T, cfgYAML string) *promconfig.Config {
	t.Helper()
	cfg, err := promconfig.Load(cfgYAML, quietLogger)
	if err != nil {
		t.Fatalf("load config: %v\n%s", err, cfgYAML)
	}
	return cfg
}

func (h *harness) apply(cfgYAML string) {
	h.t.Helper()
	if err := h.col.ApplyConfig(loadConfig(h.t, cfgYAML)); err != nil {
		h.t.Fatalf("ApplyConfig: %v", err)
	}
}

// stop cancels Run and waits for it to return (at most waitTimeout).
func (h *harness) stop() error {
	h.t.Helper()
	if h.stopped.Swap(true) {
		return nil
	}
	h.cancel()
	select {
	case err := <-h.runDone:
		return err
	case <-time.After(waitTimeout):
		h.t.Fatalf("Run did not return within %s of ctx cancel", waitTimeout)
		return nil
	}
}

// eventually polls cond until it is true or the deadline passes.
func (h *harness) eventually(what string, cond func() (bool, string)) {
	h.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	var last string
	for {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %s waiting for %s; last state: %s", waitTimeout, what, last)
		}
		time.Sleep(20 * time.Millisecond) // poll step, not a synchronisation.
	}
}

// jobCounters parses the collector's metrics.Set exposition and returns
// metric name -> job -> value.
func (h *harness) jobCounters() map[string]map[string]float64 {
	h.t.Helper()
	var buf bytes.Buffer
	h.set.WritePrometheus(&buf)
	return parseByJob(h.t, buf.Bytes())
}

func parseByJob(t testing.TB, b []byte) map[string]map[string]float64 {
	t.Helper()
	p, err := textparse.New(b, "text/plain; version=0.0.4", labels.NewSymbolTable(), textparse.ParserOptions{})
	if p == nil {
		t.Fatalf("textparse.New: %v", err)
	}
	out := map[string]map[string]float64{}
	for {
		et, err := p.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("parse metrics.Set exposition: %v\n%s", err, b)
		}
		if et != textparse.EntrySeries {
			continue
		}
		_, _, v := p.Series()
		var ls labels.Labels
		p.Labels(&ls)
		name := ls.Get(labels.MetricName)
		if out[name] == nil {
			out[name] = map[string]float64{}
		}
		out[name][ls.Get("job")] = v
	}
}

func (h *harness) scrapes(job string) float64 {
	return h.jobCounters()["tidewatch_scrapes_total"][job]
}

// waitScrapes waits until job has completed at least n committed scrapes
// (the per-job counter is incremented after the scrape's Commit, so what
// those scrapes stored is visible once this returns).
func (h *harness) waitScrapes(job string, n float64) {
	h.t.Helper()
	h.eventually(fmt.Sprintf("%v scrapes of job %q", n, job), func() (bool, string) {
		got := h.scrapes(job)
		return got >= n, fmt.Sprintf("tidewatch_scrapes_total{job=%q}=%v", job, got)
	})
}

// instant evaluates q at now and returns labels-string -> value.
func (h *harness) instant(q string) map[string]float64 {
	h.t.Helper()
	qry, err := h.engine.NewInstantQuery(context.Background(), h.db, nil, q, time.Now())
	if err != nil {
		h.t.Fatalf("query %q: %v", q, err)
	}
	defer qry.Close()
	res := qry.Exec(context.Background())
	if res.Err != nil {
		h.t.Fatalf("exec %q: %v", q, res.Err)
	}
	vec, err := res.Vector()
	if err != nil {
		h.t.Fatalf("result of %q: %v", q, err)
	}
	out := make(map[string]float64, len(vec))
	for _, s := range vec {
		out[s.Metric.String()] = s.F
	}
	return out
}

// single evaluates q and requires exactly one result.
func (h *harness) single(q string) float64 {
	h.t.Helper()
	res := h.instant(q)
	if len(res) != 1 {
		h.t.Fatalf("query %q: want 1 series, got %d: %v", q, len(res), res)
	}
	for _, v := range res {
		return v
	}
	return math.NaN()
}

type rawSample struct {
	T         int64
	V         float64
	Histogram bool
}

// raw returns every stored sample (stale markers included) of the series
// selected by the PromQL selector sel, keyed by labels string.
func (h *harness) raw(sel string) map[string][]rawSample {
	h.t.Helper()
	ms, err := parseSelector(sel)
	if err != nil {
		h.t.Fatalf("selector %q: %v", sel, err)
	}
	return rawSamples(h.t, h.db, ms...)
}

func parseSelector(sel string) ([]*labels.Matcher, error) {
	return parser.NewParser(parser.Options{}).ParseMetricSelector(sel)
}

func rawSamples(t testing.TB, q storage.Queryable, ms ...*labels.Matcher) map[string][]rawSample {
	t.Helper()
	querier, err := q.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatalf("querier: %v", err)
	}
	defer querier.Close()
	ss := querier.Select(context.Background(), true, nil, ms...)
	out := map[string][]rawSample{}
	var it chunkenc.Iterator
	for ss.Next() {
		s := ss.At()
		it = s.Iterator(it)
		var samples []rawSample
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			switch vt {
			case chunkenc.ValFloat:
				ts, v := it.At()
				samples = append(samples, rawSample{T: ts, V: v})
			case chunkenc.ValHistogram, chunkenc.ValFloatHistogram:
				samples = append(samples, rawSample{T: it.AtT(), Histogram: true})
			}
		}
		if err := it.Err(); err != nil {
			t.Fatalf("iterate %s: %v", s.Labels(), err)
		}
		out[s.Labels().String()] = samples
	}
	if err := ss.Err(); err != nil {
		t.Fatalf("select: %v", err)
	}
	return out
}

// activeTarget returns the active target of job whose address is addr.
func (h *harness) activeTarget(job, addr string) *scrape.Target {
	for _, tg := range h.col.Targets().TargetsActive()[job] {
		if tg.URL().Host == addr {
			return tg
		}
	}
	return nil
}

// waitTargetError waits until the target has been scraped and failed, and
// returns its last error.
func (h *harness) waitTargetError(job, addr string) error {
	h.t.Helper()
	var lastErr error
	h.eventually(fmt.Sprintf("a scrape error on %s/%s", job, addr), func() (bool, string) {
		tg := h.activeTarget(job, addr)
		if tg == nil {
			return false, "target not active yet"
		}
		lastErr = tg.LastError()
		return lastErr != nil, fmt.Sprintf("health=%s", tg.Health())
	})
	return lastErr
}

// exporter is a real HTTP exporter that records what the scraper asked for.
type exporter struct {
	*httptest.Server
	hits atomic.Int64

	mu         sync.Mutex
	accept     string
	acceptEnc  string
	respCTypes []string
}

func newExporter(t *testing.T, h http.Handler) *exporter {
	t.Helper()
	e := &exporter{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		e.mu.Lock()
		e.accept = r.Header.Get("Accept")
		e.acceptEnc = r.Header.Get("Accept-Encoding")
		e.mu.Unlock()
		h.ServeHTTP(w, r)
		e.mu.Lock()
		e.respCTypes = append(e.respCTypes, w.Header().Get("Content-Type"))
		e.mu.Unlock()
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *exporter) addr() string { return strings.TrimPrefix(e.URL, "http://") }

func (e *exporter) lastAccept() (accept, acceptEncoding string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.accept, e.acceptEnc
}

func (e *exporter) lastRespContentType() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.respCTypes) == 0 {
		return ""
	}
	return e.respCTypes[len(e.respCTypes)-1]
}

const textContentType = "text/plain; version=0.0.4; charset=utf-8"

// jobConfig renders one scrape job; extra is indented YAML inserted into the job.
func jobConfig(job string, targets []string, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - job_name: %s\n    static_configs:\n      - targets: [", job)
	for i, tg := range targets {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "'%s'", tg)
	}
	b.WriteString("]\n")
	for _, line := range strings.Split(strings.TrimRight(extra, "\n"), "\n") {
		if line != "" {
			b.WriteString("    " + line + "\n")
		}
	}
	return b.String()
}

// config renders a whole configuration with a fast scrape interval.
func config(jobs ...string) string {
	return "global:\n  scrape_interval: 200ms\n  scrape_timeout: 200ms\nscrape_configs:\n" + strings.Join(jobs, "")
}
