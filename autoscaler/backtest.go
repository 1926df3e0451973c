package autoscaler

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Backtest replays a policy over a recorded load through the same decision
// engine the live autoscaler uses, without touching a backend: the
// simulated target has exactly the replicas the engine decided, from the
// next evaluation on.
type Backtest struct {
	Policy PolicyConfig
	// Metrics holds each metric's history (oldest first), one slice per
	// policy metric. The first metric must be per_instance: it is the load
	// against which provisioning is judged.
	Metrics [][]Point
	From    time.Time
	To      time.Time
	// Initial is the replica count at From; 0 means the policy's min.
	Initial int
	// Static is the static baseline's replica count; 0 means enough for the
	// peak load (at least min).
	Static int
}

// BacktestReport compares the policy with the HPA's default behaviour and
// with a static capacity on the same load.
type BacktestReport struct {
	Policy      string      `json:"policy"`
	From        time.Time   `json:"from"`
	To          time.Time   `json:"to"`
	Interval    string      `json:"interval"`
	Evaluations int         `json:"evaluations"`
	PeakLoad    float64     `json:"peak_load"`
	Target      float64     `json:"target_per_instance"`
	Runs        []RunReport `json:"runs"`
}

// RunReport is one contender's result.
type RunReport struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	ScaleEvents int    `json:"scale_events"`
	ScaleUps    int    `json:"scale_ups"`
	ScaleDowns  int    `json:"scale_downs"`
	// ReplicaHours is the integral of the replica count over time.
	ReplicaHours float64 `json:"replica_hours"`
	// MinutesUnderProvisioned is the time the load per replica was above the target.
	MinutesUnderProvisioned float64 `json:"minutes_under_provisioned"`
	// PeakUtilization is the highest load per replica divided by the target.
	PeakUtilization float64 `json:"peak_utilization"`
	MinReplicas     int     `json:"min_replicas"`
	MaxReplicas     int     `json:"max_replicas"`
	MeanReplicas    float64 `json:"mean_replicas"`
	// Timeline is the replica count after each scale event.
	Timeline []TimelinePoint `json:"timeline,omitempty"`
}

// TimelinePoint is a scale event of a run.
type TimelinePoint struct {
	Time     time.Time `json:"time"`
	Replicas int       `json:"replicas"`
	Reason   string    `json:"reason"`
}

// HPADefaults returns c as a plain Kubernetes HPA would run it: the same
// targets, limits and metrics, with the HPA's default behavior, tolerance and
// 15 s sync period, and no forecast, schedule or fallback.
func HPADefaults(c PolicyConfig) PolicyConfig {
	h := c
	h.Behavior = DefaultBehavior
	h.Tolerance = DefaultPolicyConfig.Tolerance
	h.Interval = DefaultPolicyConfig.Interval
	h.Forecast = nil
	h.Schedule = nil
	h.OnMetricError = OnMetricError{}
	return h
}

// Run replays the policy, the HPA defaults and the static baseline.
func (b Backtest) Run() (*BacktestReport, error) {
	c := b.Policy
	if len(c.Metrics) == 0 || c.Metrics[0].PerInstance <= 0 {
		return nil, errors.New("backtest: the policy's first metric must be per_instance (it is the load)")
	}
	if len(b.Metrics) != len(c.Metrics) {
		return nil, fmt.Errorf("backtest: %d metric histories for %d metrics", len(b.Metrics), len(c.Metrics))
	}
	if !b.To.After(b.From) {
		return nil, errors.New("backtest: --to must be after --from")
	}
	target := c.Metrics[0].PerInstance
	rep := &BacktestReport{Policy: c.Name, From: b.From, To: b.To, Interval: c.Interval.String(), Target: target}
	for _, p := range b.Metrics[0] {
		if !p.T.Before(b.From) && !p.T.After(b.To) && !math.IsNaN(p.V) {
			rep.PeakLoad = max(rep.PeakLoad, p.V)
		}
	}
	policyRun, n, err := b.simulate("policy", fmt.Sprintf("policy %s as configured", c.Name), c)
	if err != nil {
		return nil, err
	}
	rep.Evaluations = n
	hpaRun, _, err := b.simulate("hpa_default", "the same targets and limits with the Kubernetes HPA's default behavior (15 s sync, tolerance 0.1, no forecast)", HPADefaults(c))
	if err != nil {
		return nil, err
	}
	static := b.Static
	if static <= 0 {
		static = max(c.Min, int(math.Ceil(rep.PeakLoad/target)), 1)
	}
	rep.Runs = []RunReport{policyRun, hpaRun, b.staticRun(static, target)}
	return rep, nil
}

// valueAt returns the last value at or before t within lookback.
func valueAt(pts []Point, t time.Time, lookback time.Duration) (float64, bool) {
	i := sort.Search(len(pts), func(i int) bool { return pts[i].T.After(t) })
	if i == 0 {
		return 0, false
	}
	p := pts[i-1]
	if t.Sub(p.T) > lookback || math.IsNaN(p.V) {
		return 0, false
	}
	return p.V, true
}

// window returns the points in (t-w, t].
func window(pts []Point, t time.Time, w time.Duration) []Point {
	lo := sort.Search(len(pts), func(i int) bool { return pts[i].T.After(t.Add(-w)) })
	hi := sort.Search(len(pts), func(i int) bool { return pts[i].T.After(t) })
	return pts[lo:hi]
}

// lookback is how far back a value counts, as PromQL's default lookback delta.
const lookback = 5 * time.Minute

type accounting struct {
	target   float64
	run      *RunReport
	sumRepl  float64
	steps    int
	minRepl  int
	maxRepl  int
	lastTime time.Time
}

func (a *accounting) add(replicas int, load float64, haveLoad bool, dt time.Duration) {
	a.run.ReplicaHours += float64(replicas) * dt.Hours()
	a.sumRepl += float64(replicas)
	a.steps++
	if a.steps == 1 || replicas < a.minRepl {
		a.minRepl = replicas
	}
	a.maxRepl = max(a.maxRepl, replicas)
	if !haveLoad {
		return
	}
	util := math.Inf(1)
	if replicas > 0 {
		util = load / float64(replicas) / a.target
	} else if load == 0 {
		util = 0
	}
	a.run.PeakUtilization = max(a.run.PeakUtilization, util)
	if util > 1 {
		a.run.MinutesUnderProvisioned += dt.Minutes()
	}
}

func (a *accounting) finish() RunReport {
	a.run.MinReplicas, a.run.MaxReplicas = a.minRepl, a.maxRepl
	if a.steps > 0 {
		a.run.MeanReplicas = a.sumRepl / float64(a.steps)
	}
	a.run.ReplicaHours = round(a.run.ReplicaHours, 3)
	a.run.MinutesUnderProvisioned = round(a.run.MinutesUnderProvisioned, 2)
	a.run.PeakUtilization = round(a.run.PeakUtilization, 3)
	a.run.MeanReplicas = round(a.run.MeanReplicas, 2)
	return *a.run
}

func round(v float64, digits int) float64 {
	if math.IsInf(v, 0) {
		return v
	}
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func (b Backtest) simulate(name, desc string, c PolicyConfig) (RunReport, int, error) {
	p, err := NewPolicy(c)
	if err != nil {
		return RunReport{}, 0, err
	}
	step := p.Interval
	replicas := b.Initial
	if replicas <= 0 {
		replicas = c.Min
	}
	acc := accounting{target: c.Metrics[0].PerInstance, run: &RunReport{Name: name, Description: desc}}
	var st State
	n := 0
	for t := b.From; t.Before(b.To); t = t.Add(step) {
		n++
		in := Input{Now: t, Current: replicas}
		for _, pts := range b.Metrics {
			v, ok := valueAt(pts, t, lookback)
			o := Observation{Value: v}
			if !ok {
				o.Err = ErrEmpty
			} else if c.Forecast != nil {
				if f, err := Forecast(*c.Forecast, window(pts, t, time.Duration(c.Forecast.Window))); err == nil {
					o.Forecast, o.HasForecast = f, true
				}
			}
			in.Metrics = append(in.Metrics, o)
		}
		ev := p.Decide(&st, in)
		load, haveLoad := valueAt(b.Metrics[0], t, lookback)
		if ev.Desired != replicas {
			acc.run.ScaleEvents++
			if ev.Desired > replicas {
				acc.run.ScaleUps++
			} else {
				acc.run.ScaleDowns++
			}
			acc.run.Timeline = append(acc.run.Timeline, TimelinePoint{Time: t, Replicas: ev.Desired, Reason: ev.Reason()})
			st.RecordScale(t, replicas, ev.Desired)
			replicas = ev.Desired
		}
		dt := min(step, b.To.Sub(t))
		acc.add(replicas, load, haveLoad, dt)
	}
	return acc.finish(), n, nil
}

func (b Backtest) staticRun(replicas int, target float64) RunReport {
	acc := accounting{target: target, run: &RunReport{Name: "static", Description: fmt.Sprintf("a static %d replicas (enough for the peak load unless --static is given)", replicas)}}
	step := time.Duration(b.Policy.Interval)
	for t := b.From; t.Before(b.To); t = t.Add(step) {
		load, ok := valueAt(b.Metrics[0], t, lookback)
		acc.add(replicas, load, ok, min(step, b.To.Sub(t)))
	}
	return acc.finish()
}

// ReadLoadCSV reads a recorded load: a header row, then rows of a time
// column and a value column. The time column is a minute index (as in the
// NASA trace: "minute"), Unix seconds, or RFC 3339. Row i happens at start +
// offset/speedup, where offset is its time since the first row.
func ReadLoadCSV(r io.Reader, start time.Time, speedup float64) ([]Point, error) {
	if speedup <= 0 {
		return nil, errors.New("speedup must be positive")
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read csv header: %w", err)
	}
	if len(header) < 2 {
		return nil, fmt.Errorf("csv header %q: want a time column and a value column", strings.Join(header, ","))
	}
	minutes := strings.EqualFold(strings.TrimSpace(header[0]), "minute")
	var pts []Point
	var first time.Time
	line := 1
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line++
		if err != nil {
			return nil, fmt.Errorf("read csv line %d: %w", line, err)
		}
		if len(rec) < 2 {
			return nil, fmt.Errorf("csv line %d: want 2 columns", line)
		}
		var at time.Time
		ts := strings.TrimSpace(rec[0])
		switch f, err := strconv.ParseFloat(ts, 64); {
		case err == nil && minutes:
			at = time.Unix(0, 0).Add(time.Duration(f * float64(time.Minute)))
		case err == nil:
			at = time.Unix(0, int64(f*1e9))
		default:
			if at, err = time.Parse(time.RFC3339, ts); err != nil {
				return nil, fmt.Errorf("csv line %d: time %q is neither a number nor RFC 3339", line, ts)
			}
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rec[1]), 64)
		if err != nil {
			return nil, fmt.Errorf("csv line %d: value %q: %w", line, rec[1], err)
		}
		if len(pts) == 0 {
			first = at
		}
		off := time.Duration(float64(at.Sub(first)) / speedup)
		pts = append(pts, Point{T: start.Add(off), V: v})
	}
	if len(pts) == 0 {
		return nil, errors.New("csv has no rows")
	}
	return pts, nil
}

// Table writes the report as a text table.
func (r *BacktestReport) Table(w io.Writer) {
	fmt.Fprintf(w, "Backtest of policy %s from %s to %s: %d evaluations every %s; peak load %.4g, target %.4g per instance.\n\n",
		r.Policy, r.From.Format(time.RFC3339), r.To.Format(time.RFC3339), r.Evaluations, r.Interval, r.PeakLoad, r.Target)
	fmt.Fprintf(w, "%-12s %12s %10s %14s %18s %12s %18s\n", "run", "scale events", "ups/downs", "replica-hours", "min under-provis.", "peak util.", "replicas min/avg/max")
	for _, run := range r.Runs {
		fmt.Fprintf(w, "%-12s %12d %10s %14.2f %18.1f %12.2f %18s\n", run.Name, run.ScaleEvents,
			fmt.Sprintf("%d/%d", run.ScaleUps, run.ScaleDowns), run.ReplicaHours, run.MinutesUnderProvisioned, run.PeakUtilization,
			fmt.Sprintf("%d/%.1f/%d", run.MinReplicas, run.MeanReplicas, run.MaxReplicas))
	}
	fmt.Fprintln(w)
	for _, run := range r.Runs {
		fmt.Fprintf(w, "%s: %s\n", run.Name, run.Description)
	}
}
