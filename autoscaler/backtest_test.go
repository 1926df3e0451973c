package autoscaler

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

func nasaPolicy() PolicyConfig {
	c := DefaultPolicyConfig
	c.Name = "web"
	c.Target = TargetConfig{Backend: "hook", Name: "web"}
	c.Min, c.Max = 1, 20
	c.Interval = model.Duration(15 * time.Second)
	c.Metrics = []MetricConfig{{Query: "sum(rate(http_requests_total[1m]))*60", PerInstance: 10}}
	c.Forecast = &ForecastConfig{Method: ForecastHoltWinters, Window: model.Duration(30 * time.Minute), Horizon: model.Duration(5 * time.Minute), Smoothing: 0.3, Trend: 0.3}
	return c
}

// TestBacktestNASA replays two days of the NASA-HTTP 1995 trace (requests
// per minute) through the policy, the HPA defaults and a static baseline.
func TestBacktestNASA(t *testing.T) {
	f, err := os.Open("../testdata/autoscaling/nasa-http-1995-first-2-days.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := time.Date(1995, 7, 1, 0, 0, 0, 0, time.UTC)
	pts, err := ReadLoadCSV(f, start, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 2880 || !pts[1].T.Equal(start.Add(time.Minute)) {
		t.Fatalf("read %d points, second at %v", len(pts), pts[1].T)
	}
	bt := Backtest{Policy: nasaPolicy(), Metrics: [][]Point{pts}, From: start, To: start.Add(48 * time.Hour)}
	rep, err := bt.Run()
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	rep.Table(&sb)
	t.Log("\n" + sb.String())
	if rep.Evaluations != 48*60*4 || rep.PeakLoad != 112 {
		t.Errorf("evaluations %d, peak %v", rep.Evaluations, rep.PeakLoad)
	}
	if len(rep.Runs) != 3 {
		t.Fatalf("%d runs", len(rep.Runs))
	}
	pol, hpa, static := rep.Runs[0], rep.Runs[1], rep.Runs[2]
	for _, r := range rep.Runs[:2] {
		if r.MinReplicas < 1 || r.MaxReplicas > 20 || r.ScaleEvents == 0 || r.ScaleEvents != r.ScaleUps+r.ScaleDowns {
			t.Errorf("%s: %+v", r.Name, r)
		}
	}
	if static.ScaleEvents != 0 || static.MinReplicas != 12 || static.MinutesUnderProvisioned != 0 || static.ReplicaHours != 12*48 {
		t.Errorf("static: %+v", static)
	}
	if pol.ReplicaHours >= static.ReplicaHours || hpa.ReplicaHours >= static.ReplicaHours {
		t.Errorf("autoscaling costs more than the static peak capacity: %v %v vs %v", pol.ReplicaHours, hpa.ReplicaHours, static.ReplicaHours)
	}
	// Deterministic: the same input gives the same report.
	again, _ := bt.Run()
	a, _ := json.Marshal(rep)
	b, _ := json.Marshal(again)
	if string(a) != string(b) {
		t.Error("two runs differ")
	}
}

func TestReadLoadCSVSpeedup(t *testing.T) {
	start := time.Unix(1000, 0)
	pts, err := ReadLoadCSV(strings.NewReader("minute,requests\n0,1\n1,2\n2,3\n"), start, 60)
	if err != nil {
		t.Fatal(err)
	}
	if !pts[2].T.Equal(start.Add(2*time.Second)) || pts[2].V != 3 {
		t.Errorf("point 2 = %+v, want 2 s after start with speedup 60", pts[2])
	}
	for _, bad := range []string{"minute\n0\n", "minute,v\nx,1\n", "minute,v\n0,y\n", "minute,v\n"} {
		if _, err := ReadLoadCSV(strings.NewReader(bad), start, 1); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
