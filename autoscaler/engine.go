package autoscaler

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/cronexpr"
)

// Policy is a validated policy ready for evaluation. Its Decide method is the
// decision engine: a pure function of the policy, the State of earlier
// evaluations and an Input holding the time, the current replica count and
// the metric observations. The live autoscaler and the backtest both use it.
type Policy struct {
	Config   PolicyConfig
	Interval time.Duration
	schedule []schedule
	// terse skips the explanation (Steps and notes): the model replays
	// millions of evaluations and explains only those that scale.
	terse bool
}

// sprintf formats an explanation, unless the policy is terse.
func (p *Policy) sprintf(format string, args ...any) string {
	if p.terse {
		return ""
	}
	return fmt.Sprintf(format, args...)
}

type schedule struct {
	expr     *cronexpr.Expression
	cron     string
	duration time.Duration
	min      int
}

// NewPolicy compiles c, which must have passed Config.Validate.
func NewPolicy(c PolicyConfig) (*Policy, error) {
	p := &Policy{Config: c, Interval: time.Duration(c.Interval)}
	for i, s := range c.Schedule {
		e, err := parseCron(s.Cron)
		if err != nil {
			return nil, fmt.Errorf("policy %s schedule[%d]: %w", c.Name, i, err)
		}
		p.schedule = append(p.schedule, schedule{expr: e, cron: s.Cron, duration: time.Duration(s.Duration), min: s.Min})
	}
	return p, nil
}

// State is what the engine remembers between evaluations of one policy: the
// recent raw recommendations (for stabilization) and the recent scale events
// (for the rate policies). The zero value is ready; it is not safe for
// concurrent use.
type State struct {
	recs   []timedValue
	up     []timedValue // replicas added, by time
	down   []timedValue // replicas removed, by time
	maxAge time.Duration
}

type timedValue struct {
	t time.Time
	v int
}

// RecordScale notes that the target went from `from` to `to` replicas at t,
// for the rate policies. Call it when a scale action succeeded.
func (s *State) RecordScale(t time.Time, from, to int) {
	switch {
	case to > from:
		s.up = append(s.up, timedValue{t, to - from})
	case to < from:
		s.down = append(s.down, timedValue{t, from - to})
	}
}

// copyFrom makes s a copy of o, reusing s's storage.
func (s *State) copyFrom(o *State) {
	s.recs = append(s.recs[:0], o.recs...)
	s.up = append(s.up[:0], o.up...)
	s.down = append(s.down[:0], o.down...)
	s.maxAge = o.maxAge
}

// Observation is one metric's reading at evaluation time.
type Observation struct {
	// Value is the query's result; ignored when Err is set.
	Value float64
	// Err is set when the query failed or returned nothing (ErrEmpty).
	Err error
	// Forecast is the value expected at the forecast horizon; valid when HasForecast.
	Forecast    float64
	HasForecast bool
	// Fast is the per-scrape value (capacity sizing's scale-up metric);
	// valid when HasFast.
	Fast    float64
	HasFast bool
	// Volatility is σ of the per-scrape value's rise over the headroom
	// horizon (Volatility); valid when HasVolatility.
	Volatility    float64
	HasVolatility bool
}

// Input is what one evaluation sees.
type Input struct {
	Now     time.Time
	Current int
	Metrics []Observation
}

// MetricEvaluation explains one metric's part in a decision.
type MetricEvaluation struct {
	Query  string  `json:"query"`
	Type   string  `json:"type"`
	Target float64 `json:"target"`
	// Value is nil when the metric failed.
	Value *float64 `json:"value"`
	Error string   `json:"error,omitempty"`
	// Ratio is value / target (per instance: per current replica).
	Ratio          float64  `json:"ratio"`
	Recommendation int      `json:"recommendation"`
	Forecast       *float64 `json:"forecast,omitempty"`
	// ForecastRecommendation is what the forecast value asks for.
	ForecastRecommendation int    `json:"forecast_recommendation,omitempty"`
	Note                   string `json:"note"`
}

// Evaluation is the engine's full account of one decision.
type Evaluation struct {
	Time    time.Time          `json:"time"`
	Current int                `json:"current"`
	Metrics []MetricEvaluation `json:"metrics"`
	// Raw is the largest recommendation of the metrics (and their forecasts).
	Raw int `json:"raw_recommendation"`
	// Stabilized is Raw after the stabilization windows.
	Stabilized int `json:"stabilized"`
	// Floor is the effective minimum: min, raised by an active schedule.
	Floor    int      `json:"floor"`
	Max      int      `json:"max"`
	Schedule []string `json:"active_schedules,omitempty"`
	// Limited is Stabilized after the rate policies and the limits.
	Desired int `json:"desired"`
	// ForecastDriven is set when a forecast raised the recommendation above
	// every metric's current value.
	ForecastDriven bool `json:"forecast_driven"`
	// Steps explain the decision in plain words, in order.
	Steps []string `json:"steps"`
}

// Reason is a one-line summary of why Desired differs from Current.
func (e *Evaluation) Reason() string {
	if len(e.Steps) == 0 {
		return ""
	}
	return strings.Join(e.Steps, "; ")
}

// Decide runs one evaluation: the HPA's algorithm with forecasts and
// schedule floors. It updates st with the new raw recommendation.
func (p *Policy) Decide(st *State, in Input) Evaluation {
	c := p.Config
	ev := Evaluation{Time: in.Now, Current: in.Current, Max: c.Max}
	steps := func(format string, args ...any) {
		if !p.terse {
			ev.Steps = append(ev.Steps, fmt.Sprintf(format, args...))
		}
	}

	ev.Floor, ev.Schedule = p.floor(in.Now)
	current := in.Current
	st.prune(in.Now, c.Behavior.ScaleUp, c.Behavior.ScaleDown)

	// 1. One recommendation per metric; the largest wins.
	raw, rawFrom, okMetrics := -1, "", 0
	for i, m := range c.Metrics {
		var obs Observation
		if i < len(in.Metrics) {
			obs = in.Metrics[i]
		} else {
			obs.Err = ErrEmpty
		}
		me := p.evalMetric(m, obs, current, i == 0 && c.capacitySizing())
		if obs.Err == nil {
			okMetrics++
		}
		ev.Metrics = append(ev.Metrics, me)
		rec := me.Recommendation
		if me.Forecast != nil && me.ForecastRecommendation > rec {
			rec = me.ForecastRecommendation
		}
		if rec > raw {
			raw, rawFrom = rec, p.sprintf("metric %d (%s)", i, me.Note)
			ev.ForecastDriven = me.Forecast != nil && me.ForecastRecommendation > me.Recommendation
		}
	}
	if raw < 0 {
		raw, rawFrom = current, "no metric"
	}
	ev.Raw = raw
	if okMetrics == 0 && len(c.Metrics) > 0 {
		steps("no metric could be read; %s", c.OnMetricError)
	}
	steps("recommendation %d from %s", raw, rawFrom)

	// 2. Stabilization windows (HPA: scale up to the lowest recommendation of
	// the up window, down to the highest of the down window).
	ev.Stabilized = st.stabilize(in.Now, current, raw, time.Duration(c.Behavior.ScaleUp.Stabilization), time.Duration(c.Behavior.ScaleDown.Stabilization))
	if ev.Stabilized != raw {
		if raw < current {
			steps("scale-down stabilization (%s) holds at %d", time.Duration(c.Behavior.ScaleDown.Stabilization), ev.Stabilized)
		} else {
			steps("scale-up stabilization (%s) holds at %d", time.Duration(c.Behavior.ScaleUp.Stabilization), ev.Stabilized)
		}
	}

	// 3. Rate policies, then min/max and schedule floors.
	desired := ev.Stabilized
	switch {
	case desired > current:
		limit := st.scaleUpLimit(in.Now, current, c.Behavior.ScaleUp)
		if limit < current {
			limit = current
		}
		if desired > limit {
			steps("scale-up rate policies (select %s) allow at most %d", c.Behavior.ScaleUp.Select, limit)
			desired = limit
		}
	case desired < current:
		limit := st.scaleDownLimit(in.Now, current, c.Behavior.ScaleDown)
		if limit > current {
			limit = current
		}
		if desired < limit {
			steps("scale-down rate policies (select %s) allow at least %d", c.Behavior.ScaleDown.Select, limit)
			desired = limit
		}
	}
	if desired > c.Max {
		steps("capped at max %d", c.Max)
		desired = c.Max
	}
	if desired < ev.Floor {
		if len(ev.Schedule) > 0 && ev.Floor > c.Min {
			steps("raised to the schedule floor %d (%s)", ev.Floor, strings.Join(ev.Schedule, ", "))
		} else {
			steps("raised to min %d", ev.Floor)
		}
		desired = ev.Floor
	}
	ev.Desired = desired
	switch {
	case desired > current:
		steps("scale up from %d to %d", current, desired)
	case desired < current:
		steps("scale down from %d to %d", current, desired)
	default:
		steps("keep %d", current)
	}
	return ev
}

// ErrEmpty is an observation's error when the query returned no value.
var ErrEmpty = fmt.Errorf("query returned no value")

func metricType(m MetricConfig) (string, float64) {
	if m.PerInstance > 0 {
		return "per_instance", m.PerInstance
	}
	return "utilization", m.Utilization
}

// evalMetric computes one metric's recommendation with the HPA's formula:
// desired = ceil(current × ratio), unless the ratio is within tolerance of 1.
// With capacity, the metric is sized by capacityRecommend instead.
func (p *Policy) evalMetric(m MetricConfig, obs Observation, current int, capacity bool) MetricEvaluation {
	typ, target := metricType(m)
	me := MetricEvaluation{Query: m.Query, Type: typ, Target: target}
	if obs.Err != nil || math.IsNaN(obs.Value) || math.IsInf(obs.Value, 0) {
		err := obs.Err
		if err == nil {
			err = fmt.Errorf("value is %v", obs.Value)
		}
		me.Error = err.Error()
		me.Recommendation = current
		if fb := p.Config.OnMetricError.Fallback; fb > 0 {
			me.Recommendation = max(fb, current)
			me.Note = p.sprintf("unreadable, fallback %d (never below current %d)", fb, current)
		} else {
			me.Note = p.sprintf("unreadable, hold at %d", current)
		}
		return me
	}
	v := obs.Value
	me.Value = &v
	if capacity {
		me.Ratio = v / (target * float64(max(current, 1)))
		me.Recommendation, me.Note = p.capacityRecommend(obs, current)
	} else {
		me.Recommendation, me.Ratio, me.Note = p.recommend(typ, target, v, current, "value")
	}
	if obs.HasForecast {
		f := max(obs.Forecast, 0)
		me.Forecast = &f
		rec, _, note := p.recommend(typ, target, f, current, "forecast")
		if capacity {
			rec = int(math.Ceil(f / p.Config.CapacityPerInstance))
			note = p.sprintf("forecast %.4g / capacity %.4g per instance = %d", f, p.Config.CapacityPerInstance, rec)
		}
		me.ForecastRecommendation = rec
		if rec > me.Recommendation {
			me.Note = note
		}
	}
	return me
}

func (p *Policy) recommend(typ string, target, v float64, current int, what string) (int, float64, string) {
	tol := p.Config.Tolerance
	if typ == "per_instance" {
		if current <= 0 {
			n := int(math.Ceil(v / target))
			return n, math.Inf(1), p.sprintf("%s %.4g / %.4g per instance = %d", what, v, target, n)
		}
		ratio := v / (target * float64(current))
		if math.Abs(1-ratio) <= tol {
			return current, ratio, p.sprintf("%s %.4g is %.4g per instance, within tolerance %.2g of %.4g", what, v, v/float64(current), tol, target)
		}
		n := int(math.Ceil(v / target))
		return n, ratio, p.sprintf("%s %.4g / %.4g per instance = %d", what, v, target, n)
	}
	ratio := v / target
	base := max(current, 1)
	if math.Abs(1-ratio) <= tol {
		return current, ratio, p.sprintf("%s utilization %.4g within tolerance %.2g of %.4g", what, v, tol, target)
	}
	n := int(math.Ceil(ratio * float64(base)))
	return n, ratio, p.sprintf("%s utilization %.4g / target %.4g × %d = %d", what, v, target, base, n)
}

// floor returns min raised by the schedules active at t, and their names.
func (p *Policy) floor(t time.Time) (int, []string) {
	floor := p.Config.Min
	var active []string
	for _, s := range p.schedule {
		if s.activeAt(t) {
			active = append(active, fmt.Sprintf("%q for %s: min %d", s.cron, s.duration, s.min))
			floor = max(floor, s.min)
		}
	}
	return min(floor, p.Config.Max), active
}

// activeAt reports whether the schedule fired in (t-duration, t].
func (s schedule) activeAt(t time.Time) bool {
	next := s.expr.Next(t.Add(-s.duration))
	return !next.IsZero() && !next.After(t)
}

// stabilize applies the HPA's stabilization and records raw.
func (s *State) stabilize(now time.Time, current, raw int, upWindow, downWindow time.Duration) int {
	up, down := raw, raw
	upFrom, downFrom := now.Add(-upWindow), now.Add(-downWindow)
	for _, r := range s.recs {
		if r.t.After(upFrom) {
			up = min(up, r.v)
		}
		if r.t.After(downFrom) {
			down = max(down, r.v)
		}
	}
	res := current
	if res < up {
		res = up
	}
	if res > down {
		res = down
	}
	s.recs = append(s.recs, timedValue{now, raw})
	keep := now.Add(-max(upWindow, downWindow))
	s.recs = slices.DeleteFunc(s.recs, func(r timedValue) bool { return !r.t.After(keep) })
	return res
}

func changeIn(events []timedValue, now time.Time, period time.Duration) int {
	n, from := 0, now.Add(-period)
	for _, e := range events {
		if e.t.After(from) {
			n += e.v
		}
	}
	return n
}

// prune drops events older than the longest rate period.
func (s *State) prune(now time.Time, up, down ScalingRules) {
	var longest time.Duration
	for _, r := range append(slices.Clone(up.Policies), down.Policies...) {
		longest = max(longest, time.Duration(r.Period))
	}
	cutoff := now.Add(-longest)
	old := func(e timedValue) bool { return !e.t.After(cutoff) }
	s.up = slices.DeleteFunc(s.up, old)
	s.down = slices.DeleteFunc(s.down, old)
}

// scaleUpLimit is the HPA's calculateScaleUpLimitWithScalingRules.
func (s *State) scaleUpLimit(now time.Time, current int, r ScalingRules) int {
	if r.Select == SelectDisabled {
		return current
	}
	result, pick := math.MinInt32, func(a, b int) int { return max(a, b) }
	if r.Select == SelectMin {
		result, pick = math.MaxInt32, func(a, b int) int { return min(a, b) }
	}
	for _, rp := range r.Policies {
		period := time.Duration(rp.Period)
		start := current - changeIn(s.up, now, period) + changeIn(s.down, now, period)
		var proposed int
		if rp.Type == RatePods {
			proposed = start + rp.Value
		} else {
			proposed = int(math.Ceil(float64(start) * (1 + float64(rp.Value)/100)))
		}
		result = pick(result, proposed)
	}
	return result
}

// scaleDownLimit is the HPA's calculateScaleDownLimitWithBehaviors.
func (s *State) scaleDownLimit(now time.Time, current int, r ScalingRules) int {
	if r.Select == SelectDisabled {
		return current
	}
	result, pick := math.MaxInt32, func(a, b int) int { return min(a, b) }
	if r.Select == SelectMin {
		result, pick = math.MinInt32, func(a, b int) int { return max(a, b) }
	}
	for _, rp := range r.Policies {
		period := time.Duration(rp.Period)
		start := current + changeIn(s.down, now, period) - changeIn(s.up, now, period)
		var proposed int
		if rp.Type == RatePods {
			proposed = start - rp.Value
		} else {
			proposed = int(float64(start) * (1 - float64(rp.Value)/100))
		}
		result = pick(result, proposed)
	}
	return result
}
