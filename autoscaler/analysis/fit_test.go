package analysis

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/autoscaler"
)

// queue samples latency = base/(1 − load/capacity) × jitter for loads
// spread over [lo, hi].
func queue(n int, base, capacity, lo, hi, jitter float64, seed uint64) []Sample {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]Sample, n)
	for i := range out {
		x := lo + (hi-lo)*r.Float64()
		out[i] = Sample{Load: x, Latency: base / (1 - x/capacity) * (1 - jitter + 2*jitter*r.Float64())}
	}
	return out
}

func TestFitRecoversKnownCurve(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		base, capacity, lo, hi float64
		jitter                 float64
		tolerance              float64
	}{
		{"exact", 0.02, 30, 5, 28, 0, 1e-9},
		{"demo-like jitter", 0.02, 30, 5, 28, 0.2, 0.05},
		{"large service", 0.005, 400, 50, 300, 0.1, 0.05},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := queue(500, tc.base, tc.capacity, tc.lo, tc.hi, tc.jitter, 7)
			l, err := FitLine(s)
			if err != nil {
				t.Fatal(err)
			}
			if rel := math.Abs(l.Saturation-tc.capacity) / tc.capacity; rel > tc.tolerance {
				t.Errorf("saturation %.4g, want %.4g (off by %.1f %%)", l.Saturation, tc.capacity, 100*rel)
			}
			if rel := math.Abs(l.Base-tc.base) / tc.base; rel > tc.tolerance {
				t.Errorf("base %.4g, want %.4g", l.Base, tc.base)
			}
			if tc.jitter == 0 && l.R2 < 0.999999 {
				t.Errorf("R² %.6f on exact data", l.R2)
			}
		})
	}
}

func TestEstimateBreakingPoint(t *testing.T) {
	// The objective latency is 1.2 × the mean (a p99 of a uniform ±20 %
	// jitter): base 0.024 s; a 0.2 s threshold breaks at 30×(1−0.024/0.2).
	fit := queue(400, 0.02, 30, 5, 28, 0.2, 3)
	obj := make([]Sample, len(fit))
	for i, s := range fit {
		obj[i] = Sample{Load: s.Load, Latency: 0.024 / (1 - s.Load/30)}
	}
	e, err := EstimateCapacity(fit, obj, 0.2, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := 30 * (1 - 0.024/0.2)
	if math.Abs(e.Breaking-want)/want > 0.05 {
		t.Errorf("breaking %.4g, want %.4g", e.Breaking, want)
	}
	if e.BreakingInterval.High == nil || e.BreakingInterval.Low > e.Breaking || *e.BreakingInterval.High < e.Breaking {
		t.Errorf("interval %+v does not hold the estimate %.4g", e.BreakingInterval, e.Breaking)
	}
	// The interval is the estimate's spread, not a bound on the bias the
	// jitter leaves (well under 1 % here).
	if iv := e.SaturationInterval; math.Abs(e.Saturation-30) > 0.3 || iv.High == nil || iv.Low > e.Saturation || *iv.High < e.Saturation {
		t.Errorf("saturation %v (want 30 ± 1 %%), interval %v–%v", e.Saturation, e.SaturationInterval.Low, deref(e.SaturationInterval.High))
	}
	if e.Confidence != "high" {
		t.Errorf("confidence %q on 400 clean samples", e.Confidence)
	}
	again, _ := EstimateCapacity(fit, obj, 0.2, 1)
	if again.BreakingInterval.Low != e.BreakingInterval.Low {
		t.Error("the bootstrap is not deterministic for a seed")
	}
}

func TestTooLittleData(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    []Sample
	}{
		{"none", nil},
		{"few", queue(MinSamples-1, 0.02, 30, 5, 28, 0.1, 1)},
		{"flat load", queue(200, 0.02, 30, 5, 5.5, 0.2, 2)},
		{"low load only", queue(200, 0.02, 30, 1, 4, 0.01, 3)},
		{"latency falls with load", func() []Sample {
			s := queue(100, 0.02, 30, 5, 28, 0, 4)
			for i := range s {
				s[i].Latency = 0.5 / (1 + s[i].Load)
			}
			return s
		}()},
		{"unusable values", func() []Sample {
			s := make([]Sample, 50)
			for i := range s {
				s[i] = Sample{Load: float64(i), Latency: math.NaN()}
			}
			return s
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FitLine(tc.s)
			if !errors.Is(err, ErrTooLittleData) {
				t.Fatalf("err = %v, want ErrTooLittleData", err)
			}
			if _, err := EstimateCapacity(tc.s, tc.s, 0.2, 1); !errors.Is(err, ErrTooLittleData) {
				t.Errorf("EstimateCapacity err = %v, want ErrTooLittleData", err)
			}
		})
	}
}

func TestErrorBreaking(t *testing.T) {
	var s []ErrorSample
	for i := range 100 {
		x := float64(i) / 4 // 0 … 24.75
		ratio := 0.001
		if x >= 20 {
			ratio = 0.05
		}
		s = append(s, ErrorSample{Load: x, Ratio: ratio})
	}
	b, ok := ErrorBreaking(s, 0.01)
	if !ok || b < 19 || b > 21 {
		t.Errorf("breaking = %v, %v; want about 20", b, ok)
	}
	if _, ok := ErrorBreaking(s, 0.1); ok {
		t.Error("a threshold never crossed was reported broken")
	}
}

func TestRecommendAndSchedule(t *testing.T) {
	// Three days of a load of 40 rps at night and 200 rps 08:00–12:00 UTC.
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	var load []autoscaler.Point
	for t := start; t.Before(start.Add(72 * time.Hour)); t = t.Add(time.Minute) {
		v := 40.0
		if h := t.Hour(); h >= 8 && h < 12 {
			v = 200
		}
		load = append(load, autoscaler.Point{T: t, V: v})
	}
	s := recommend(load, 28.6)
	if s.PerInstance != 20 || s.CapacityPerInstance != 28.6 {
		t.Errorf("per_instance %v capacity %v, want 20 and 28.6", s.PerInstance, s.CapacityPerInstance)
	}
	if s.Min != 2 || s.Max != 13 {
		t.Errorf("min %d max %d, want 2 and 13 (40/20; 1.25×200/20)", s.Min, s.Max)
	}
	if len(s.Schedule) != 1 || s.Schedule[0].Cron != "0 8 * * *" || time.Duration(s.Schedule[0].Duration) != 4*time.Hour || s.Schedule[0].Min != 10 {
		t.Errorf("schedule %+v, want one floor of 10 from 08:00 for 4h", s.Schedule)
	}
	short, notes := scheduleFloors(load[:600], 20, 2)
	if len(short) != 0 || len(notes) != 1 {
		t.Errorf("10 h of history gave schedule %+v notes %v", short, notes)
	}
}

func deref(p *float64) float64 {
	if p == nil {
		return math.Inf(1)
	}
	return *p
}
