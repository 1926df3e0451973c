package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/autoscaler/analysis"
	"github.com/tidewatch/tidewatch/internal/demo"
	"github.com/tidewatch/tidewatch/internal/testinfra"
)

// demoCapacity is what one demo instance serves before it saturates
// (internal/demo/service.go's default).
const demoCapacity = 30

// TestAnalyzeDemoSaturation runs two real demo service instances under
// the demo's load generator, sweeping the load per instance from 5 to 28
// requests/s, scrapes them every second into a real Tidewatch's embedded
// store, and checks that the capacity estimator recovers the demo's
// saturation point (30 requests/s per instance) within 15 % from the
// stored series: through GET /api/v1/autoscaler/analysis and the Analysis
// page while Tidewatch runs, then through `tidewatch analyze` (json, html
// and table) on the store it left.
func TestAnalyzeDemoSaturation(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	var targets []string
	for range 2 {
		addr := "127.0.0.1:" + strconv.Itoa(testinfra.FreePort(t))
		targets = append(targets, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := demo.RunService(ctx, demo.ServiceOptions{Listen: addr, Capacity: demoCapacity}); err != nil {
				t.Errorf("demo service %s: %v", addr, err)
			}
		}()
	}
	for _, a := range targets {
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		if err := testinfra.WaitHTTP(wctx, "http://"+a+"/healthz", nil); err != nil {
			t.Fatalf("demo service %s: %v", a, err)
		}
		wcancel()
	}

	tw := newTidewatch(t, scrapeJob("demo", targets...), "")
	sd := filepath.Join(tw.dir, "demo.json")
	js, _ := json.Marshal([]map[string][]string{{"targets": targets}})
	if err := os.WriteFile(sd, js, 0o644); err != nil {
		t.Fatal(err)
	}
	tw.writeRawConfig(tw.configYAML(scrapeJob("demo", targets...), "") + `
autoscaling:
  backends:
    - {name: hook, type: webhook, url: "http://127.0.0.1:1/scale"}
  policies:
    - name: demo
      target: {backend: hook, name: demo}
      min: 2
      max: 8
      interval: 5s
      dry_run: true
      metrics:
        - {query: 'sum(rate(demo_http_requests_total{job="demo"}[10s]))', per_instance: 20}
analysis:
  cost_per_replica_hour: 0.05
  step: 2s
  window: 10s
  objectives:
    - {job: demo, latency_threshold: 0.1}
`)
	tw.start()

	// The load: 10 → 56 requests/s over the two instances (5 → 28 each),
	// the rising half of the generator's wave, in 100 s.
	const sweep = 100 * time.Second
	start := time.Now()
	gen := &demo.LoadGen{SDFile: sd, Logger: slog.New(slog.DiscardHandler),
		Wave: demo.Wave{Base: 33, Amplitude: 23, Period: 2 * sweep}}
	gctx, gcancel := context.WithTimeout(ctx, sweep+5*time.Second)
	defer gcancel()
	gen.Run(gctx)
	end := time.Now()
	sent, failed := gen.Stats()
	t.Logf("load generator: %d requests, %d failed, over %s", sent, failed, end.Sub(start).Round(time.Second))
	if failed > sent/100 {
		t.Fatalf("%d of %d requests failed", failed, sent)
	}

	span := url.Values{"from": {fmt.Sprint(start.Unix())}, "to": {fmt.Sprint(end.Unix())}}
	status, body, err := apiGet(ctx, tw.url, "/api/v1/autoscaler/analysis", span, nil)
	if err != nil || status != 200 {
		t.Fatalf("GET /api/v1/autoscaler/analysis: %d %v\n%s", status, err, body)
	}
	var env struct {
		Status string          `json:"status"`
		Data   analysis.Report `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Status != "success" {
		t.Fatalf("envelope %q, %v:\n%.500s", env.Status, err, body)
	}
	checkDemoReport(t, "API", &env.Data)
	status, page, err := apiGet(ctx, tw.url, "/analysis", span, nil)
	if err != nil || status != 200 || !bytes.Contains(page, []byte(`class="capacity-per-instance"`)) || !bytes.Contains(page, []byte("<svg")) {
		t.Errorf("GET /analysis: %d %v, capacity and charts shown: %v", status, err, bytes.Contains(page, []byte("capacity-per-instance")))
	}
	tw.proc.Stop()

	run := func(output string) []byte {
		t.Helper()
		cmd := exec.CommandContext(ctx, twBin, "analyze", "--config", tw.config, "--from", start.UTC().Format(time.RFC3339), "--to", end.UTC().Format(time.RFC3339), "--output", output)
		cmd.Dir = tw.dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tidewatch analyze --output %s: %v\n%s", output, err, stderr.String())
		}
		return out
	}
	var rep analysis.Report
	raw := run("json")
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("analyze json: %v\n%.500s", err, raw)
	}
	checkDemoReport(t, "analyze", &rep)
	// The JSON's field names, as documented.
	var fields struct {
		Jobs []map[string]json.RawMessage `json:"jobs"`
	}
	_ = json.Unmarshal(raw, &fields)
	for _, k := range []string{"job", "policy", "autoscaled", "queries", "capacity", "current", "recommended", "cost", "series", "fit_samples"} {
		if _, ok := fields.Jobs[0][k]; !ok {
			t.Errorf("jobs[0] has no %q", k)
		}
	}
	var capFields map[string]json.RawMessage
	_ = json.Unmarshal(fields.Jobs[0]["capacity"], &capFields)
	for _, k := range []string{"saturation_per_instance", "saturation_interval", "r2", "latency_breaking_per_instance", "capacity_per_instance", "confidence", "samples"} {
		if _, ok := capFields[k]; !ok {
			t.Errorf("jobs[0].capacity has no %q", k)
		}
	}

	html := string(run("html"))
	for _, want := range []string{"<!DOCTYPE html>", "Job demo (policy demo)", "Load and capacity: demo", "Replicas: demo",
		"Latency against per-instance load: demo", "<svg", "saturation point", "static peak", "recommended (replayed)"} {
		if !strings.Contains(html, want) {
			t.Errorf("the HTML report has no %q", want)
		}
	}
	for _, bad := range []string{"<script", "src=\"http", "href=\"http", "<link"} {
		if strings.Contains(html, bad) {
			t.Errorf("the HTML report is not self-contained: it has %q", bad)
		}
	}
	table := string(run("table"))
	if !strings.Contains(table, "saturation point") || !strings.Contains(table, "recommended policy keys:") {
		t.Errorf("table output:\n%s", table)
	}
}

// checkDemoReport checks the demo job's analysis: the saturation point
// within 15 % of the demo's, and the recommendation and cost derived from it.
func checkDemoReport(t *testing.T, via string, rep *analysis.Report) {
	t.Helper()
	if len(rep.Jobs) != 1 {
		t.Fatalf("%s: %d jobs, want 1: %+v", via, len(rep.Jobs), rep.Jobs)
	}
	j := rep.Jobs[0]
	if j.Error != "" || j.Capacity == nil {
		t.Fatalf("%s: the demo job was not analysed: %s", via, j.Error)
	}
	c := j.Capacity
	upper := func(iv analysis.Interval) float64 {
		if iv.High == nil {
			return math.Inf(1)
		}
		return *iv.High
	}
	t.Logf("%s: saturation %.2f req/s per instance (want %d; 90 %% interval %.2f–%.2f), R² %.3f, %d samples over %.1f–%.1f req/s; base %.1f ms; "+
		"the 0.1 s objective (p99) breaks at %.2f (interval %.2f–%.2f), confidence %s",
		via, c.Saturation, demoCapacity, c.SaturationInterval.Low, upper(c.SaturationInterval), c.R2, c.Samples, c.Min, c.Max, 1000*c.Base,
		c.Breaking, c.BreakingInterval.Low, upper(c.BreakingInterval), c.Confidence)
	if rel := math.Abs(c.Saturation-demoCapacity) / demoCapacity; rel > 0.15 {
		t.Errorf("%s: saturation %.2f is %.0f %% off the demo's %d", via, c.Saturation, 100*rel, demoCapacity)
	}
	if j.Job != "demo" || j.Policy != "demo" || !j.Autoscaled {
		t.Errorf("%s: job %q policy %q autoscaled %v", via, j.Job, j.Policy, j.Autoscaled)
	}
	// The p99 objective breaks below saturation: 30 × (1 − base₉₉/0.1).
	if c.Breaking <= 0 || c.Breaking >= c.Saturation || c.PerInstance != c.Breaking || c.LimitedBy != "latency" {
		t.Errorf("%s: breaking %.2f, capacity %.2f limited by %s", via, c.Breaking, c.PerInstance, c.LimitedBy)
	}
	r := j.Recommended
	if r == nil || r.PerInstance <= 0 || r.PerInstance >= r.CapacityPerInstance || r.Min < 1 || r.Max <= r.Min || !strings.Contains(r.YAML, "capacity_per_instance:") {
		t.Fatalf("%s: recommended %+v", via, r)
	}
	if j.Current == nil || j.Current.PerInstance != 20 || j.Current.Min != 2 || j.Current.Max != 8 {
		t.Errorf("%s: current %+v, want the policy's 20/2/8", via, j.Current)
	}
	k := j.Cost
	if k == nil || k.Current == nil || k.Recommended.ReplicaHours <= 0 || k.Static.ReplicaHours <= 0 || k.Measured.ReplicaHours <= 0 {
		t.Fatalf("%s: cost %+v", via, k)
	}
	// Two instances were up throughout the ~100 s.
	if k.Measured.MaxReplicas != 2 || math.Abs(k.Measured.ReplicaHours-2*100.0/3600) > 2*15.0/3600 {
		t.Errorf("%s: measured %+v, want 2 replicas for about 100 s", via, k.Measured)
	}
	if math.Abs(k.Recommended.Cost-0.05*k.Recommended.ReplicaHours) > 1e-9 || k.SavingsAgainst != "current" {
		t.Errorf("%s: cost %.4f for %.4f replica-hours; savings against %q", via, k.Recommended.Cost, k.Recommended.ReplicaHours, k.SavingsAgainst)
	}
	if len(j.Series.Time) < 20 || len(j.Series.Recommended) != len(j.Series.Time) {
		t.Errorf("%s: %d series points, %d recommended", via, len(j.Series.Time), len(j.Series.Recommended))
	}
}
