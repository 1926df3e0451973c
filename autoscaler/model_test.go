package autoscaler_test

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v2"

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

// capacityPolicy is the policy a user gets by writing min, max, a
// per_instance metric and capacity_per_instance, every other key at its
// default (read through YAML, as from a configuration file).
func capacityPolicy(t testing.TB, perInstance, capacity float64) autoscaler.PolicyConfig {
	t.Helper()
	var pc autoscaler.PolicyConfig
	doc := fmt.Sprintf(`{name: web, target: {backend: b, name: web}, min: 1, max: 100000,
  metrics: [{query: 'sum(rate(http_requests_total[1m]))', per_instance: %g}], capacity_per_instance: %g}`, perInstance, capacity)
	if err := yaml.UnmarshalStrict([]byte(doc), &pc); err != nil {
		t.Fatal(err)
	}
	return pc
}

// TestDefaultPolicyBeatsHPA: on the public trace (7 days, ×100, 10 rps per
// replica, target 7, ready after 30 s) the default capacity-sized policy
// has at most half the HPA's overloaded minutes, no more replica-hours and
// at most half its scale events, in the model that reproduces the
// reference (TestModelReproducesReference).
func TestDefaultPolicyBeatsHPA(t *testing.T) {
	t.Parallel()
	pc := capacityPolicy(t, 7, 10)
	if got := time.Duration(pc.Behavior.ScaleDown.Stabilization); got != autoscaler.DefaultCapacityScaleDownStabilization {
		t.Fatalf("scale-down stabilization %s, want the capacity default %s", got, autoscaler.DefaultCapacityScaleDownStabilization)
	}
	load := autoscaler.PerSecond(readPerMinute(t, publicTrace, 7), 100)
	m := autoscaler.DefaultModel
	m.Capacity = 10
	runs, err := autoscaler.ModelBacktest(pc, load, time.Unix(0, 0), 1, 0, m)
	if err != nil {
		t.Fatal(err)
	}
	pol, hpa := runs[0], runs[1]
	t.Logf("policy: overloaded %.1f min, %.1f replica-hours, %d scale events", pol.OverloadedMinutes, pol.ReplicaHours, pol.ScaleEvents)
	t.Logf("hpa:    overloaded %.1f min, %.1f replica-hours, %d scale events", hpa.OverloadedMinutes, hpa.ReplicaHours, hpa.ScaleEvents)
	if pol.OverloadedMinutes > hpa.OverloadedMinutes/2 {
		t.Errorf("overloaded %.1f min, more than half the HPA's %.1f", pol.OverloadedMinutes, hpa.OverloadedMinutes)
	}
	if pol.ReplicaHours > hpa.ReplicaHours {
		t.Errorf("%.1f replica-hours, more than the HPA's %.1f", pol.ReplicaHours, hpa.ReplicaHours)
	}
	if 2*pol.ScaleEvents > hpa.ScaleEvents {
		t.Errorf("%d scale events, more than half the HPA's %d", pol.ScaleEvents, hpa.ScaleEvents)
	}
	// Every decision names its terms.
	var sized bool
	for _, e := range pol.Timeline {
		sized = sized || (strings.Contains(e.Reason, "capacity 10 per instance") && strings.Contains(e.Reason, "headroom"))
	}
	if !sized {
		t.Error("no scale event explains the capacity sizing and its headroom")
	}
}

// randomLoad is a random walk with surges (3–5× within a second) and quiet
// spells, per second.
func randomLoad(r *rand.Rand, seconds int) []float64 {
	load := make([]float64, seconds)
	level := 10 + 90*r.Float64()
	for s := range load {
		switch x := r.Float64(); {
		case x < 0.0005:
			level *= 3 + 2*r.Float64()
		case x < 0.001:
			level /= 3
		default:
			level = math.Max(0, level*(1+0.01*r.NormFloat64()))
		}
		load[s] = level * (1 + 0.1*r.NormFloat64())
		load[s] = math.Max(load[s], 0)
	}
	return load
}

// TestModelProperties: over random loads and policies (capacity sizing or
// not, forecasts, limits), replicas never leave [min, max], and no replica
// serves before its readiness delay: every replica ready at t existed at
// t − startup, so ready(t) ≤ replicas(t − startup).
func TestModelProperties(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(11, 7))
	for i := range 40 {
		per := 5 + 10*r.Float64()
		pc := capacityPolicy(t, per, per/(0.5+0.45*r.Float64()))
		if i%2 == 1 {
			pc = autoscaler.HPADefaults(pc)
		}
		if i%3 == 0 {
			pc.Forecast = &autoscaler.ForecastConfig{Method: autoscaler.ForecastLinear, Window: model.Duration(10 * time.Minute), Horizon: model.Duration(2 * time.Minute)}
		}
		pc.Min = 1 + r.IntN(3)
		pc.Max = pc.Min + r.IntN(30)
		startup := time.Duration(r.IntN(120)) * time.Second
		var replicas []int
		m := autoscaler.Model{Capacity: pc.Metrics[0].PerInstance / 0.7, Startup: startup, MetricWindow: time.Minute, ScrapeInterval: 15 * time.Second}
		m.Observe = func(s, ready, n int) {
			replicas = append(replicas, n)
			if n < pc.Min || n > pc.Max {
				t.Fatalf("case %d second %d: %d replicas outside [%d, %d]", i, s, n, pc.Min, pc.Max)
			}
			back := s - int(startup/time.Second)
			if ready > n || (back >= 0 && ready > replicas[back]) {
				t.Fatalf("case %d second %d: %d ready of %d, %d at t−%s", i, s, ready, n, replicas[max(back, 0)], startup)
			}
		}
		if _, err := autoscaler.SimulateLoad(pc, randomLoad(r, 6*3600), time.Unix(0, 0), pc.Min, m); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNoScaleDownOnMissingMetric: whatever the state and the policy, an
// evaluation whose metrics cannot be read never recommends fewer replicas
// than the current count (within the limits).
func TestNoScaleDownOnMissingMetric(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 5))
	for i := range 200 {
		pc := capacityPolicy(t, 7, 10)
		if i%2 == 1 {
			pc = autoscaler.HPADefaults(pc)
		}
		pc.Max = 5 + r.IntN(50)
		if i%4 == 0 {
			pc.OnMetricError = autoscaler.OnMetricError{Fallback: 1 + r.IntN(pc.Max)}
		}
		p, err := autoscaler.NewPolicy(pc)
		if err != nil {
			t.Fatal(err)
		}
		var st autoscaler.State
		now, cur := time.Unix(0, 0), 1+r.IntN(pc.Max)
		for k := range 100 {
			now = now.Add(15 * time.Second)
			in := autoscaler.Input{Now: now, Current: cur, Metrics: []autoscaler.Observation{{Value: 100 * r.Float64()}}}
			missing := r.IntN(3) == 0
			if missing {
				in.Metrics[0] = autoscaler.Observation{Err: autoscaler.ErrEmpty}
			}
			ev := p.Decide(&st, in)
			if missing && ev.Desired < min(cur, pc.Max) {
				t.Fatalf("case %d step %d: metric missing, scaled down from %d to %d: %s", i, k, cur, ev.Desired, ev.Reason())
			}
			if ev.Desired != cur {
				st.RecordScale(now, cur, ev.Desired)
				cur = ev.Desired
			}
		}
	}
}

// BenchmarkSimulateLoad7DaysCapacity is one candidate of `tidewatch tune`:
// the default capacity-sized policy over 7 days of per-second load.
func BenchmarkSimulateLoad7DaysCapacity(b *testing.B) {
	load := autoscaler.PerSecond(readPerMinute(b, publicTrace, 7), 100)
	pc := capacityPolicy(b, 7, 10)
	m := autoscaler.DefaultModel
	m.Capacity = 10
	b.ReportAllocs()
	for b.Loop() {
		if _, err := autoscaler.SimulateLoad(pc, load, time.Unix(0, 0), 1, m); err != nil {
			b.Fatal(err)
		}
	}
}
