package main

// End-to-end tests of probes and service discovery with the real binary:
// probe_configs against a local HTTP server and a closed port, and scrape
// targets registered in (and deleted from) a real etcd.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tidewatch/tidewatch/internal/testinfra"
)

// e2eTimeout bounds each wait: start-up, discovery (1 s), a couple of
// 2 s intervals, and slack for a loaded machine.
const e2eTimeout = 30 * time.Second

// instantValues runs an instant query on tw and returns labels -> value.
func instantValues(ctx context.Context, tw *twInstance, query string) (map[string]string, error) {
	r, err := apiQuery(ctx, tw.url, "/api/v1/query", url.Values{"query": {query}})
	if err != nil {
		return nil, err
	}
	res, err := decodeResult(r)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, s := range res.Series {
		if len(s.Points) > 0 {
			out[s.Labels] = s.Points[len(s.Points)-1].V
		}
	}
	return out, nil
}

// waitValue polls until query returns exactly one series with value want.
func waitValue(t *testing.T, tw *twInstance, query, want string) {
	t.Helper()
	poll(t, e2eTimeout, fmt.Sprintf("%s = %s", query, want), func() error {
		got, err := instantValues(t.Context(), tw, query)
		if err != nil {
			return err
		}
		if len(got) != 1 {
			return fmt.Errorf("got %d series: %v", len(got), got)
		}
		for _, v := range got {
			if v != want {
				return fmt.Errorf("value %s", v)
			}
		}
		return nil
	})
}

// TestProbeAcceptance: a probe of a local HTTP server and of a closed port
// give probe_success 1 and 0, and /api/v1/probes shows both with the error.
func TestProbeAcceptance(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	}))
	defer srv.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	tw := newTidewatch(t, "", "")
	tw.writeRawConfig(tw.configYAML("", "") + fmt.Sprintf(`
probe_configs:
  - job_name: api-health
    interval: 2s
    module: {prober: http, timeout: 1s, http: {method: GET, valid_status_codes: [200], fail_if_body_not_matches_regexp: [ok]}}
    static_configs: [{targets: [%q]}]
  - job_name: closed-port
    interval: 2s
    module: {prober: tcp, timeout: 1s}
    static_configs: [{targets: [%q]}]
`, srv.URL+"/healthz", closed))
	tw.start()

	waitValue(t, tw, `probe_success{job="api-health"}`, "1")
	waitValue(t, tw, `probe_http_status_code{job="api-health"}`, "200")
	waitValue(t, tw, `probe_success{job="closed-port"}`, "0")

	status, body, err := apiGet(t.Context(), tw.url, "/api/v1/probes", nil, nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET /api/v1/probes: %d %v", status, err)
	}
	var resp struct {
		Status string `json:"status"`
		Data   struct {
			ActiveTargets []struct {
				Job       string            `json:"job"`
				Target    string            `json:"target"`
				Health    string            `json:"health"`
				LastError string            `json:"lastError"`
				Labels    map[string]string `json:"labels"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil || resp.Status != "success" {
		t.Fatalf("decode /api/v1/probes: %v\n%s", err, body)
	}
	health := map[string]string{}
	for _, a := range resp.Data.ActiveTargets {
		health[a.Job] = a.Health
		if a.Job == "closed-port" && !strings.Contains(a.LastError, "connection refused") {
			t.Errorf("closed port's error: %q", a.LastError)
		}
	}
	if health["api-health"] != "up" || health["closed-port"] != "down" {
		t.Errorf("health: %v\n%s", health, body)
	}
	_, metricsBody, err := apiGet(t.Context(), tw.url, "/metrics", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`tidewatch_store_samples_appended_total{source="probe"}`, `tidewatch_probes_total{job="api-health"}`} {
		if !strings.Contains(string(metricsBody), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestEtcdAcceptance: a target registered in a real etcd under the prefix
// is scraped; deleting the key makes it disappear.
func TestEtcdAcceptance(t *testing.T) {
	t.Parallel()
	e := testinfra.StartEtcd(t)
	exp := newExporter(t, 1)
	tw := newTidewatch(t, fmt.Sprintf(`  - job_name: registry
    scrape_interval: 2s
    scrape_timeout: 1s
    etcd_sd_configs:
      - endpoints: [%q]
        prefix: /services/
`, e.Endpoint), "")
	tw.start()

	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "/services/api/1", fmt.Sprintf(`{"targets": [%q], "labels": {"service": "api"}}`, exp.addr)); err != nil {
		t.Fatal(err)
	}
	up := fmt.Sprintf(`up{job="registry",instance=%q,service="api"}`, exp.addr)
	waitValue(t, tw, up, "1")
	_, targets, err := apiGet(t.Context(), tw.url, "/api/v1/targets", url.Values{"state": {"active"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(targets), `"__meta_etcd_key":"/services/api/1"`) {
		t.Errorf("/api/v1/targets lacks the discovered label __meta_etcd_key:\n%s", targets)
	}

	if _, err := cli.Delete(ctx, "/services/api/1"); err != nil {
		t.Fatal(err)
	}
	poll(t, e2eTimeout, up+" to disappear", func() error {
		got, err := instantValues(t.Context(), tw, up)
		if err != nil {
			return err
		}
		if len(got) != 0 {
			return fmt.Errorf("still %v", got)
		}
		return nil
	})
}
