package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/internal/testinfra"
)

// TestDemoAndStatusUI runs `tidewatch demo` with a short surge, waits until
// the autoscaler has scaled the fleet out and an alert fires (through the
// API), then opens every status page in real headless Chromium (Debian's
// chromium package): each must load without console errors and show its key
// elements. Screenshots go to docs/screenshots when
// TIDEWATCH_UPDATE_SCREENSHOTS=1, else to a temp dir.
func TestDemoAndStatusUI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for about a minute")
	}
	chromium := testinfra.Need(t, "chromium", "chromium")["chromium"]

	dir := t.TempDir()
	addr := "127.0.0.1:" + strconv.Itoa(testinfra.FreePort(t))
	base := "http://" + addr
	demo := testinfra.Start(t, "tidewatch-demo", []string{twBin, "demo",
		"--web.listen-address", addr, "--data", filepath.Join(dir, "demo"),
		"--base-port", strconv.Itoa(testinfra.FreePort(t)),
		"--surge-at", "30s", "--surge-for", "60s", "--duration", "5m",
		"--dashboards-out", filepath.Join(dir, "dashboards")}, testinfra.WithDir(dir))
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := demo.WaitHTTP(ctx, base+"/-/ready", nil); err != nil {
		t.Fatalf("demo not ready: %v\n%s", err, demo.Tail(40))
	}
	start := time.Now()

	// The story: within the surge, HighLatency fires and the fleet scales
	// out well beyond what the wave alone needs (3 instances).
	var scaledOut, fired string
	poll(t, 100*time.Second, "a scale-out and a firing alert", func() error {
		if scaledOut == "" {
			var ds struct {
				Data []struct {
					Current, Desired int
					Action           string
				}
			}
			if err := getJSON(t, base+"/api/v1/autoscaler/decisions?policy=demo", &ds); err != nil {
				return err
			}
			for _, d := range ds.Data {
				if d.Action == "scale" && d.Desired >= 5 && d.Desired > d.Current {
					scaledOut = fmt.Sprintf("%d → %d after %s", d.Current, d.Desired, time.Since(start).Round(time.Second))
				}
			}
		}
		if fired == "" {
			var as struct {
				Data struct {
					Alerts []struct {
						Labels map[string]string
						State  string
					}
				}
			}
			if err := getJSON(t, base+"/api/v1/alerts", &as); err != nil {
				return err
			}
			for _, a := range as.Data.Alerts {
				if a.State == "firing" && a.Labels["alertname"] == "HighLatency" {
					fired = fmt.Sprintf("HighLatency after %s", time.Since(start).Round(time.Second))
				}
			}
		}
		if scaledOut == "" || fired == "" {
			return fmt.Errorf("scale-out %q, firing %q", scaledOut, fired)
		}
		return nil
	})
	t.Logf("scale-out %s; %s", scaledOut, fired)

	shots := t.TempDir()
	if os.Getenv("TIDEWATCH_UPDATE_SCREENSHOTS") == "1" {
		shots = filepath.Join("..", "..", "docs", "screenshots")
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pages := []struct {
		name, path string
		want       []string // substrings of the rendered DOM
	}{
		// Alerts first, while HighLatency still fires; the autoscaler last,
		// with the most history.
		{"alerts", "/alerts", []string{"HighLatency", "InstanceDown", `class="summary"`}},
		{"targets", "/targets", []string{"demo <span", "tidewatch <span", `class="health up"`, "/metrics"}},
		{"probes", "/probes", []string{"demo-health", "/healthz", `class="health up"`}},
		{"rules", "/rules", []string{"job:demo_request_latency_seconds:p90", "HighLatency", `class="health ok"`}},
		{"graph", "/graph?range=5m&expr=" + url.QueryEscape(`sum by (instance) (rate(demo_http_requests_total[20s]))`), []string{"<textarea", `<svg class="chart"`, "<polyline", `class="result"`, "instance="}},
		{"autoscaler", "/autoscaler", []string{`class="value current-replicas"`, `class="value desired-replicas"`, `<svg class="chart"`, "<polyline", `class="decisions"`, "scale up from"}},
	}
	for _, p := range pages {
		t.Run(p.name, func(t *testing.T) {
			dom, console := chromiumRun(t, chromium, "--dump-dom", base+p.path)
			for _, w := range p.want {
				if !strings.Contains(dom, w) {
					t.Errorf("%s: rendered DOM lacks %q", p.path, w)
				}
			}
			if errs := consoleErrors(console); len(errs) > 0 {
				t.Errorf("%s: console errors:\n%s", p.path, strings.Join(errs, "\n"))
			}
			out := filepath.Join(shots, p.name+".png")
			chromiumRun(t, chromium, "--screenshot="+out, "--window-size=1280,900", "--hide-scrollbars", base+p.path)
			if fi, err := os.Stat(out); err != nil || fi.Size() < 10_000 {
				t.Errorf("screenshot %s: %v (size %v)", out, err, fi)
			}
		})
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", demo.Tail(60))
	}
}

func getJSON(t *testing.T, url string, v any) error {
	status, body, err := apiGet(t.Context(), url, "", nil, nil)
	if err != nil {
		return err
	}
	if status != 200 {
		return fmt.Errorf("GET %s: %d %s", url, status, body)
	}
	return json.Unmarshal(body, v)
}

// chromiumRun runs headless Chromium once with the machine's flags and
// returns stdout and the log (stderr, with console messages).
func chromiumRun(t *testing.T, chromium string, args ...string) (stdout, log string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	all := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--enable-logging=stderr", "--v=0"}, args...)
	cmd := exec.CommandContext(ctx, chromium, all...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), errb.String()
}

// consoleLine matches Chromium's log lines for page console messages and
// uncaught exceptions, e.g. `INFO:CONSOLE(12)] "Uncaught ReferenceError…"`.
var consoleLine = regexp.MustCompile(`(?i)CONSOLE[(:]\d+|Uncaught|Failed to load resource|Refused to`)

func consoleErrors(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if consoleLine.MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}
