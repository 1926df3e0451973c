package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidewatch/tidewatch/autoscaler/tune"
)

const tunePolicy = `
autoscaling:
  backends:
    - {name: hook, type: webhook, url: "http://127.0.0.1:1/scale"}
  policies:
    - name: web
      target: {backend: hook, name: web}
      min: 1
      max: 100000
      metrics:
        - {query: 'sum(rate(http_requests_total[1m]))', per_instance: 7}
      capacity_per_instance: 10
`

// TestTuneThroughBinary tunes the capacity policy over two days of the
// public trace (×100) through the binary: the JSON holds the HPA defaults,
// the configured policy, a Pareto front and a recommendation within the
// objective, whose YAML snippet, pasted into the policy, is a valid
// configuration; the table names the front.
func TestTuneThroughBinary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "tidewatch.yml")
	if err := os.WriteFile(file, []byte(tunePolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	trace, _ := filepath.Abs("../../testdata/traces/nasa-http-1995-per-minute.csv")
	args := []string{"tune", "--config", file, "--policy", "web", "--load", trace, "--scale", "100", "--to", "48h", "--candidates", "100", "--budget", "50s"}
	out, code := runCmd(t, twBin, append(args, "--output", "json")...)
	if code != 0 {
		t.Fatalf("tune: exit %d\n%s", code, out)
	}
	var res tune.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("evaluated %d in %s; HPA %.1f/%.1f/%d, recommended %.1f/%.1f/%d", res.Evaluated, res.Elapsed,
		res.HPA.OverloadedMinutes, res.HPA.ReplicaHours, res.HPA.ScaleEvents, res.Recommended.OverloadedMinutes, res.Recommended.ReplicaHours, res.Recommended.ScaleEvents)
	if res.Evaluated != 100 || res.Seconds != 48*3600 || res.HPA.ScaleEvents == 0 || len(res.Front) == 0 {
		t.Fatalf("result: %+v", res)
	}
	if res.MaxOverloadedMinutes != res.HPA.OverloadedMinutes/2 || !res.Feasible || res.Recommended.OverloadedMinutes > res.MaxOverloadedMinutes {
		t.Errorf("recommended %+v against the bound %.1f (feasible %v)", res.Recommended, res.MaxOverloadedMinutes, res.Feasible)
	}
	if res.Recommended.ReplicaHours > res.HPA.ReplicaHours {
		t.Errorf("recommended costs %.1f replica-hours, the HPA %.1f", res.Recommended.ReplicaHours, res.HPA.ReplicaHours)
	}

	// The snippet is the policy's own keys: pasted in, the file checks.
	var indented strings.Builder
	for line := range strings.Lines(res.YAML) {
		indented.WriteString("      " + line)
	}
	tuned := strings.Replace(tunePolicy, "      capacity_per_instance: 10\n", indented.String(), 1)
	tunedFile := filepath.Join(dir, "tuned.yml")
	if err := os.WriteFile(tunedFile, []byte(tuned), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := runCmd(t, twBin, "check", "config", tunedFile); code != 0 {
		t.Fatalf("the tuned configuration does not check: exit %d\n%s\n%s", code, out, tuned)
	}
	// Replayed on its own, the tuned policy gives the recommended figures.
	out, code = runCmd(t, twBin, "backtest", "--config", tunedFile, "--policy", "web", "--load", trace, "--scale", "100", "--to", "48h", "--output", "json")
	if code != 0 {
		t.Fatalf("backtest of the tuned policy: exit %d\n%s", code, out)
	}
	var rep modelReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if p := rep.Runs[0]; p.ReplicaHours != res.Recommended.ReplicaHours || p.OverloadedMinutes != res.Recommended.OverloadedMinutes || p.ScaleEvents != res.Recommended.ScaleEvents {
		t.Errorf("the tuned policy replays to %.3f/%.3f/%d, the tuner said %.3f/%.3f/%d", p.OverloadedMinutes, p.ReplicaHours, p.ScaleEvents,
			res.Recommended.OverloadedMinutes, res.Recommended.ReplicaHours, res.Recommended.ScaleEvents)
	}

	out, code = runCmd(t, twBin, args...)
	if code != 0 || !strings.Contains(out, "Pareto front") || !strings.Contains(out, "hpa_default") || !strings.Contains(out, "behavior:") {
		t.Errorf("table: exit %d\n%s", code, out)
	}
	if out, code := runCmd(t, twBin, "tune", "--config", file, "--policy", "web", "--load", trace, "--budget", "1ms"); code != 1 || !strings.Contains(out, "budget") {
		t.Errorf("tiny budget: exit %d\n%s", code, out)
	}
}
