package ui

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/tidewatch/tidewatch/autoscaler"
	"github.com/tidewatch/tidewatch/autoscaler/backend"
	"github.com/tidewatch/tidewatch/collector/probe"
	"github.com/tidewatch/tidewatch/store"
	"github.com/tidewatch/tidewatch/store/embedded"
)

type fakeProbes []probe.ActiveTarget

func (f fakeProbes) Targets() ([]probe.ActiveTarget, []probe.DroppedTarget) { return f, nil }

type fakeAutoscaler struct {
	policies  []autoscaler.PolicyStatus
	decisions []autoscaler.Decision
}

func (f fakeAutoscaler) Policies() []autoscaler.PolicyStatus { return f.policies }
func (f fakeAutoscaler) Decisions(string, int) []autoscaler.Decision {
	return f.decisions
}

// newTestUI serves the UI over a temp-dir embedded store holding ten
// minutes of a load series and the autoscaler's replica series.
func newTestUI(t *testing.T) (*httptest.Server, time.Time) {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	db, err := embedded.Open(embedded.Config{Path: t.TempDir(), Retention: model.Duration(24 * time.Hour)}, logger, nil)
	if err != nil {
		t.Fatalf("open embedded store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Now().Truncate(time.Second)
	app := db.AppenderV2(context.Background())
	for i := 600; i >= 0; i -= 5 {
		ts := now.Add(-time.Duration(i) * time.Second).UnixMilli()
		for _, s := range []struct {
			ls labels.Labels
			v  float64
		}{
			{labels.FromStrings("__name__", "tidewatch_autoscaler_metric_value", "policy", "api", "metric", "0"), float64(100 - i/10)},
			{labels.FromStrings("__name__", "tidewatch_autoscaler_current_replicas", "policy", "api"), float64(2 + (600-i)/200)},
			{labels.FromStrings("__name__", "tidewatch_autoscaler_desired_replicas", "policy", "api"), float64(2 + (600-i)/150)},
			{labels.FromStrings("__name__", "requests", "job", `a"<b>`), float64(i)},
		} {
			if _, err := app.Append(0, s.ls, 0, ts, s.v, nil, nil, storage.AppendV2Options{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	engine := store.NewEngine(store.DefaultQueryConfig, logger, nil)
	d := autoscaler.Decision{Policy: "api", Backend: "local", Target: backend.Target{Name: "api"}, Action: autoscaler.ActionScale,
		Evaluation: autoscaler.Evaluation{Time: now.Add(-time.Minute), Current: 3, Desired: 5, Steps: []string{"scale up from 3 to 5"}}}
	u, err := New(Options{
		Logger: logger, Engine: engine, Queryable: db,
		Probes: fakeProbes{{Job: "health", Target: "http://127.0.0.1:1/healthz", Prober: "http", Health: "down", LastError: "connection refused"}},
		Autoscaler: fakeAutoscaler{
			policies:  []autoscaler.PolicyStatus{{Name: "api", Backend: "local", BackendType: "process", Min: 2, Max: 8, Interval: "5s", LastDecision: &d}},
			decisions: []autoscaler.Decision{d},
		},
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	u.Routes(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv, now
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPages(t *testing.T) {
	srv, _ := newTestUI(t)
	for _, tc := range []struct {
		name, path string
		want       []string
	}{
		{"targets without a scrape manager", "/targets", []string{"No scrape targets."}},
		{"probes", "/probes", []string{"http://127.0.0.1:1/healthz", `class="health down"`, "connection refused"}},
		{"alerts without rules", "/alerts", []string{"No alerting rules.", "firing 0"}},
		{"rules without rules", "/rules", []string{"No rule groups."}},
		{"autoscaler", "/autoscaler", []string{`<span class="value current-replicas">3</span>`, `<span class="value desired-replicas">5</span>`,
			"<polyline", "current replicas (right axis)", "scale up from 3 to 5", `class="action-scale"`}},
		{"graph empty", "/graph", []string{"<textarea", "Execute"}},
		{"graph with a query", "/graph?range=15m&expr=" + url.QueryEscape("requests"), []string{"<polyline", `class="result"`,
			`{__name__=&#34;requests&#34;, job=&#34;a\&#34;&lt;b&gt;&#34;}`}},
		{"graph with a scalar", "/graph?expr=1%2B1", []string{`<p class="scalar">2</p>`}},
		{"graph with a bad query", "/graph?expr=" + url.QueryEscape("sum(("), []string{`class="error query-error"`}},
		{"graph with an empty result", "/graph?expr=nothing_here", []string{"Empty query result."}},
		{"stylesheet", "/ui/style.css", []string{"svg.chart"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, srv.URL+tc.path)
			if code != http.StatusOK {
				t.Fatalf("GET %s: %d\n%s", tc.path, code, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("GET %s lacks %q:\n%s", tc.path, w, body)
				}
			}
			if strings.Contains(body, `<b>`) {
				t.Errorf("GET %s: unescaped label value", tc.path)
			}
		})
	}
}

func TestRootRedirectsToGraph(t *testing.T) {
	srv, _ := newTestUI(t)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/graph" {
		t.Fatalf("GET / = %d Location %q, want 302 /graph", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestChartStart(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	dec := func(ago time.Duration) []autoscaler.Decision {
		return []autoscaler.Decision{{Evaluation: autoscaler.Evaluation{Time: now.Add(-ago)}}}
	}
	for _, tc := range []struct {
		name string
		ds   []autoscaler.Decision
		want time.Duration // before now
	}{
		{"no decisions: an hour", nil, time.Hour},
		{"young policy: five minutes at least", dec(time.Minute), 5 * time.Minute},
		{"twenty minutes of history", dec(20 * time.Minute), 20*time.Minute + 30*time.Second},
		{"older than an hour", dec(3 * time.Hour), time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := now.Sub(chartStart(now, tc.ds)); got != tc.want {
				t.Errorf("chart starts %s before now, want %s", got, tc.want)
			}
		})
	}
}
