package autoscaler_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidewatch/tidewatch/autoscaler"
	"github.com/tidewatch/tidewatch/collector"
	"github.com/tidewatch/tidewatch/config"
	"github.com/tidewatch/tidewatch/store"
)

// demoInstance serves /metrics with demo_offered_load, the total load
// offered to the fleet, read from a file at every scrape.
const demoInstance = `
import http.server, sys
port, path = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            v = float(open(path).read().strip() or 0)
        except Exception:
            v = 0
        body = ("# TYPE demo_offered_load gauge\ndemo_offered_load %g\n" % v).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
`

// TestEndToEndProcessScaling: real instances of a command run under the
// process backend, the collector scrapes them through the backend's file_sd
// file into a real embedded store, and the autoscaler scales the fleet out
// when their load rises and back in after it falls.
// fleet is a running process-backend fleet, scraped and autoscaled.
type fleet struct {
	m       *autoscaler.Manager
	setLoad func(float64)
}

func startFleet(t *testing.T, scrape, interval string) fleet {
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 not found")
		}
		t.Skip("python3 not found")
	}
	dir := t.TempDir()
	loadFile := filepath.Join(dir, "load")
	setLoad := func(v float64) {
		t.Helper()
		if err := os.WriteFile(loadFile+".tmp", []byte(strconv.FormatFloat(v, 'g', -1, 64)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(loadFile+".tmp", loadFile); err != nil {
			t.Fatal(err)
		}
	}
	setLoad(5)
	script := filepath.Join(dir, "instance.py")
	if err := os.WriteFile(script, []byte(demoInstance), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "tidewatch.yml")
	content := fmt.Sprintf(`
global: {scrape_interval: %s, scrape_timeout: 900ms}
scrape_configs:
  - job_name: demo
    file_sd_configs: [{files: [targets/demo.json], refresh_interval: 1s}]
autoscaling:
  backends:
    - name: local
      type: process
      command: [%q, %q, "{{.Port}}", %q]
      sd_file: targets/demo.json
      stop_timeout: 5s
  policies:
    - name: demo
      target: {backend: local, name: demo}
      min: 1
      max: 5
      interval: %s
      metrics: [{query: 'max(demo_offered_load)', per_instance: 10}]
      behavior:
        scale_down: {stabilization: 3s}
`, scrape, py, script, loadFile, interval)
	if err := os.WriteFile(cfgFile, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	cfg, err := config.Load(cfgFile, logger)
	if err != nil {
		t.Fatal(err)
	}

	e := newEnv(t)
	col, err := collector.New(collector.Options{Logger: logger, Registerer: prometheus.NewRegistry(), Metrics: e.set,
		Appendable: store.Instrument(e.db, store.NewAppendMetrics(e.set, "scrape"))})
	if err != nil {
		t.Fatal(err)
	}
	if err := col.ApplyConfig(cfg.Prom); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	colDone := make(chan error, 1)
	go func() { colDone <- col.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-colDone
	})
	m := e.manager(t)
	if err := m.ApplyConfig(cfg.Autoscaling); err != nil {
		t.Fatal(err)
	}
	run(t, m)
	return fleet{m: m, setLoad: setLoad}
}

func TestEndToEndProcessScaling(t *testing.T) {
	f := startFleet(t, "1s", "1s")
	m, setLoad := f.m, f.setLoad
	be, _ := m.Backend("local")
	replicas := func() int {
		n, _ := be.Current(context.Background(), autoscalerTarget("demo"))
		return n
	}
	lastDesired := func() int {
		ds := m.Decisions("demo", 1)
		if len(ds) == 0 {
			return -1
		}
		return ds[0].Desired
	}
	// Steady at low load: one instance, scraped, deciding 1.
	waitUntil(t, "one instance at low load", func() bool {
		ds := m.Decisions("demo", 1)
		return replicas() == 1 && len(ds) == 1 && len(ds[0].Metrics) == 1 && ds[0].Metrics[0].Value != nil && *ds[0].Metrics[0].Value == 5
	})
	setLoad(40)
	waitUntil(t, "scale out to 4", func() bool { return replicas() == 4 && lastDesired() == 4 })
	setLoad(5)
	waitUntil(t, "scale back in to 1", func() bool { return replicas() == 1 && lastDesired() == 1 })
	var ups, downs int
	for _, d := range m.Decisions("demo", 0) {
		if d.Action == autoscaler.ActionScale {
			if d.Desired > d.Current {
				ups++
			} else {
				downs++
			}
		}
	}
	if ups < 2 || downs < 1 {
		t.Errorf("%d scale-ups and %d scale-downs, want ≥ 2 (to 1, to 4) and ≥ 1", ups, downs)
	}
	t.Logf("%d evaluations, %d scale-ups, %d scale-downs", len(m.Decisions("demo", 0)), ups, downs)
}

// TestReactionTime measures the time from a step in load to the scale
// command with a 5 s scrape and evaluation interval (docs/BENCHMARKS.md).
// It takes about a minute, so it runs only with TIDEWATCH_REACTION=1.
func TestReactionTime(t *testing.T) {
	if os.Getenv("TIDEWATCH_REACTION") == "" {
		t.Skip("set TIDEWATCH_REACTION=1 to measure the reaction time")
	}
	f := startFleet(t, "5s", "5s")
	waitUntil(t, "one instance", func() bool {
		ds := f.m.Decisions("demo", 1)
		return len(ds) == 1 && ds[0].Desired == 1 && ds[0].Action == autoscaler.ActionNone
	})
	var worst, sum time.Duration
	const runs = 8
	for i := range runs {
		// Step up at a random phase of the scrape and evaluation cycles,
		// measure, step down and wait for the fleet to settle.
		time.Sleep(time.Duration(rand.Int64N(int64(5 * time.Second))))
		step := time.Now()
		f.setLoad(40)
		var reaction time.Duration
		waitUntil(t, "scale out", func() bool {
			for _, d := range f.m.Decisions("demo", 3) {
				if d.Action == autoscaler.ActionScale && d.Desired == 4 && d.Result != nil && d.Result.Started.After(step) {
					reaction = d.Result.Started.Sub(step)
					return true
				}
			}
			return false
		})
		t.Logf("run %d: step to scale command %.2f s", i, reaction.Seconds())
		worst, sum = max(worst, reaction), sum+reaction
		f.setLoad(5)
		waitUntil(t, "scale in", func() bool {
			ds := f.m.Decisions("demo", 1)
			return len(ds) == 1 && ds[0].Current == 1 && ds[0].Action == autoscaler.ActionNone
		})
	}
	t.Logf("reaction over %d runs: mean %.2f s, worst %.2f s (target: 5 s scrape + 5 s evaluation + 1 s = 11 s)", runs, (sum / runs).Seconds(), worst.Seconds())
}
