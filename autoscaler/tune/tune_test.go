package tune

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v2"

	"github.com/tidewatch/tidewatch/autoscaler"
)

func policy() autoscaler.PolicyConfig {
	c := autoscaler.DefaultPolicyConfig
	c.Name = "web"
	c.Target = autoscaler.TargetConfig{Backend: "b", Name: "web"}
	c.Min, c.Max = 1, 1000
	c.Metrics = []autoscaler.MetricConfig{{Query: "sum(rate(http_requests_total[1m]))", PerInstance: 7}}
	return c
}

// squareWave is a day of 5 minutes at 100 rps and 5 at 300, repeated.
func squareWave() []float64 {
	load := make([]float64, 86400)
	for s := range load {
		load[s] = 100
		if (s/300)%2 == 1 {
			load[s] = 300
		}
	}
	return load
}

// TestTuneFindsKnownOptimum: on a load that surges from 100 to 300 rps
// every 10 minutes for 5, with capacity 10 per replica and at most 5
// overloaded minutes a day, the optimum is to hold 30 replicas through the
// troughs: any policy that scales down between surges is overloaded for
// its readiness delay at each of the 144 surges (over an hour). The
// search must find a policy whose scale-down stabilization outlasts the
// trough, with a few scale events and the replica-hours of 30 replicas.
func TestTuneFindsKnownOptimum(t *testing.T) {
	t.Parallel()
	o := Options{
		Policy: policy(), Load: squareWave(), Start: time.Unix(0, 0),
		Model:                autoscaler.Model{Capacity: 10, Startup: 30 * time.Second, MetricWindow: time.Minute, ScrapeInterval: 15 * time.Second},
		MaxOverloadedMinutes: 5, Candidates: 150, Budget: 10 * time.Minute, Seed: 1,
	}
	res, err := Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	r := res.Recommended
	t.Logf("evaluated %d in %s; HPA %.1f min / %.1f RH / %d; recommended %.1f min / %.1f RH / %d: %+v\n%s",
		res.Evaluated, res.Elapsed, res.HPA.OverloadedMinutes, res.HPA.ReplicaHours, res.HPA.ScaleEvents, r.OverloadedMinutes, r.ReplicaHours, r.ScaleEvents, r.Params, res.YAML)
	if res.HPA.OverloadedMinutes < 60 {
		t.Fatalf("the HPA is overloaded %.1f min: the trace does not make the point", res.HPA.OverloadedMinutes)
	}
	if !res.Feasible || r.OverloadedMinutes > 5 {
		t.Errorf("recommended is overloaded %.1f min (feasible %v)", r.OverloadedMinutes, res.Feasible)
	}
	if time.Duration(r.Params.DownStabilization) < 5*time.Minute || r.ScaleEvents > 6 {
		t.Errorf("recommended scale-down stabilization %s with %d events; want one outlasting the 5 min trough, and few events", r.Params.DownStabilization, r.ScaleEvents)
	}
	// 30 replicas all day, less the first trough's 10–15 (it starts from one).
	if r.ReplicaHours < 30*24-20 || r.ReplicaHours > 31*24 {
		t.Errorf("recommended %.1f replica-hours, want those of 30 replicas (700–744)", r.ReplicaHours)
	}
	// The front is Pareto: no member dominates another.
	for _, a := range res.Front {
		for _, b := range res.Front {
			if dominates(a, b) {
				t.Errorf("front member %+v dominates %+v", a, b)
			}
		}
	}
	// The snippet is a policy's YAML that decodes back into the same keys.
	var back autoscaler.PolicyConfig
	if err := yaml.UnmarshalStrict([]byte(res.YAML), &back); err != nil {
		t.Fatalf("snippet does not decode: %v\n%s", err, res.YAML)
	}
	if back.Behavior.ScaleDown.Stabilization != r.Params.DownStabilization || back.Tolerance != r.Params.Tolerance {
		t.Errorf("snippet decodes to %+v, want the recommended params %+v", back.Behavior, r.Params)
	}

	// Deterministic: the same seed and candidate count give the same result.
	again, err := Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(res.Front)
	b, _ := json.Marshal(again.Front)
	if string(a) != string(b) || again.YAML != res.YAML {
		t.Error("two searches with the same seed differ")
	}
}

// TestTuneBudget: a budget too short for a round is an error that says so.
func TestTuneBudget(t *testing.T) {
	o := Options{Policy: policy(), Load: squareWave(), Model: autoscaler.Model{Capacity: 10, Startup: 30 * time.Second, MetricWindow: time.Minute, ScrapeInterval: 15 * time.Second},
		Budget: time.Millisecond}
	if _, err := Run(t.Context(), o); err == nil || !strings.Contains(err.Error(), "budget") {
		t.Errorf("err = %v", err)
	}
}

func TestApplyParams(t *testing.T) {
	p := Params{CapacitySizing: true, Deviations: 1.5, HeadroomWindow: model.Duration(time.Hour), Forecast: autoscaler.ForecastLinear,
		ForecastWindow: model.Duration(10 * time.Minute), ForecastHorizon: model.Duration(2 * time.Minute), Tolerance: 0.05,
		DownStabilization: model.Duration(15 * time.Minute), UpPercent: 200, UpPods: 8, DownPercent: 25}
	c := apply(policy(), p, 10)
	if c.CapacityPerInstance != 10 || c.Headroom.Deviations != 1.5 || c.Forecast.Method != autoscaler.ForecastLinear || len(c.Behavior.ScaleUp.Policies) != 2 {
		t.Fatalf("applied: %+v", c)
	}
	if got := paramsOf(c); got != p {
		t.Errorf("paramsOf(apply(p)) = %+v, want %+v", got, p)
	}
	if err := (&autoscaler.Config{Backends: []autoscaler.BackendConfig{}, Policies: nil}).Validate(); err != nil {
		t.Fatal(err)
	}
}
