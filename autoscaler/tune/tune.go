// Package tune searches a scaling policy's parameters by backtest: each
// candidate is replayed through the reference model (autoscaler.SimulateLoad)
// over the same per-second load, on every core, and the result is the
// Pareto front of replica-hours against overloaded minutes against scale
// events, with a recommendation for a stated objective.
//
// The search is a seeded random search with refinement: a first round of
// the policy as configured, the HPA's defaults, capacity sizing's defaults
// and random candidates, then rounds that mutate members of the front found
// so far. Rounds are evaluated whole, in parallel, and the result is a
// function of the seed and the number of complete rounds only: the same
// seed with the same candidate count gives the same front, whatever the
// machine's speed. The budget stops the search between rounds (a round cut
// off by it is dropped).
package tune

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v2"

	"github.com/tidewatch/tidewatch/autoscaler"
)

// Options configure a search.
type Options struct {
	// Policy is the policy as configured; its limits, metrics and interval
	// stay, the searched parameters vary.
	Policy autoscaler.PolicyConfig
	// Load is the per-second load from Start.
	Load  []float64
	Start time.Time
	// Model is the reference model (capacity, readiness delay, metric).
	Model autoscaler.Model
	// Initial is the replica count at the start (0: the policy's min).
	Initial int
	// MaxOverloadedMinutes is the objective's bound: the recommendation is
	// the candidate with the fewest replica-hours (then events) within it.
	// 0 means half the HPA defaults' overloaded minutes on this load.
	MaxOverloadedMinutes float64
	// Candidates bounds the candidates evaluated (default 300); Budget
	// bounds the wall time (default 60 s); Seed seeds the search.
	Candidates int
	Budget     time.Duration
	Seed       uint64
	// Workers evaluate candidates in parallel (default GOMAXPROCS).
	Workers int
}

// Params are the searched parameters of a policy.
type Params struct {
	// Capacity sizing (needs the model's capacity): the headroom's
	// deviations and window.
	CapacitySizing bool           `json:"capacity_sizing"`
	Deviations     float64        `json:"headroom_deviations,omitempty"`
	HeadroomWindow model.Duration `json:"headroom_window,omitempty"`
	// Forecast is "", holt_winters or linear, with its window and horizon.
	Forecast        autoscaler.ForecastMethod `json:"forecast,omitempty"`
	ForecastWindow  model.Duration            `json:"forecast_window,omitempty"`
	ForecastHorizon model.Duration            `json:"forecast_horizon,omitempty"`
	Tolerance       float64                   `json:"tolerance"`
	UpStabilization model.Duration            `json:"scale_up_stabilization"`
	// DownStabilization is scale-down's stabilization window.
	DownStabilization model.Duration `json:"scale_down_stabilization"`
	// UpPercent and UpPods are scale-up's rate policies per 15 s (select
	// max); DownPercent is scale-down's.
	UpPercent   int `json:"scale_up_percent"`
	UpPods      int `json:"scale_up_pods"`
	DownPercent int `json:"scale_down_percent"`
}

// Candidate is one evaluated policy.
type Candidate struct {
	Name               string  `json:"name"`
	Params             Params  `json:"params"`
	OverloadedMinutes  float64 `json:"overloaded_minutes"`
	AboveTargetMinutes float64 `json:"above_target_minutes"`
	ReplicaHours       float64 `json:"replica_hours"`
	ScaleEvents        int     `json:"scale_events"`
}

// Result is a search's outcome.
type Result struct {
	Policy    string  `json:"policy"`
	Seed      uint64  `json:"seed"`
	Evaluated int     `json:"evaluated"`
	Rounds    int     `json:"rounds"`
	Elapsed   string  `json:"elapsed"`
	Budget    string  `json:"budget"`
	Stopped   string  `json:"stopped"` // "candidates" or "budget"
	Capacity  float64 `json:"capacity_per_instance"`
	Seconds   int     `json:"seconds"`
	// MaxOverloadedMinutes is the objective's bound used.
	MaxOverloadedMinutes float64 `json:"max_overloaded_minutes"`
	// Configured and HPA are the policy as configured and the HPA defaults.
	Configured Candidate `json:"configured"`
	HPA        Candidate `json:"hpa_default"`
	// Front is the Pareto front (no candidate is at least as good on all
	// three figures and better on one), by replica-hours.
	Front []Candidate `json:"front"`
	// Recommended is the objective's choice; Feasible says whether it meets
	// the bound (otherwise it is the front's least overloaded member).
	Recommended Candidate `json:"recommended"`
	Feasible    bool      `json:"feasible"`
	// YAML is the recommended policy's keys, to paste into the policy.
	YAML string `json:"yaml"`
}

// Run searches. It returns an error when the policy cannot be replayed.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Model.Capacity <= 0 {
		return nil, errors.New("tune: the model needs a capacity")
	}
	if len(o.Policy.Metrics) == 0 || o.Policy.Metrics[0].PerInstance <= 0 {
		return nil, errors.New("tune: the policy's first metric must be per_instance (it is the load)")
	}
	if len(o.Load) == 0 {
		return nil, errors.New("tune: the load is empty")
	}
	if o.Candidates <= 0 {
		o.Candidates = 300
	}
	if o.Budget <= 0 {
		o.Budget = time.Minute
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Initial <= 0 {
		o.Initial = max(o.Policy.Min, 1)
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, o.Budget)
	defer cancel()

	hpa := autoscaler.HPADefaults(o.Policy)
	base, err := o.evaluate(ctx, []autoscaler.PolicyConfig{o.Policy, hpa}, []string{"configured", "hpa_default"})
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("tune: the budget (%s) ended before the policy and the HPA defaults were replayed; give more --budget", o.Budget)
	}
	if err != nil {
		return nil, err
	}
	res := &Result{Policy: o.Policy.Name, Seed: o.Seed, Budget: o.Budget.String(), Capacity: o.Model.Capacity, Seconds: len(o.Load),
		Configured: base[0], HPA: base[1], MaxOverloadedMinutes: o.MaxOverloadedMinutes}
	res.Configured.Params, res.HPA.Params = paramsOf(o.Policy), paramsOf(hpa)
	if res.MaxOverloadedMinutes <= 0 {
		res.MaxOverloadedMinutes = res.HPA.OverloadedMinutes / 2
	}

	rng := rand.New(rand.NewPCG(o.Seed, 0x7d1e))
	var all []Candidate
	res.Stopped = "candidates"
	for len(all) < o.Candidates {
		n := min(o.Candidates-len(all), roundSize(res.Rounds))
		ps := o.round(rng, res.Rounds, n, front(all))
		cfgs, names := make([]autoscaler.PolicyConfig, len(ps)), make([]string, len(ps))
		for i, p := range ps {
			cfgs[i], names[i] = apply(o.Policy, p, o.Model.Capacity), fmt.Sprintf("r%d-%d", res.Rounds, i)
		}
		got, err := o.evaluate(ctx, cfgs, names)
		if errors.Is(err, context.DeadlineExceeded) {
			res.Stopped = "budget"
			break
		}
		if err != nil {
			return nil, err
		}
		for i := range got {
			got[i].Params = ps[i]
		}
		all = append(all, got...)
		res.Rounds++
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("tune: the budget (%s) ended before the first round of candidates; give more --budget", o.Budget)
	}
	res.Evaluated = len(all)
	res.Front = front(all)
	res.Recommended, res.Feasible = recommend(res.Front, res.MaxOverloadedMinutes)
	y, err := Snippet(apply(o.Policy, res.Recommended.Params, o.Model.Capacity))
	if err != nil {
		return nil, err
	}
	res.YAML = y
	res.Elapsed = time.Since(began).Round(time.Millisecond).String()
	return res, nil
}

// roundSize is how many candidates round r evaluates.
func roundSize(r int) int {
	if r == 0 {
		return 100
	}
	return 50
}

// evaluate replays each policy in parallel; a cancelled context stops it
// with ctx's error.
func (o Options) evaluate(ctx context.Context, cfgs []autoscaler.PolicyConfig, names []string) ([]Candidate, error) {
	out := make([]Candidate, len(cfgs))
	errs := make([]error, len(cfgs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(o.Workers, len(cfgs)) {
		wg.Go(func() {
			for i := range next {
				if ctx.Err() != nil {
					errs[i] = ctx.Err()
					continue
				}
				run, err := autoscaler.SimulateLoad(cfgs[i], o.Load, o.Start, o.Initial, o.Model)
				if err != nil {
					errs[i] = fmt.Errorf("candidate %s: %w", names[i], err)
					continue
				}
				out[i] = Candidate{Name: names[i], OverloadedMinutes: run.OverloadedMinutes, AboveTargetMinutes: run.AboveTargetMinutes,
					ReplicaHours: run.ReplicaHours, ScaleEvents: run.ScaleEvents}
			}
		})
	}
	for i := range cfgs {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, errors.Join(errs...)
}

// The searched values.
var (
	deviationChoices = []float64{0, 0.5, 0.8, 1, 1.1, 1.2, 1.5, 2, 2.5, 3}
	hwindowChoices   = []time.Duration{15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour}
	windowChoices    = []time.Duration{5 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour}
	horizonChoices   = []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute}
	toleranceChoices = []float64{0, 0.05, 0.1, 0.15, 0.2}
	upStabChoices    = []time.Duration{0, 15 * time.Second, 30 * time.Second, time.Minute}
	downStabChoices  = []time.Duration{time.Minute, 3 * time.Minute, 5 * time.Minute, 8 * time.Minute, 10 * time.Minute, 15 * time.Minute, 20 * time.Minute, 30 * time.Minute}
	upPercentChoices = []int{50, 100, 200, 400}
	upPodsChoices    = []int{1, 2, 4, 8, 16}
	downPctChoices   = []int{10, 25, 50, 100}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// random is a candidate drawn from the whole space.
func (o Options) random(r *rand.Rand) Params {
	p := Params{
		CapacitySizing:    r.IntN(3) > 0,
		Tolerance:         pick(r, toleranceChoices),
		UpStabilization:   model.Duration(pick(r, upStabChoices)),
		DownStabilization: model.Duration(pick(r, downStabChoices)),
		UpPercent:         pick(r, upPercentChoices),
		UpPods:            pick(r, upPodsChoices),
		DownPercent:       pick(r, downPctChoices),
	}
	if p.CapacitySizing {
		p.Deviations, p.HeadroomWindow = pick(r, deviationChoices), model.Duration(pick(r, hwindowChoices))
	}
	switch r.IntN(3) {
	case 1:
		p.Forecast = autoscaler.ForecastHoltWinters
	case 2:
		p.Forecast = autoscaler.ForecastLinear
	}
	if p.Forecast != "" {
		p.ForecastWindow, p.ForecastHorizon = model.Duration(pick(r, windowChoices)), model.Duration(pick(r, horizonChoices))
	}
	return p
}

// mutate changes one or two parameters of p.
func (o Options) mutate(r *rand.Rand, p Params) Params {
	for range 1 + r.IntN(2) {
		q := o.random(r)
		switch r.IntN(8) {
		case 0:
			p.CapacitySizing, p.Deviations, p.HeadroomWindow = q.CapacitySizing, q.Deviations, q.HeadroomWindow
		case 1:
			if p.CapacitySizing {
				p.Deviations = pick(r, deviationChoices)
			}
		case 2:
			p.Forecast, p.ForecastWindow, p.ForecastHorizon = q.Forecast, q.ForecastWindow, q.ForecastHorizon
		case 3:
			p.Tolerance = q.Tolerance
		case 4:
			p.UpStabilization = q.UpStabilization
		case 5:
			p.DownStabilization = q.DownStabilization
		case 6:
			p.UpPercent, p.UpPods = q.UpPercent, q.UpPods
		case 7:
			p.DownPercent = q.DownPercent
		}
	}
	return p
}

// round is round r's n candidates: the first holds the policy as
// configured, the HPA's defaults and capacity sizing's defaults, then
// random ones; later rounds mutate members of the front, with a quarter
// drawn afresh.
func (o Options) round(r *rand.Rand, k, n int, fr []Candidate) []Params {
	var ps []Params
	if k == 0 {
		ps = append(ps, paramsOf(o.Policy), paramsOf(autoscaler.HPADefaults(o.Policy)), defaultCapacityParams())
	}
	for len(ps) < n {
		if k == 0 || len(fr) == 0 || r.IntN(4) == 0 {
			ps = append(ps, o.random(r))
			continue
		}
		ps = append(ps, o.mutate(r, fr[r.IntN(len(fr))].Params))
	}
	return ps[:n]
}

// defaultCapacityParams are capacity sizing's defaults with the HPA's
// other defaults.
func defaultCapacityParams() Params {
	p := paramsOf(autoscaler.DefaultPolicyConfig)
	p.CapacitySizing, p.Deviations, p.HeadroomWindow = true, autoscaler.DefaultHeadroom.Deviations, autoscaler.DefaultHeadroom.Window
	p.DownStabilization = model.Duration(autoscaler.DefaultCapacityScaleDownStabilization)
	return p
}

// paramsOf reads c's searched parameters (rate policies: the first of each
// type, or 0).
func paramsOf(c autoscaler.PolicyConfig) Params {
	p := Params{
		CapacitySizing:    c.CapacityPerInstance > 0,
		Tolerance:         c.Tolerance,
		UpStabilization:   c.Behavior.ScaleUp.Stabilization,
		DownStabilization: c.Behavior.ScaleDown.Stabilization,
	}
	if p.CapacitySizing {
		h := autoscaler.DefaultHeadroom
		if c.Headroom != nil {
			h = *c.Headroom
		}
		p.Deviations, p.HeadroomWindow = h.Deviations, h.Window
	}
	if c.Forecast != nil {
		p.Forecast, p.ForecastWindow, p.ForecastHorizon = c.Forecast.Method, c.Forecast.Window, c.Forecast.Horizon
	}
	for _, rp := range c.Behavior.ScaleUp.Policies {
		if rp.Type == autoscaler.RatePercent && p.UpPercent == 0 {
			p.UpPercent = rp.Value
		}
		if rp.Type == autoscaler.RatePods && p.UpPods == 0 {
			p.UpPods = rp.Value
		}
	}
	for _, rp := range c.Behavior.ScaleDown.Policies {
		if rp.Type == autoscaler.RatePercent && p.DownPercent == 0 {
			p.DownPercent = rp.Value
		}
	}
	return p
}

// apply sets p on a copy of c. The capacity of capacity sizing is the
// policy's capacity_per_instance, or capacity (the model's) when the policy
// has none.
func apply(c autoscaler.PolicyConfig, p Params, capacity float64) autoscaler.PolicyConfig {
	out := c
	out.Tolerance = p.Tolerance
	out.Behavior.ScaleUp.Stabilization = p.UpStabilization
	out.Behavior.ScaleDown.Stabilization = p.DownStabilization
	period := model.Duration(15 * time.Second)
	var up []autoscaler.RatePolicy
	if p.UpPercent > 0 {
		up = append(up, autoscaler.RatePolicy{Type: autoscaler.RatePercent, Value: p.UpPercent, Period: period})
	}
	if p.UpPods > 0 {
		up = append(up, autoscaler.RatePolicy{Type: autoscaler.RatePods, Value: p.UpPods, Period: period})
	}
	if len(up) > 0 {
		out.Behavior.ScaleUp.Policies, out.Behavior.ScaleUp.Select = up, autoscaler.SelectMax
	}
	if p.DownPercent > 0 {
		out.Behavior.ScaleDown.Policies = []autoscaler.RatePolicy{{Type: autoscaler.RatePercent, Value: p.DownPercent, Period: period}}
		out.Behavior.ScaleDown.Select = autoscaler.SelectMax
	}
	out.Forecast = nil
	if p.Forecast != "" {
		f := autoscaler.DefaultForecastConfig
		f.Method, f.Window, f.Horizon = p.Forecast, p.ForecastWindow, p.ForecastHorizon
		out.Forecast = &f
	}
	out.Headroom = nil
	if !p.CapacitySizing {
		out.CapacityPerInstance = 0
		out.ScaleUpQuery = ""
	} else {
		if out.CapacityPerInstance <= 0 {
			out.CapacityPerInstance = capacity
		}
		h := autoscaler.DefaultHeadroom
		h.Deviations, h.Window = p.Deviations, p.HeadroomWindow
		out.Headroom = &h
	}
	return out
}

// front is the Pareto front of cs by replica-hours (then overload, events).
func front(cs []Candidate) []Candidate {
	var out []Candidate
	for i, a := range cs {
		dominated := false
		for j, b := range cs {
			if i != j && dominates(b, a) {
				dominated = true
				break
			}
		}
		if !dominated && !slices.ContainsFunc(out, func(c Candidate) bool { return same(c, a) }) {
			out = append(out, a)
		}
	}
	slices.SortStableFunc(out, func(a, b Candidate) int {
		switch {
		case a.ReplicaHours != b.ReplicaHours:
			return cmpFloat(a.ReplicaHours, b.ReplicaHours)
		case a.OverloadedMinutes != b.OverloadedMinutes:
			return cmpFloat(a.OverloadedMinutes, b.OverloadedMinutes)
		}
		return a.ScaleEvents - b.ScaleEvents
	})
	return out
}

func cmpFloat(a, b float64) int {
	if a < b {
		return -1
	}
	return 1
}

func same(a, b Candidate) bool {
	return a.ReplicaHours == b.ReplicaHours && a.OverloadedMinutes == b.OverloadedMinutes && a.ScaleEvents == b.ScaleEvents
}

// dominates: a is at least as good as b on all three figures and better on one.
func dominates(a, b Candidate) bool {
	le := a.ReplicaHours <= b.ReplicaHours && a.OverloadedMinutes <= b.OverloadedMinutes && a.ScaleEvents <= b.ScaleEvents
	return le && !same(a, b)
}

// recommend is the front's member with the fewest replica-hours (then
// events) within the overload bound, or its least overloaded one.
func recommend(fr []Candidate, bound float64) (Candidate, bool) {
	best, ok := Candidate{}, false
	for _, c := range fr {
		if c.OverloadedMinutes > bound {
			continue
		}
		if !ok || c.ReplicaHours < best.ReplicaHours || (c.ReplicaHours == best.ReplicaHours && c.ScaleEvents < best.ScaleEvents) {
			best, ok = c, true
		}
	}
	if ok {
		return best, true
	}
	for i, c := range fr {
		if i == 0 || c.OverloadedMinutes < best.OverloadedMinutes {
			best = c
		}
	}
	return best, false
}

// snippet is the part of a policy the search sets, as YAML.
type snippet struct {
	CapacityPerInstance float64                    `yaml:"capacity_per_instance,omitempty"`
	Headroom            *autoscaler.HeadroomConfig `yaml:"headroom,omitempty"`
	Forecast            *forecastSnippet           `yaml:"forecast,omitempty"`
	Tolerance           float64                    `yaml:"tolerance"`
	Behavior            behaviorSnippet            `yaml:"behavior"`
}

type forecastSnippet struct {
	Method  autoscaler.ForecastMethod `yaml:"method"`
	Window  model.Duration            `yaml:"window"`
	Horizon model.Duration            `yaml:"horizon"`
}

type behaviorSnippet struct {
	ScaleUp   rulesSnippet `yaml:"scale_up"`
	ScaleDown rulesSnippet `yaml:"scale_down"`
}

type rulesSnippet struct {
	Stabilization model.Duration    `yaml:"stabilization"`
	Policies      []rateSnippet     `yaml:"policies,flow"`
	Select        autoscaler.Select `yaml:"select"`
}

type rateSnippet struct {
	Type   autoscaler.RateType `yaml:"type"`
	Value  int                 `yaml:"value"`
	Period model.Duration      `yaml:"period"`
}

// Snippet is c's searched keys as YAML, to paste into the policy.
func Snippet(c autoscaler.PolicyConfig) (string, error) {
	s := snippet{CapacityPerInstance: c.CapacityPerInstance, Headroom: c.Headroom, Tolerance: c.Tolerance}
	if c.Forecast != nil {
		s.Forecast = &forecastSnippet{Method: c.Forecast.Method, Window: c.Forecast.Window, Horizon: c.Forecast.Horizon}
	}
	rules := func(r autoscaler.ScalingRules) rulesSnippet {
		out := rulesSnippet{Stabilization: r.Stabilization, Select: r.Select}
		for _, p := range r.Policies {
			out.Policies = append(out.Policies, rateSnippet(p))
		}
		return out
	}
	s.Behavior = behaviorSnippet{ScaleUp: rules(c.Behavior.ScaleUp), ScaleDown: rules(c.Behavior.ScaleDown)}
	b, err := yaml.Marshal(s)
	return string(b), err
}
