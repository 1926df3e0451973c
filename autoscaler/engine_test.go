package autoscaler

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/tidewatch/tidewatch/autoscaler/backend/webhook"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC) // a Monday

func testPolicy(t *testing.T, mod func(*PolicyConfig)) *Policy {
	t.Helper()
	c := DefaultPolicyConfig
	c.Name, c.Max = "api", 50
	c.Target = TargetConfig{Backend: "hook", Name: "api"}
	c.Metrics = []MetricConfig{{Query: "sum(rate(x[1m]))", PerInstance: 2}}
	if mod != nil {
		mod(&c)
	}
	cfg := Config{Backends: []BackendConfig{{Name: "hook", Type: TypeWebhook, Config: &webhook.Config{URL: "http://x"}}}, Policies: []PolicyConfig{c}}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("invalid test policy: %v", err)
	}
	p, err := NewPolicy(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func obs(vs ...float64) []Observation {
	out := make([]Observation, len(vs))
	for i, v := range vs {
		if math.IsNaN(v) {
			out[i] = Observation{Err: errors.New("query failed")}
			continue
		}
		out[i] = Observation{Value: v}
	}
	return out
}

func TestDecide(t *testing.T) {
	nan := math.NaN()
	two := []MetricConfig{{Query: "a", PerInstance: 2}, {Query: "b", Utilization: 0.6}}
	tests := []struct {
		name    string
		mod     func(*PolicyConfig)
		history []float64 // raw recommendations recorded 1 min apart before now
		current int
		metrics []Observation
		want    int
	}{
		{name: "hpa formula per instance", current: 1, metrics: obs(10), mod: func(c *PolicyConfig) { c.Max = 10 }, want: 5},
		{name: "within tolerance keeps", current: 5, metrics: obs(10.5), want: 5},
		{name: "just outside tolerance", current: 5, metrics: obs(11.2), want: 6},
		{name: "utilization ratio", current: 4, metrics: obs(0.9), mod: func(c *PolicyConfig) { c.Metrics = two[1:] }, want: 6},
		{name: "largest of several metrics", current: 4, metrics: obs(4, 0.9), mod: func(c *PolicyConfig) { c.Metrics = two }, want: 6},
		{name: "largest of several metrics other way", current: 4, metrics: obs(20, 0.6), mod: func(c *PolicyConfig) { c.Metrics = two }, want: 8},
		{name: "failed metric never scales down", current: 6, metrics: obs(nan, 0.1), mod: func(c *PolicyConfig) { c.Metrics = two; c.Behavior.ScaleDown.Stabilization = 0 }, want: 6},
		{name: "failed metric other may scale up", current: 6, metrics: obs(nan, 0.9), mod: func(c *PolicyConfig) { c.Metrics = two }, want: 9},
		{name: "empty metric holds", current: 6, metrics: []Observation{{Err: ErrEmpty}}, mod: func(c *PolicyConfig) { c.Behavior.ScaleDown.Stabilization = 0 }, want: 6},
		{name: "fallback", current: 3, metrics: obs(nan), mod: func(c *PolicyConfig) { c.OnMetricError.Fallback = 5 }, want: 5},
		{name: "fallback never below current", current: 9, metrics: obs(nan), mod: func(c *PolicyConfig) { c.OnMetricError.Fallback = 5 }, want: 9},
		{name: "scale down immediately without stabilization", current: 10, metrics: obs(4), mod: func(c *PolicyConfig) { c.Behavior.ScaleDown.Stabilization = 0 }, want: 2},
		{name: "scale down stabilized by window", current: 10, history: []float64{10, 8, 3}, metrics: obs(4), want: 10},
		{name: "scale down to highest in window", current: 10, history: []float64{7, 5, 3}, metrics: obs(4), want: 7},
		{name: "scale up stabilization takes lowest", current: 4, history: []float64{6, 9}, metrics: obs(20), mod: func(c *PolicyConfig) { c.Behavior.ScaleUp.Stabilization = model.Duration(5 * time.Minute) }, want: 6},
		{name: "scale up rate percent 100", current: 10, metrics: obs(80), want: 20},
		{name: "scale up rate pods 4 on small counts", current: 2, metrics: obs(80), want: 6},
		{name: "scale up rate select min", current: 10, metrics: obs(80), mod: func(c *PolicyConfig) { c.Behavior.ScaleUp.Select = SelectMin }, want: 14},
		{name: "scale up disabled", current: 10, metrics: obs(80), mod: func(c *PolicyConfig) { c.Behavior.ScaleUp.Select = SelectDisabled }, want: 10},
		{name: "scale down rate percent 50", current: 10, metrics: obs(2), mod: func(c *PolicyConfig) {
			c.Behavior.ScaleDown = ScalingRules{Select: SelectMax, Policies: []RatePolicy{{Type: RatePercent, Value: 50, Period: model.Duration(time.Minute)}}}
		}, want: 5},
		{name: "scale down pods 1 select min", current: 10, metrics: obs(2), mod: func(c *PolicyConfig) {
			c.Behavior.ScaleDown = ScalingRules{Select: SelectMin, Policies: []RatePolicy{
				{Type: RatePercent, Value: 50, Period: model.Duration(time.Minute)},
				{Type: RatePods, Value: 1, Period: model.Duration(time.Minute)}}}
		}, want: 9},
		{name: "capped at max", current: 8, metrics: obs(100), mod: func(c *PolicyConfig) { c.Max = 10 }, want: 10},
		{name: "raised to min", current: 2, metrics: obs(0), mod: func(c *PolicyConfig) { c.Min = 3 }, want: 3},
		{name: "above max comes down at once", current: 60, metrics: obs(200), want: 50},
		{name: "schedule floor active", current: 2, metrics: obs(4), mod: func(c *PolicyConfig) {
			c.Schedule = []ScheduleConfig{{Cron: "0 8 * * 1-5", Duration: model.Duration(10 * time.Hour), Min: 10}}
		}, want: 10},
		{name: "schedule floor inactive on saturday", current: 2, metrics: obs(4), mod: func(c *PolicyConfig) {
			c.Schedule = []ScheduleConfig{{Cron: "0 8 * * 6", Duration: model.Duration(10 * time.Hour), Min: 10}}
		}, want: 2},
		{name: "forecast scales out ahead", current: 5, metrics: []Observation{{Value: 10, Forecast: 20, HasForecast: true}}, want: 10},
		{name: "forecast never scales in", current: 5, metrics: []Observation{{Value: 10, Forecast: 1, HasForecast: true}}, want: 5},
		{name: "forecast below value but value scales out", current: 5, metrics: []Observation{{Value: 16, Forecast: 1, HasForecast: true}}, want: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy(t, tt.mod)
			var st State
			for i, h := range tt.history {
				st.recs = append(st.recs, timedValue{t0.Add(time.Duration(i-len(tt.history)) * time.Minute), int(h)})
			}
			ev := p.Decide(&st, Input{Now: t0, Current: tt.current, Metrics: tt.metrics})
			if ev.Desired != tt.want {
				t.Errorf("desired = %d, want %d\nsteps: %q", ev.Desired, tt.want, ev.Steps)
			}
			if len(ev.Steps) == 0 {
				t.Error("no explanation")
			}
		})
	}
}

func TestForecastDrivenFlag(t *testing.T) {
	p := testPolicy(t, nil)
	ev := p.Decide(&State{}, Input{Now: t0, Current: 5, Metrics: []Observation{{Value: 10, Forecast: 20, HasForecast: true}}})
	if !ev.ForecastDriven || ev.Raw != 10 {
		t.Errorf("forecast-driven = %v raw %d, want true 10; %q", ev.ForecastDriven, ev.Raw, ev.Steps)
	}
}

// TestRateLimitsOverTime checks that rate policies use the replicas at the
// start of their period, as the HPA does: two scale-ups within 15 s add at
// most what one would.
func TestRateLimitsOverTime(t *testing.T) {
	p := testPolicy(t, func(c *PolicyConfig) { c.Max = 100 })
	var st State
	cur := 10
	ev := p.Decide(&st, Input{Now: t0, Current: cur, Metrics: obs(200)})
	if ev.Desired != 20 {
		t.Fatalf("first step %d, want 20", ev.Desired)
	}
	st.RecordScale(t0, cur, ev.Desired)
	cur = ev.Desired
	ev = p.Decide(&st, Input{Now: t0.Add(5 * time.Second), Current: cur, Metrics: obs(200)})
	if ev.Desired != 20 {
		t.Fatalf("second step within the period %d, want 20 (no further growth)", ev.Desired)
	}
	ev = p.Decide(&st, Input{Now: t0.Add(16 * time.Second), Current: cur, Metrics: obs(200)})
	if ev.Desired != 40 {
		t.Fatalf("after the period %d, want 40", ev.Desired)
	}
}

// TestDecideProperties runs random policies over random metric sequences
// and checks the invariants: the result is within [floor, max], a failed
// metric never lowers the count, a forecast alone never lowers it, and no
// change is faster than the rate policies allow.
func TestDecideProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for scenario := range 300 {
		c := DefaultPolicyConfig
		c.Name = "p"
		c.Target = TargetConfig{Backend: "hook", Name: "x"}
		c.Min = rng.IntN(5)
		c.Max = c.Min + 1 + rng.IntN(60)
		c.Tolerance = rng.Float64() * 0.3
		c.Metrics = []MetricConfig{{Query: "a", PerInstance: 1 + rng.Float64()*10}}
		if rng.IntN(2) == 0 {
			c.Metrics = append(c.Metrics, MetricConfig{Query: "b", Utilization: 0.2 + rng.Float64()*0.7})
		}
		randRules := func() ScalingRules {
			r := ScalingRules{Stabilization: model.Duration(time.Duration(rng.IntN(4)) * time.Minute), Select: []Select{SelectMax, SelectMin}[rng.IntN(2)]}
			for range 1 + rng.IntN(3) {
				typ := []RateType{RatePods, RatePercent}[rng.IntN(2)]
				r.Policies = append(r.Policies, RatePolicy{Type: typ, Value: 1 + rng.IntN(120), Period: model.Duration(time.Duration(5+rng.IntN(120)) * time.Second)})
			}
			return r
		}
		c.Behavior = BehaviorConfig{ScaleUp: randRules(), ScaleDown: randRules()}
		cfg := Config{Backends: []BackendConfig{{Name: "hook", Type: TypeWebhook, Config: &webhook.Config{URL: "http://x"}}}, Policies: []PolicyConfig{c}}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("scenario %d: %v", scenario, err)
		}
		p, err := NewPolicy(c)
		if err != nil {
			t.Fatal(err)
		}
		var st State
		type change struct {
			t        time.Time
			from, to int
		}
		var history []change
		cur := c.Min + rng.IntN(c.Max-c.Min+1)
		now := t0
		for step := range 200 {
			now = now.Add(time.Duration(1+rng.IntN(10)) * time.Second)
			in := Input{Now: now, Current: cur}
			anyFailed := false
			for range c.Metrics {
				o := Observation{Value: rng.Float64() * 400}
				if len(in.Metrics) == 1 {
					o.Value = rng.Float64() * 1.5
				}
				switch rng.IntN(8) {
				case 0:
					o.Err, anyFailed = errors.New("down"), true
				case 1:
					o.Forecast, o.HasForecast = rng.Float64()*400, true
				}
				in.Metrics = append(in.Metrics, o)
			}
			ev := p.Decide(&st, in)
			d := ev.Desired
			where := fmt.Sprintf("scenario %d step %d (current %d → %d, %q)", scenario, step, cur, d, ev.Steps)
			if d < ev.Floor || d > c.Max {
				t.Fatalf("%s: outside [%d, %d]", where, ev.Floor, c.Max)
			}
			if anyFailed && len(c.Metrics) == 1 && d < cur {
				t.Fatalf("%s: scaled down on a failed metric", where)
			}
			// Rate policies: measured on the replica history, independently of State.
			startOf := func(period time.Duration) int {
				s := cur
				for i := len(history) - 1; i >= 0 && history[i].t.After(now.Add(-period)); i-- {
					s = history[i].from
				}
				return s
			}
			check := func(r ScalingRules, ok func(rp RatePolicy, start int) bool) bool {
				if r.Select == SelectMax {
					for _, rp := range r.Policies {
						if ok(rp, startOf(time.Duration(rp.Period))) {
							return true
						}
					}
					return false
				}
				for _, rp := range r.Policies {
					if !ok(rp, startOf(time.Duration(rp.Period))) {
						return false
					}
				}
				return true
			}
			if d > cur && cur >= ev.Floor && !check(c.Behavior.ScaleUp, func(rp RatePolicy, start int) bool {
				if rp.Type == RatePods {
					return d <= start+rp.Value
				}
				return d <= int(math.Ceil(float64(start)*(1+float64(rp.Value)/100)))
			}) {
				t.Fatalf("%s: faster than the scale-up policies %+v", where, c.Behavior.ScaleUp)
			}
			if d < cur && cur <= c.Max && !check(c.Behavior.ScaleDown, func(rp RatePolicy, start int) bool {
				if rp.Type == RatePods {
					return d >= start-rp.Value
				}
				return d >= int(float64(start)*(1-float64(rp.Value)/100))
			}) {
				t.Fatalf("%s: faster than the scale-down policies %+v", where, c.Behavior.ScaleDown)
			}
			if d != cur {
				st.RecordScale(now, cur, d)
				history = append(history, change{now, cur, d})
				cur = d
			}
		}
	}
}

func TestForecast(t *testing.T) {
	var rising []Point
	for i := range 30 {
		rising = append(rising, Point{T: t0.Add(time.Duration(i) * time.Minute), V: 100 + 10*float64(i)})
	}
	last := rising[len(rising)-1].V // 390
	for _, method := range []ForecastMethod{ForecastHoltWinters, ForecastLinear} {
		c := DefaultForecastConfig
		c.Method = method
		c.Horizon = model.Duration(5 * time.Minute)
		got, err := Forecast(c, rising)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-(last+50)) > 1e-6 {
			t.Errorf("%s on a line: %v, want %v", method, got, last+50)
		}
	}
	flat := []Point{{t0, 5}, {t0.Add(time.Minute), 5}, {t0.Add(2 * time.Minute), math.NaN()}, {t0.Add(3 * time.Minute), 5}}
	if got, _ := Forecast(DefaultForecastConfig, flat); math.Abs(got-5) > 1e-9 {
		t.Errorf("flat: %v, want 5", got)
	}
	if _, err := Forecast(DefaultForecastConfig, flat[:1]); err == nil {
		t.Error("one point: no error")
	}
}

func TestScheduleWindow(t *testing.T) {
	p := testPolicy(t, func(c *PolicyConfig) {
		c.Schedule = []ScheduleConfig{{Cron: "0 8 * * 1-5", Duration: model.Duration(10 * time.Hour), Min: 10}}
	})
	for _, tc := range []struct {
		at   time.Time
		want int
	}{
		{time.Date(2026, 3, 2, 7, 59, 0, 0, time.UTC), 1},
		{time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC), 10},
		{time.Date(2026, 3, 2, 17, 59, 0, 0, time.UTC), 10},
		{time.Date(2026, 3, 2, 18, 0, 0, 0, time.UTC), 1},
		{time.Date(2026, 3, 7, 9, 0, 0, 0, time.UTC), 1}, // Saturday
	} {
		if got, _ := p.floor(tc.at); got != tc.want {
			t.Errorf("floor at %v = %d, want %d", tc.at, got, tc.want)
		}
	}
}

func testLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
