package testinfra

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestPrometheusScrapesItself(t *testing.T) {
	t.Parallel()
	p := StartPrometheus(t, `
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: self
    static_configs:
      - targets: ['{{.Addr}}']
`)
	ctx := t.Context()
	err := WaitHTTP(ctx, p.URL+"/api/v1/query?query="+url.QueryEscape(`up{job="self"}`), func(status int, body []byte) bool {
		var r struct {
			Data struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if status != http.StatusOK || json.Unmarshal(body, &r) != nil || len(r.Data.Result) != 1 {
			return false
		}
		return r.Data.Result[0].Value[1] == "1"
	})
	if err != nil {
		t.Fatalf("up never became 1: %v", err)
	}
	if p.Promtool == "" {
		t.Error("no promtool path")
	}
}

func TestNodeExporter(t *testing.T) {
	t.Parallel()
	u := StartNodeExporter(t)
	resp, err := http.Get(u + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), "node_cpu_seconds_total") {
		t.Errorf("/metrics has no node_cpu_seconds_total:\n%.500s", body)
	}
}

func TestClickHouseRestartKeepsData(t *testing.T) {
	t.Parallel()
	ch := StartClickHouse(t)
	ctx := t.Context()
	query := func(sql string) string {
		t.Helper()
		out, err := ch.Query(ctx, sql)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	// The HTTP interface with the query in the URL, as the brief's clients use it.
	resp, err := http.Get(ch.HTTPURL + "/?query=" + url.QueryEscape("SELECT version()"))
	if err != nil {
		t.Fatal(err)
	}
	version, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(strings.TrimSpace(string(version))) == 0 {
		t.Fatalf("SELECT version(): status %d: %s", resp.StatusCode, version)
	}
	t.Logf("clickhouse version %s", strings.TrimSpace(string(version)))

	query("CREATE TABLE samples (ts Int64, v Float64) ENGINE = MergeTree ORDER BY ts")
	query("INSERT INTO samples VALUES (1, 0.5), (2, 1.5), (3, 2.5)")

	pid := ch.Proc.PID
	start := time.Now()
	ch.Stop()
	stopped := time.Since(start)
	if _, err := ch.Query(ctx, "SELECT 1"); err == nil {
		t.Fatal("query succeeded while the server was stopped")
	}
	start = time.Now()
	ch.Start()
	t.Logf("stop took %s, start took %s", stopped.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if ch.Proc.PID == pid {
		t.Errorf("restart kept pid %d", pid)
	}
	if got, want := query("SELECT count(), sum(v) FROM samples"), fmt.Sprintf("%d\t%g", 3, 4.5); got != want {
		t.Errorf("after restart got %q, want %q", got, want)
	}
}

func TestTail(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		n        int
		want     string
	}{
		{"empty", "", 3, ""},
		{"fewer lines", "a\nb\n", 3, "a\nb"},
		{"more lines", "a\nb\nc\nd\n", 2, "c\nd"},
		{"no trailing newline", "a\nb\nc", 1, "c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tail([]byte(tc.in), tc.n); got != tc.want {
				t.Errorf("tail(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
}
