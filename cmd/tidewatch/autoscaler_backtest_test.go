package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/tidewatch/tidewatch/autoscaler"
	"github.com/tidewatch/tidewatch/store/embedded"
)

const backtestPolicy = `
autoscaling:
  backends:
    - {name: hook, type: webhook, url: "http://127.0.0.1:1/scale"}
  policies:
    - name: web
      target: {backend: hook, name: web}
      min: 1
      max: 20
      interval: 15s
      metrics:
        - {query: 'sum(web_load)', per_instance: 10}
      forecast: {method: holt_winters, window: 10m, horizon: 2m}
`

// TestBacktestStoredHistory writes two hours of a load with a step up and a
// step down into an embedded store, then backtests over it.
func TestBacktestStoredHistory(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := embedded.DefaultConfig
	cfg.Path = data
	db, err := embedded.Open(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-3 * time.Hour).Truncate(time.Minute) // the data ends an hour ago
	app := db.AppenderV2(context.Background())
	ls := labels.FromStrings("__name__", "web_load", "instance", "a")
	for i := range 2 * 60 * 4 {
		at := start.Add(time.Duration(i) * 15 * time.Second)
		v := 20.0
		if i >= 120 && i < 300 { // 30 min to 75 min: a peak of 95
			v = 95
		}
		if _, err := app.Append(0, ls, 0, at.UnixMilli(), v, nil, nil, storage.AppendV2Options{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "tidewatch.yml")
	content := fmt.Sprintf("storage:\n  type: embedded\n  embedded: {path: %q}\n%s", data, backtestPolicy)
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	from, to := start.Format(time.RFC3339), start.Add(2*time.Hour).Format(time.RFC3339)

	var out, errb bytes.Buffer
	if code := run([]string{"backtest", "--config", file, "--policy", "web", "--from", from, "--to", to, "--output", "json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var rep modelReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	// Two hours at 15 s steps held second by second; capacity defaults to
	// per_instance / 0.7.
	if rep.Seconds != 7200 || len(rep.Runs) != 3 || math.Abs(rep.Capacity-10/0.7) > 1e-9 {
		t.Fatalf("report: %+v", rep)
	}
	pol, hpa, static := rep.Runs[0], rep.Runs[1], rep.Runs[2]
	if pol.MaxReplicas < 10 || pol.ScaleUps == 0 || pol.ScaleDowns == 0 {
		t.Errorf("policy run: %+v", pol)
	}
	// The step to 95 overloads the HPA's 2 replicas (28.6 rps) until the
	// new ones are ready; the static 10 replicas never are.
	if hpa.MaxReplicas != 10 || hpa.OverloadedMinutes <= 0 || static.MinReplicas != 10 || static.ReplicaHours != 20 || static.OverloadedMinutes != 0 {
		t.Errorf("hpa %+v static %+v", hpa, static)
	}

	// Bounds outside the stored data are refused with the reason.
	if code := run([]string{"backtest", "--config", file, "--policy", "web", "--from", start.Add(-time.Hour).Format(time.RFC3339), "--to", to}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "before the stored data") {
		t.Errorf("--from before the data: exit %d: %s", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"backtest", "--config", file, "--policy", "web", "--from", from, "--to", time.Now().Format(time.RFC3339)}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "after the stored data") {
		t.Errorf("--to after the data: exit %d: %s", code, errb.String())
	}
	errb.Reset()
	// A --to in the future is refused with the reason.
	if code := run([]string{"backtest", "--config", file, "--policy", "web", "--from", from, "--to", time.Now().Add(time.Hour).Format(time.RFC3339)}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "in the future") {
		t.Errorf("--to in the future: exit %d: %s", code, errb.String())
	}

	out.Reset()
	if code := run([]string{"backtest", "--config", file, "--policy", "web", "--from", from, "--to", to}, &out, &errb); code != 0 {
		t.Fatalf("table: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"Backtest of policy web", "scale events", "replica-hours", "hpa_default", "static"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	t.Log("\n" + out.String())

	if code := run([]string{"backtest", "--config", file, "--policy", "nope"}, &out, &errb); code != 1 {
		t.Errorf("unknown policy: exit %d", code)
	}
}

// TestBacktestLoadTrace replays a day of the NASA trace through the model;
// --speedup, kept for old scripts, changes nothing.
func TestBacktestLoadTrace(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tidewatch.yml")
	if err := os.WriteFile(file, []byte(backtestPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	trace, _ := filepath.Abs("../../testdata/autoscaling/nasa-http-1995-first-2-days.csv")
	var reps [2]string
	for i, extra := range [][]string{nil, {"--speedup", "60"}} {
		var out, errb bytes.Buffer
		// ×60: requests per minute become as many rps, up to 12 replicas.
		args := append([]string{"backtest", "--config", file, "--policy", "web", "--load", trace, "--scale", "60", "--to", "24h", "--output", "json"}, extra...)
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		reps[i] = out.String()
	}
	if reps[0] != reps[1] {
		t.Errorf("--speedup changed the result:\n%s\n%s", reps[0], reps[1])
	}
	var rep modelReport
	if err := json.Unmarshal([]byte(reps[0]), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Seconds != 86400 || rep.Runs[0].ScaleEvents == 0 || len(rep.Runs[0].Days) != 1 {
		t.Errorf("report: %+v", rep)
	}
}

// TestBacktestModelReproducesReference: `tidewatch backtest --capacity`
// replays the public trace second by second through the reference model;
// its hpa_default run gives hpa_reference.py's four figures within 2 %
// (7 days, load ×100, 10 rps per replica, target 7, ready after 30 s).
func TestBacktestModelReproducesReference(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3 (to run the reference model): %v", err)
		}
		t.Skipf("python3 not found: %v", err)
	}
	trace, _ := filepath.Abs("../../testdata/traces/nasa-http-1995-per-minute.csv")
	ref, err := exec.Command(py, "../../testdata/reference/hpa_reference.py", trace, "--per-minute", "--scale", "100", "--days", "7").CombinedOutput()
	if err != nil {
		t.Fatalf("reference model: %v\n%s", err, ref)
	}
	m := regexp.MustCompile(`hpa-default\s+overloaded\s+([\d.]+) min\s+above-target\s+([\d.]+) min\s+replica-hours\s+([\d.]+)\s+scale events (\d+)`).FindSubmatch(ref)
	if m == nil {
		t.Fatalf("no hpa-default row in:\n%s", ref)
	}
	file := filepath.Join(t.TempDir(), "tidewatch.yml")
	if err := os.WriteFile(file, []byte(strings.Replace(strings.Replace(backtestPolicy, "per_instance: 10", "per_instance: 7", 1), "max: 20", "max: 100000", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := runCmd(t, twBin, "backtest", "--config", file, "--policy", "web", "--load", trace, "--capacity", "10", "--scale", "100",
		"--initial", "1", "--to", "168h", "--output", "json")
	if code != 0 {
		t.Fatalf("backtest: exit %d\n%s", code, out)
	}
	var rep struct {
		Runs []autoscaler.ModelRun `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rep.Runs) != 3 || rep.Runs[0].Name != "policy" || rep.Runs[1].Name != "hpa_default" || rep.Runs[2].Name != "static" {
		t.Fatalf("runs: %+v", rep.Runs)
	}
	hpa := rep.Runs[1]
	got := []float64{hpa.OverloadedMinutes, hpa.AboveTargetMinutes, hpa.ReplicaHours, float64(hpa.ScaleEvents)}
	for i, name := range []string{"overloaded minutes", "minutes above target", "replica-hours", "scale events"} {
		want, _ := strconv.ParseFloat(string(m[i+1]), 64)
		if d := (got[i] - want) / want; d > 0.02 || d < -0.02 {
			t.Errorf("hpa_default %s: %.1f, reference %.1f (%+.1f %%)", name, got[i], want, 100*d)
		}
	}
	t.Logf("policy %+v", rep.Runs[0])
	t.Logf("hpa_default overloaded %.1f min, above target %.1f min, %.1f replica-hours, %d scale events", got[0], got[1], got[2], hpa.ScaleEvents)

	// Bounds outside the trace are refused with the reason.
	if out, code := runCmd(t, twBin, "backtest", "--config", file, "--policy", "web", "--load", trace, "--capacity", "10", "--to", "100000h"); code != 1 || !strings.Contains(out, "outside the trace") {
		t.Errorf("--to past the trace: exit %d\n%s", code, out)
	}
}
