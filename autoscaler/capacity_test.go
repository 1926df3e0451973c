package autoscaler

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestFastQuery(t *testing.T) {
	pc := PolicyConfig{CapacityPerInstance: 10, Metrics: []MetricConfig{{Query: `sum(rate(http_requests_total{job="api"}[1m])) * 2`, PerInstance: 7}}}
	if got, want := pc.FastQuery(), `sum(irate(http_requests_total{job="api"}[1m])) * 2`; got != want {
		t.Errorf("derived %q, want %q", got, want)
	}
	pc.ScaleUpQuery = "sum(x)"
	if got := pc.FastQuery(); got != "sum(x)" {
		t.Errorf("explicit: %q", got)
	}
	pc.ScaleUpQuery = ScaleUpQueryOff
	if got := pc.FastQuery(); got != "" {
		t.Errorf("none: %q", got)
	}
	pc.ScaleUpQuery = ""
	pc.Metrics[0].Query = "sum(queue_depth)"
	if got := pc.FastQuery(); got != "" {
		t.Errorf("no rate(): %q", got)
	}
	pc.CapacityPerInstance = 0
	pc.Metrics[0].Query = "sum(rate(x[1m]))"
	if got := pc.FastQuery(); got != "" {
		t.Errorf("no capacity sizing: %q", got)
	}
}

func TestVolatility(t *testing.T) {
	t0 := time.Unix(0, 0)
	var pts []Point
	// Rises over 4 steps alternate +4 and −4 around a level: σ of the
	// 4-step rise of a period-8 square wave of amplitude 2.
	for i := range 400 {
		v := 100.0
		if (i/4)%2 == 1 {
			v = 104
		}
		pts = append(pts, Point{T: t0.Add(time.Duration(i) * 15 * time.Second), V: v})
	}
	sigma, ok := Volatility(pts, time.Minute)
	if !ok || math.Abs(sigma-4) > 0.02 {
		t.Errorf("σ = %v (%v), want ≈ 4", sigma, ok)
	}
	flat := []Point{{t0, 5}, {t0.Add(15 * time.Second), 5}, {t0.Add(30 * time.Second), 5}, {t0.Add(45 * time.Second), 5}, {t0.Add(60 * time.Second), 5}}
	if sigma, ok := Volatility(flat, 15*time.Second); !ok || sigma != 0 {
		t.Errorf("flat: σ = %v (%v)", sigma, ok)
	}
	if _, ok := Volatility(flat[:3], 15*time.Second); ok {
		t.Error("two rises: want not enough")
	}
}

// TestCapacityRecommend: the count is the larger of the value and the
// per-scrape value plus the headroom, over the capacity; a lower count
// within tolerance keeps the current one, and the note names each term.
func TestCapacityRecommend(t *testing.T) {
	pc := DefaultPolicyConfig
	pc.Max, pc.CapacityPerInstance = 100, 10
	pc.Metrics = []MetricConfig{{Query: "sum(rate(x[1m]))", PerInstance: 7}}
	p, err := NewPolicy(pc)
	if err != nil {
		t.Fatal(err)
	}
	n, note := p.capacityRecommend(Observation{Value: 100, Fast: 150, HasFast: true, Volatility: 20, HasVolatility: true}, 10)
	if n != 17 || !strings.Contains(note, "per-scrape value 150") || !strings.Contains(note, "headroom 20") || !strings.Contains(note, "capacity 10") {
		t.Errorf("surge: %d, %q", n, note)
	}
	if n, _ := p.capacityRecommend(Observation{Value: 95}, 10); n != 10 {
		t.Errorf("within tolerance: %d, want 10", n)
	}
	if n, _ := p.capacityRecommend(Observation{Value: 50}, 10); n != 5 {
		t.Errorf("scale-down: %d, want 5", n)
	}
}
