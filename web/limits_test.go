package web_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/scrape"
	"go.yaml.in/yaml/v2"

	"github.com/tidewatch/tidewatch/internal/testinfra"
	"github.com/tidewatch/tidewatch/store"
	"github.com/tidewatch/tidewatch/store/embedded"
	"github.com/tidewatch/tidewatch/web"
)

// orChain is a dashboard-style expression of about n bytes.
func orChain(n int) string {
	var b strings.Builder
	b.WriteString(`sum by (job) (rate(http_requests_total{job="api-0",code=~"5.."}[5m]))`)
	for i := 1; b.Len() < n; i++ {
		fmt.Fprintf(&b, ` or sum by (job) (rate(http_requests_total{job="api-%d",code=~"5.."}[5m]))`, i)
	}
	return b.String()
}

func nested(n int) string { return strings.Repeat("abs(", n) + "vector(1)" + strings.Repeat(")", n) }

// TestQueryLimits checks every endpoint that parses PromQL against the
// default limits: too long or too deep is a 400 bad_data before parsing, a
// query whose subquery would not fit in max_samples a 422 before evaluating.
func TestQueryLimits(t *testing.T) {
	e := newEnv(t, envOpts{})
	long := strings.Repeat("a", store.DefaultQueryConfig.MaxLength+1)
	deep := nested(store.DefaultQueryConfig.MaxDepth + 1)
	chain := "1" + strings.Repeat("+1", 20_000) // 40 KB: seconds to parse, far longer to evaluate or format on 6480e51
	cases := []struct {
		name, method, path, param, value string
		code                             int
		errorType, errorText             string
	}{
		{"query too long", "GET", "/api/v1/query", "query", long, 400, "bad_data", "query.max_length"},
		{"query too long by POST", "POST", "/api/v1/query", "query", long, 400, "bad_data", "query.max_length"},
		{"query too deep", "GET", "/api/v1/query", "query", deep, 400, "bad_data", "nested too deeply"},
		{"operator chain", "POST", "/api/v1/query", "query", chain, 400, "bad_data", "nested too deeply"},
		{"range query too deep", "GET", "/api/v1/query_range?start=0&end=60&step=15", "query", deep, 400, "bad_data", "nested too deeply"},
		{"format_query chain", "POST", "/api/v1/format_query", "query", chain, 400, "bad_data", "nested too deeply"},
		{"format_query is stricter", "GET", "/api/v1/format_query", "query", nested(200), 400, "bad_data", "more than 128 levels"},
		{"format_query within its depth", "GET", "/api/v1/format_query", "query", nested(100), 200, "", ""},
		{"parse_query too long", "POST", "/api/v1/parse_query", "query", long, 400, "bad_data", "query.max_length"},
		{"series match[] too deep", "GET", "/api/v1/series", "match[]", deep, 400, "bad_data", `invalid parameter "match[]"`},
		{"labels match[] too long", "POST", "/api/v1/labels", "match[]", long, 400, "bad_data", `invalid parameter "match[]"`},
		{"query deeper than format allows", "GET", "/api/v1/query?time=" + t0s, "query", nested(200), 200, "", ""},
		{"a long dashboard or-chain", "POST", "/api/v1/query?time=" + t0s, "query", orChain(60_000), 200, "", ""},
		{"the query of death", "GET", "/api/v1/query?time=" + t0s, "query", "count_over_time(vector(1)[2d:1ms])", 422, "execution", "query processing would load too many samples into memory"},
		{"the query of death as a range query", "GET", "/api/v1/query_range?start=0&end=3600&step=60", "query", "count_over_time(vector(1)[2d:1ms])", 422, "execution", "too many samples"},
		{"hours of uninterruptible work", "GET", "/api/v1/query?time=" + t0s, "query", "sum_over_time(sum_over_time(vector(1)[1d:100ms])[1d:1s])", 422, "cost_limit", "query would read too many samples"},
		{"a selector's subquery", "GET", "/api/v1/query?time=" + t0s, "query", "count_over_time(up[30d:1ms])", 422, "execution", "too many samples"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			form := url.Values{c.param: {c.value}}.Encode()
			var (
				code int
				body []byte
			)
			if c.method == "GET" {
				sep := "?"
				if strings.Contains(c.path, "?") {
					sep = "&"
				}
				code, body = e.get(t, c.path+sep+form)
			} else {
				code, body, _ = e.do(t, "POST", c.path, strings.NewReader(form), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
			}
			if code != c.code {
				t.Fatalf("%s %s = %d %.300s, want %d", c.method, c.path, code, body, c.code)
			}
			if c.errorType == "" {
				return
			}
			m := decode(t, body)
			if m["status"] != "error" || m["errorType"] != c.errorType || !strings.Contains(fmt.Sprint(m["error"]), c.errorText) {
				t.Errorf("body %.300s, want errorType %q and an error saying %q", body, c.errorType, c.errorText)
			}
		})
	}
}

// gauge reads one unlabelled gauge from /metrics.
func (e *env) gauge(t *testing.T, name string) float64 {
	t.Helper()
	_, body := e.get(t, "/metrics")
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

// waitGauge polls /metrics until name reads want; the deadline only bounds
// a failing test.
func (e *env) waitGauge(t *testing.T, name string, want float64, why string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for e.gauge(t, name) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s still %v, want %v: %s", name, e.gauge(t, name), want, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestQueryCancelledWithClient shows that a query stops when its client
// goes: the request context reaches the engine.
func TestQueryCancelledWithClient(t *testing.T) {
	q := store.DefaultQueryConfig
	q.Timeout = model.Duration(time.Hour)
	e := newEnv(t, envOpts{query: q})
	// Within every limit, but a minute or so of work: 1.7 million steps
	// of 24 vector operations each, during which the engine checks its context.
	slow := "count_over_time((vector(time())" + strings.Repeat(" + vector(time())", 23) + ")[1d:50ms])"
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", e.url+"/api/v1/query?time="+t0s+"&query="+url.QueryEscape(slow), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("the query answered %s", resp.Status)
		}
		done <- err
	}()
	e.waitGauge(t, "prometheus_engine_queries", 1, "the query never started")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v, want its cancellation", err)
	}
	e.waitGauge(t, "prometheus_engine_queries", 0, "the query kept running after its client left")
}

func TestFeatures(t *testing.T) {
	e := newEnv(t, envOpts{})
	code, body := e.get(t, "/api/v1/features")
	if code != http.StatusOK {
		t.Fatalf("/api/v1/features = %d %s", code, body)
	}
	data, _ := decode(t, body)["data"].(map[string]any)
	for _, f := range []struct {
		category, name string
		want           bool
	}{
		{"promql", "subqueries", true},
		{"promql", "at_modifier", true},
		{"promql_functions", "holt_winters", true},
		{"api", "remote_write_receiver", true},
		{"api", "admin", false},
		{"prometheus", "agent_mode", false},
		{"templating_functions", "humanize", true},
	} {
		cat, _ := data[f.category].(map[string]any)
		if got, ok := cat[f.name].(bool); !ok || got != f.want {
			t.Errorf("%s.%s = %v, want %v", f.category, f.name, cat[f.name], f.want)
		}
	}
}

func TestReadTimeoutConfig(t *testing.T) {
	var c web.Config
	if err := yaml.UnmarshalStrict([]byte("listen_address: :1\n"), &c); err != nil {
		t.Fatal(err)
	}
	if c.ReadTimeout != model.Duration(5*time.Minute) {
		t.Errorf("default web.read_timeout = %v, want 5m as Prometheus' --web.read-timeout", c.ReadTimeout)
	}
	if err := yaml.UnmarshalStrict([]byte("read_timeout: 0s\n"), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "web.read_timeout") {
		t.Errorf("Validate with read_timeout 0 = %v, want a web.read_timeout error", err)
	}
}

// TestReadTimeout trickles a request body one byte at a time: the server
// must end the request at web.read_timeout instead of waiting for the body.
func TestReadTimeout(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	ecfg := embedded.DefaultConfig
	ecfg.Path = t.TempDir()
	db, err := embedded.Open(ecfg, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	sm, err := scrape.NewManager(&scrape.Options{}, logger, nil, nil, db, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	cfg := web.DefaultConfig
	cfg.ListenAddress = "127.0.0.1:0"
	cfg.ReadTimeout = model.Duration(time.Second)
	set := metrics.NewSet()
	s, err := web.New(web.Options{
		Logger: logger, Config: cfg, Metrics: set,
		Engine: store.NewEngine(store.DefaultQueryConfig, logger, nil), Queryable: db,
		Targets: sm,
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", cfg.ListenAddress)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	const bodyLen = 600
	sent, status, ended := testinfra.TrickleQuery(t, l.Addr().String(), bodyLen, 100*time.Millisecond)
	if !ended {
		t.Fatalf("the server read a body trickled over %v with web.read_timeout %v", bodyLen*100*time.Millisecond, time.Duration(cfg.ReadTimeout))
	}
	t.Logf("request ended after %d of %d bytes: %q", sent, bodyLen, status)
}
