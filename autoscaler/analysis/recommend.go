package analysis

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/tidewatch/tidewatch/autoscaler"
)

// Recommendation rules.
const (
	// TargetUtilization is per_instance as a share of the capacity: the
	// backtest's default capacity is per_instance/0.7, the same margin.
	TargetUtilization = 0.7
	// MaxHeadroom is max's margin over the stored peak.
	MaxHeadroom = 1.25
	// floorQuantile is the share of an hour's load a schedule floor keeps
	// provisioned: the load that hour reliably has.
	floorQuantile = 0.1
)

// sig3 rounds v to three significant figures.
func sig3(v float64) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 3, 64), 64)
	return f
}

// quantile of vs (sorted in place).
func quantile(vs []float64, q float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	slices.Sort(vs)
	return vs[min(len(vs)-1, int(q*float64(len(vs))))]
}

// recommend sizes a policy for the stored load given one instance's
// capacity: per_instance at TargetUtilization of it; min for the 5th
// percentile of the load and max for MaxHeadroom × its peak, both at
// per_instance; schedule floors from the daily (or, with two weeks,
// weekly) profile.
func recommend(load []autoscaler.Point, capacity float64) *Settings {
	per := sig3(TargetUtilization * capacity)
	vs := make([]float64, len(load))
	for i, p := range load {
		vs[i] = p.V
	}
	peak := quantile(vs, 1)
	lo := quantile(vs, 0.05)
	s := &Settings{PerInstance: per, CapacityPerInstance: sig3(capacity)}
	s.Min = max(1, int(math.Ceil(lo/per)))
	s.Max = max(s.Min+1, int(math.Ceil(MaxHeadroom*peak/per)))
	s.Schedule, s.Notes = scheduleFloors(load, per, s.Min)
	return s
}

// scheduleFloors are cron floors for the hours whose load reliably (its
// floorQuantile) needs more than min replicas at per_instance. Hours of
// the same floor in a row are one entry. They need two days of history
// (hours of the day) or two weeks (hours of the week); hours are UTC.
func scheduleFloors(load []autoscaler.Point, per float64, minReplicas int) ([]autoscaler.ScheduleConfig, []string) {
	out := []autoscaler.ScheduleConfig{}
	if len(load) < 2 {
		return out, []string{"no schedule: too little history"}
	}
	span := load[len(load)-1].T.Sub(load[0].T)
	weekly := span >= 14*24*time.Hour
	if span < 48*time.Hour {
		return out, []string{fmt.Sprintf("no schedule floors: they need at least two days of history to see a daily profile (%s stored)", span.Round(time.Minute))}
	}
	slots := 24
	if weekly {
		slots = 7 * 24
	}
	byHour := make([][]float64, slots)
	for _, p := range load {
		t := p.T.UTC()
		k := t.Hour()
		if weekly {
			k += 24 * int(t.Weekday())
		}
		byHour[k] = append(byHour[k], p.V)
	}
	floors := make([]int, slots)
	for k, vs := range byHour {
		floors[k] = int(math.Ceil(quantile(vs, floorQuantile) / per))
	}
	for k := 0; k < slots; {
		f := floors[k]
		n := 1
		for k+n < slots && floors[k+n] == f && (k+n)%24 != 0 {
			n++
		}
		if f > minReplicas {
			dow := "*"
			if weekly {
				dow = strconv.Itoa(k / 24)
			}
			out = append(out, autoscaler.ScheduleConfig{
				Cron: fmt.Sprintf("0 %d * * %s", k%24, dow), Duration: model.Duration(time.Duration(n) * time.Hour), Min: f})
		}
		k += n
	}
	profile := "daily"
	if weekly {
		profile = "weekly"
	}
	return out, []string{fmt.Sprintf("schedule floors from the %s profile (UTC hours): the %.0fth percentile of each hour's load at per_instance", profile, 100*floorQuantile)}
}

// settingsYAML is s as a policy snippet, its first metric's query q.
func settingsYAML(s *Settings, q string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "min: %d\nmax: %d\ncapacity_per_instance: %g\nmetrics:\n  - {query: %s, per_instance: %g}\n", s.Min, s.Max, s.CapacityPerInstance, quoteYAML(q), s.PerInstance)
	if len(s.Schedule) > 0 {
		b.WriteString("schedule:\n")
		for _, e := range s.Schedule {
			fmt.Fprintf(&b, "  - {cron: %q, duration: %s, min: %d}\n", e.Cron, e.Duration, e.Min)
		}
	}
	return b.String()
}

// quoteYAML single-quotes s for YAML.
func quoteYAML(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Run is one contender's figures in the replay.
type Run struct {
	Name string `json:"name"`
	// ReplicaHours and Cost (ReplicaHours × cost_per_replica_hour).
	ReplicaHours float64 `json:"replica_hours"`
	Cost         float64 `json:"cost"`
	// OverloadedMinutes are the minutes the load exceeded what the ready
	// replicas serve within the objective (ready × capacity_per_instance);
	// unknown (0) for the measured run.
	OverloadedMinutes float64 `json:"overloaded_minutes"`
	ScaleEvents       int     `json:"scale_events"`
	MinReplicas       int     `json:"min_replicas"`
	MaxReplicas       int     `json:"max_replicas"`
}

// Cost compares the replica-hours of the job's settings.
type Cost struct {
	// Model is the reference model the load is replayed through (its
	// capacity the recommended capacity_per_instance).
	CapacityPerInstance float64 `json:"capacity_per_instance"`
	StartupSeconds      float64 `json:"startup_seconds"`
	// Measured is what the job ran: its up targets over time.
	Measured Run `json:"measured"`
	// Current is today's policy replayed (autoscaled jobs).
	Current *Run `json:"current,omitempty"`
	// Recommended is the recommended settings replayed.
	Recommended Run `json:"recommended"`
	// Static is the peak provisioned all the time (enough replicas for
	// the peak at the recommended per_instance).
	Static Run `json:"static"`
	// Savings are the recommended settings' replica-hours and cost below
	// today's (the replayed policy, else what the job ran), and as a share.
	SavingsReplicaHours float64  `json:"savings_replica_hours"`
	SavingsCost         float64  `json:"savings_cost"`
	SavingsRatio        float64  `json:"savings_ratio"`
	SavingsAgainst      string   `json:"savings_against"`
	Notes               []string `json:"notes,omitempty"`
}

// perSecond holds each point's value until the next (the last for one
// step).
func perSecond(load []autoscaler.Point, step time.Duration) []float64 {
	var out []float64
	for i, p := range load {
		end := p.T.Add(step)
		if i+1 < len(load) {
			end = load[i+1].T
		}
		for n := int(end.Sub(p.T) / time.Second); n > 0; n-- {
			out = append(out, p.V)
		}
	}
	return out
}

func (a *analyzer) run(name string, r autoscaler.ModelRun) Run {
	return Run{Name: name, ReplicaHours: r.ReplicaHours, Cost: r.ReplicaHours * a.cfg.CostPerReplicaHour,
		OverloadedMinutes: r.OverloadedMinutes, ScaleEvents: r.ScaleEvents, MinReplicas: r.MinReplicas, MaxReplicas: r.MaxReplicas}
}

// recommendedPolicy is the policy the recommendation replays: today's
// with the recommended sizing keys, or, for a job that does not
// autoscale, the HPA's defaults on the summed load query.
func recommendedPolicy(o Objective, pc autoscaler.PolicyConfig, hasPolicy bool, qs Queries, rec *Settings) autoscaler.PolicyConfig {
	if !hasPolicy {
		pc = autoscaler.DefaultPolicyConfig
		pc.Name = o.Job
		pc.Behavior.ScaleUp.Policies = slices.Clone(autoscaler.DefaultBehavior.ScaleUp.Policies)
		pc.Behavior.ScaleDown.Policies = slices.Clone(autoscaler.DefaultBehavior.ScaleDown.Policies)
		pc.Metrics = []autoscaler.MetricConfig{{Query: "sum(" + qs.Load + ")"}}
	}
	pc.Metrics = slices.Clone(pc.Metrics)
	pc.Metrics[0].PerInstance, pc.Metrics[0].Utilization = rec.PerInstance, 0
	pc.Min, pc.Max = rec.Min, rec.Max
	pc.CapacityPerInstance = rec.CapacityPerInstance
	pc.Schedule = rec.Schedule
	return pc
}

// cost replays the stored load through today's policy, the recommended
// one and a static peak capacity in the reference model, and measures
// what the job ran. It returns the recommended replicas at the series'
// times.
func (a *analyzer) cost(o Objective, pc autoscaler.PolicyConfig, hasPolicy bool, qs Queries, rec *Settings, s Series) (*Cost, []float64, error) {
	step := a.cfg.step()
	load := perSecond(totalLoad(s), step)
	if len(load) == 0 {
		return nil, nil, fmt.Errorf("%w: no load to replay", ErrTooLittleData)
	}
	start := time.Unix(s.Time[0], 0)
	m := autoscaler.DefaultModel
	m.Capacity = rec.CapacityPerInstance
	initial := max(1, int(math.Round(s.Instances[0])))
	c := &Cost{CapacityPerInstance: m.Capacity, StartupSeconds: m.Startup.Seconds()}

	measured := Run{Name: "measured", MinReplicas: math.MaxInt}
	for i, n := range s.Instances {
		d := step
		if i+1 < len(s.Time) {
			d = time.Duration(s.Time[i+1]-s.Time[i]) * time.Second
		}
		measured.ReplicaHours += n * d.Hours()
		measured.MinReplicas = min(measured.MinReplicas, int(n))
		measured.MaxReplicas = max(measured.MaxReplicas, int(n))
		if i > 0 && n != s.Instances[i-1] {
			measured.ScaleEvents++
		}
	}
	measured.Cost = measured.ReplicaHours * a.cfg.CostPerReplicaHour
	c.Measured = measured
	c.Notes = append(c.Notes, "measured overloaded minutes are not known: see the latency against the objective instead")

	if hasPolicy {
		if len(pc.Metrics) == 0 || pc.Metrics[0].PerInstance <= 0 {
			c.Notes = append(c.Notes, "today's policy is not replayed: "+errNoReplay.Error())
		} else {
			r, err := autoscaler.SimulateLoad(pc, load, start, initial, m)
			if err != nil {
				return nil, nil, fmt.Errorf("replay today's policy: %w", err)
			}
			cur := a.run("current", r)
			c.Current = &cur
		}
	}
	rp := recommendedPolicy(o, pc, hasPolicy, qs, rec)
	r, err := autoscaler.SimulateLoad(rp, load, start, initial, m)
	if err != nil {
		return nil, nil, fmt.Errorf("replay the recommended settings: %w", err)
	}
	c.Recommended = a.run("recommended", r)
	rec.YAML = settingsYAML(rec, rp.Metrics[0].Query)
	peak := slices.Max(load)
	static := max(1, int(math.Ceil(peak/rec.PerInstance)))
	c.Static = a.run("static", autoscaler.StaticLoad(static, load, rec.PerInstance, m))

	base := c.Measured
	c.SavingsAgainst = "measured"
	if c.Current != nil {
		base, c.SavingsAgainst = *c.Current, "current"
	}
	c.SavingsReplicaHours = base.ReplicaHours - c.Recommended.ReplicaHours
	c.SavingsCost = base.Cost - c.Recommended.Cost
	if base.ReplicaHours > 0 {
		c.SavingsRatio = c.SavingsReplicaHours / base.ReplicaHours
	}

	// The recommended replicas at the series' times, from the replay's
	// scale events.
	replicas := make([]float64, len(s.Time))
	n, k := initial, 0
	for i, t := range s.Time {
		for k < len(r.Timeline) && !r.Timeline[k].Time.After(time.Unix(t, 0)) {
			n = r.Timeline[k].Replicas
			k++
		}
		replicas[i] = float64(n)
	}
	return c, replicas, nil
}
