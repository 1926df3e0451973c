package autoscaler_test

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/tidewatch/tidewatch/autoscaler"
)

// The public trace and the reference model, copied from ../shared so that a
// clean clone has them.
const (
	publicTrace    = "../testdata/traces/nasa-http-1995-per-minute.csv"
	referenceModel = "../testdata/reference/hpa_reference.py"
)

func readPerMinute(t testing.TB, path string, days float64) []float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []float64
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() && float64(len(out)) < days*1440 {
		_, v, ok := strings.Cut(sc.Text(), ",")
		if !ok {
			t.Fatalf("bad row %q", sc.Text())
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, x)
	}
	return out
}

// referenceFigures runs hpa_reference.py and returns the hpa-default row's
// four figures.
func referenceFigures(t *testing.T, args ...string) [4]float64 {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3 (to run the reference model): %v", err)
		}
		t.Skipf("python3 not found: %v", err)
	}
	out, err := exec.Command(py, append([]string{referenceModel}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("reference model: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`hpa-default\s+overloaded\s+([\d.]+) min\s+above-target\s+([\d.]+) min\s+replica-hours\s+([\d.]+)\s+scale events (\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no hpa-default row in:\n%s", out)
	}
	var f [4]float64
	for i := range f {
		f[i], _ = strconv.ParseFloat(string(m[i+1]), 64)
	}
	return f
}

// TestModelReproducesReference: the model, replaying the HPA defaults of a
// plain policy (min 1, 7 rps per replica) through the live decision engine,
// gives the reference model's four figures within 2 % on the public trace
// (7 days, load ×100, 10 rps per replica, ready after 30 s).
func TestModelReproducesReference(t *testing.T) {
	t.Parallel()
	want := referenceFigures(t, publicTrace, "--per-minute", "--scale", "100", "--days", "7")
	load := autoscaler.PerSecond(readPerMinute(t, publicTrace, 7), 100)
	p := autoscaler.DefaultPolicyConfig
	p.Name = "web"
	p.Target = autoscaler.TargetConfig{Backend: "b", Name: "web"}
	p.Min, p.Max = 1, 100_000
	p.Interval = model.Duration(15 * time.Second)
	p.Metrics = []autoscaler.MetricConfig{{Query: "sum(rate(requests_total[1m]))", PerInstance: 7}}
	m := autoscaler.DefaultModel
	m.Capacity = 10
	got, err := autoscaler.SimulateLoad(autoscaler.HPADefaults(p), load, time.Unix(0, 0), 1, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reference: overloaded %.1f min, above target %.1f min, %.1f replica-hours, %v scale events", want[0], want[1], want[2], want[3])
	t.Logf("model:     overloaded %.1f min, above target %.1f min, %.1f replica-hours, %d scale events", got.OverloadedMinutes, got.AboveTargetMinutes, got.ReplicaHours, got.ScaleEvents)
	for i, g := range []float64{got.OverloadedMinutes, got.AboveTargetMinutes, got.ReplicaHours, float64(got.ScaleEvents)} {
		name := []string{"overloaded minutes", "minutes above target", "replica-hours", "scale events"}[i]
		if d := (g - want[i]) / want[i]; d > 0.02 || d < -0.02 {
			t.Errorf("%s: %.1f, reference %.1f (%+.1f %%, want within 2 %%)", name, g, want[i], 100*d)
		}
	}
}

// BenchmarkSimulateLoad22Days: one HPA-default replay of 22 days of
// per-second load (1.9 M seconds) of the public trace.
func BenchmarkSimulateLoad22Days(b *testing.B) {
	perMinute := readPerMinute(b, publicTrace, 22)
	load := autoscaler.PerSecond(perMinute, 100)
	p := autoscaler.DefaultPolicyConfig
	p.Name = "web"
	p.Target = autoscaler.TargetConfig{Backend: "b", Name: "web"}
	p.Min, p.Max = 1, 100_000
	p.Metrics = []autoscaler.MetricConfig{{Query: "load", PerInstance: 7}}
	m := autoscaler.DefaultModel
	m.Capacity = 10
	hpa := autoscaler.HPADefaults(p)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := autoscaler.SimulateLoad(hpa, load, time.Unix(0, 0), 1, m); err != nil {
			b.Fatal(err)
		}
	}
}
