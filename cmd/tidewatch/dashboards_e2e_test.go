package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/dashboards"
	"github.com/tidewatch/tidewatch/internal/testinfra"
	"github.com/tidewatch/tidewatch/store"
)

// serviceExporter is a service under watch: /metrics exposes a request
// counter by code and a latency histogram in the conventional names the
// Service dashboard reads; /healthz answers "ok" for the probe. Each scrape
// advances the counters.
func serviceExporter(t *testing.T) *httptest.Server {
	t.Helper()
	var n atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		i := float64(n.Add(1))
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		var b strings.Builder
		p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
		p("# TYPE http_requests_total counter")
		p(`http_requests_total{code="200"} %v`, 100+i*20)
		p(`http_requests_total{code="500"} %v`, 10+i)
		p("# TYPE http_request_duration_seconds histogram")
		p(`http_request_duration_seconds_bucket{le="0.05"} %v`, 50+i*10)
		p(`http_request_duration_seconds_bucket{le="0.25"} %v`, 80+i*18)
		p(`http_request_duration_seconds_bucket{le="1"} %v`, 100+i*20)
		p(`http_request_duration_seconds_bucket{le="+Inf"} %v`, 110+i*21)
		p(`http_request_duration_seconds_sum %v`, 20+i*3)
		p(`http_request_duration_seconds_count %v`, 110+i*21)
		io.WriteString(w, b.String())
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestEveryPanelWorks generates the dashboards with `tidewatch dashboards
// generate` for a configuration with one autoscaling policy, substitutes
// the template variables as Grafana would, and runs every Prometheus panel
// and annotation query against a running Tidewatch that holds data: it
// scrapes itself and a service exporter, probes the service, evaluates a
// rule that fires (delivered to a webhook receiver) and runs a dry-run
// policy on the webhook backend. A query that does not parse fails at
// once; the test then waits until every query returns data and, at the
// deadline, lists the panels that still return nothing.
//
// With the ClickHouse store, the Tidewatch dashboard's ClickHouse panels are
// included, and the SQL panels run against the same ClickHouse (with the
// Grafana ClickHouse data source's $__fromTime/$__toTime macros expanded)
// and must return rows too.
func TestEveryPanelWorks(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		everyPanelWorks(t, nil)
	})
	t.Run("clickhouse", func(t *testing.T) {
		t.Parallel()
		everyPanelWorks(t, testinfra.StartClickHouse(t))
	})
}

func everyPanelWorks(t *testing.T, ch *testinfra.ClickHouse) {
	svc := serviceExporter(t)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{}`)
	}))
	t.Cleanup(hook.Close)

	tw := newTidewatch(t, "", "")
	rules := filepath.Join(tw.dir, "rules.yml")
	if err := os.WriteFile(rules, []byte(`groups:
  - name: dashboards
    rules:
      - alert: AlwaysFiring
        expr: vector(1)
        labels: {severity: warning}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	svcAddr := strings.TrimPrefix(svc.URL, "http://")
	scrapes := scrapeJob("tidewatch", tw.addr) + scrapeJob("api", svcAddr)
	base := tw.configYAML(scrapes, "")
	if ch != nil {
		base = tw.clickHouseConfig(scrapes, ch, "dash")
	}
	tw.writeRawConfig(base + fmt.Sprintf(`rule_files: [%q]
probe_configs:
  - job_name: api-probe
    interval: 1s
    module: {prober: http, timeout: 1s}
    static_configs: [{targets: [%q]}]
notifications:
  route: {receiver: hook, group_wait: 0s, group_interval: 1s, repeat_interval: 1h}
  receivers:
    - name: hook
      webhook_configs: [{url: %q}]
autoscaling:
  backends:
    - {name: hook, type: webhook, url: %q}
  policies:
    - name: api
      target: {backend: hook, kind: Deployment, namespace: shop, name: api}
      min: 1
      max: 10
      interval: 1s
      metrics: [{query: 'vector(10)', per_instance: 2}]
      forecast: {method: linear, window: 1m, horizon: 1m}
      dry_run: true
dashboards:
  clickhouse_datasource: clickhouse-uid
`, rules, svc.URL+"/healthz", hook.URL+"/alerts", hook.URL+"/scale"))

	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"dashboards", "generate", "--config", tw.config, "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("dashboards generate: exit %d: %s", code, stderr.String())
	}
	vars := map[string]string{
		"datasource": dashboards.DatasourceUID, "job": ".+", "instance": ".+",
		"__rate_interval": "1m", "__interval": "15s", "__range": "1h", "policy": "api",
	}
	var queries, sqlQueries []dashboards.PanelQuery
	for _, uid := range []string{dashboards.UIDFleet, dashboards.UIDService, dashboards.UIDAutoscaling, dashboards.UIDAlerts, dashboards.UIDTidewatch} {
		b, err := os.ReadFile(filepath.Join(out, uid+".json"))
		if err != nil {
			t.Fatal(err)
		}
		qs, err := dashboards.Queries(dashboards.Dashboard{UID: uid, JSON: b})
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			if q.Datasource != dashboards.PrometheusType {
				sqlQueries = append(sqlQueries, q)
				continue
			}
			q.Expr = dashboards.Substitute(q.Expr, vars)
			queries = append(queries, q)
		}
	}
	if len(sqlQueries) == 0 {
		t.Errorf("dashboards.clickhouse_datasource is set but no SQL panel was generated")
	}
	var unparsable []string
	for _, q := range queries {
		if _, err := store.NewParser().ParseExpr(q.Expr); err != nil {
			unparsable = append(unparsable, fmt.Sprintf("%s: %s: %v", q.Name(), q.Expr, err))
		}
	}
	if len(unparsable) > 0 {
		t.Fatalf("%d queries do not parse:\n%s", len(unparsable), strings.Join(unparsable, "\n"))
	}

	tw.start()
	pending := queries
	lastErr := map[string]string{}
	deadline := time.Now().Add(45 * time.Second)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for len(pending) > 0 && time.Now().Before(deadline) {
		var still []dashboards.PanelQuery
		for _, q := range pending {
			if err := queryHasData(t, tw.url, q); err != nil {
				lastErr[q.Name()] = err.Error()
				still = append(still, q)
			}
		}
		pending = still
		if len(pending) == 0 {
			break
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-tick.C:
		}
	}
	if ch != nil {
		pendingSQL := sqlQueries
		for len(pendingSQL) > 0 && time.Now().Before(deadline) {
			var still []dashboards.PanelQuery
			for _, q := range pendingSQL {
				if err := sqlHasData(t, ch, q); err != nil {
					lastErr[q.Name()] = err.Error()
					still = append(still, q)
				}
			}
			pendingSQL = still
			if len(pendingSQL) == 0 {
				break
			}
			select {
			case <-t.Context().Done():
				t.Fatal(t.Context().Err())
			case <-tick.C:
			}
		}
		pending = append(pending, pendingSQL...)
	}
	if len(pending) > 0 {
		var lines []string
		for _, q := range pending {
			lines = append(lines, fmt.Sprintf("%s: %s\n    %s", q.Name(), q.Expr+q.SQL, lastErr[q.Name()]))
		}
		sort.Strings(lines)
		t.Fatalf("%d of %d panel queries return nothing:\n%s", len(pending), len(queries), strings.Join(lines, "\n"))
	}
	if ch == nil {
		t.Logf("%d Prometheus panel and annotation queries return data; %d SQL panels not run (embedded store)", len(queries), len(sqlQueries))
		return
	}
	t.Logf("%d Prometheus panel and annotation queries and %d SQL panels return data", len(queries), len(sqlQueries))
}

// sqlHasData runs the SQL of a ClickHouse panel over the last hour, with the
// macros of Grafana's ClickHouse data source expanded, and reports an
// error unless it returns a row.
func sqlHasData(t *testing.T, ch *testinfra.ClickHouse, q dashboards.PanelQuery) error {
	now := time.Now().Unix()
	sql := strings.NewReplacer(
		"$__fromTime", fmt.Sprintf("toDateTime(%d)", now-3600),
		"$__toTime", fmt.Sprintf("toDateTime(%d)", now+60),
	).Replace(q.SQL)
	out, err := ch.Query(t.Context(), sql)
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) == "" {
		return fmt.Errorf("no rows")
	}
	return nil
}

// queryHasData runs q as Grafana would (a range query over the last minute
// with a 1s step, or an instant query) and reports an error unless the
// result holds at least one series.
func queryHasData(t *testing.T, baseURL string, q dashboards.PanelQuery) error {
	now := time.Now()
	params := url.Values{"query": {q.Expr}}
	path := "/api/v1/query_range"
	if q.Instant {
		path = "/api/v1/query"
		params.Set("time", fmtTime(unixSeconds(now)))
	} else {
		params.Set("start", fmtTime(unixSeconds(now.Add(-time.Minute))))
		params.Set("end", fmtTime(unixSeconds(now)))
		params.Set("step", "1")
	}
	r, err := apiQuery(t.Context(), baseURL, path, params)
	if err != nil {
		return err
	}
	var series []json.RawMessage
	if err := json.Unmarshal(r.Data.Result, &series); err != nil {
		return fmt.Errorf("result of type %s: %w", r.Data.ResultType, err)
	}
	if len(series) == 0 {
		return fmt.Errorf("empty %s", r.Data.ResultType)
	}
	return nil
}

// TestDashboardsCLI checks the command's usage errors and the provisioning
// it writes for the configuration's listen address.
func TestDashboardsCLI(t *testing.T) {
	tw := newTidewatch(t, "", "")
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"no subcommand", []string{"dashboards"}, 2},
		{"unknown subcommand", []string{"dashboards", "frob"}, 2},
		{"generate without out", []string{"dashboards", "generate", "--config", tw.config}, 2},
		{"push without url", []string{"dashboards", "push", "--config", tw.config}, 2},
		{"push with two auths", []string{"dashboards", "push", "--config", tw.config, "--grafana-url", "http://g", "--token", "a", "--basic-auth", "u:p"}, 2},
		{"missing config", []string{"dashboards", "generate", "--config", filepath.Join(tw.dir, "none.yml"), "--out", tw.dir}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o, e bytes.Buffer
			if code := run(tc.args, &o, &e); code != tc.code {
				t.Errorf("exit %d, want %d: %s", code, tc.code, e.String())
			}
		})
	}
	out := t.TempDir()
	var o, e bytes.Buffer
	if code := run([]string{"dashboards", "generate", "--config", tw.config, "--out", out}, &o, &e); code != 0 {
		t.Fatalf("generate: exit %d: %s", code, e.String())
	}
	if n := strings.Count(o.String(), "\n"); n != 7 {
		t.Errorf("generate printed %d paths:\n%s", n, o.String())
	}
	b, err := os.ReadFile(filepath.Join(out, dashboards.DatasourcesFile))
	if err != nil {
		t.Fatal(err)
	}
	if want := "url: " + tw.url; !strings.Contains(string(b), want) || !strings.Contains(string(b), "type: prometheus") {
		t.Errorf("data source provisioning lacks %q:\n%s", want, b)
	}
}
