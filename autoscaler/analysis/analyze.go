package analysis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"

	"github.com/tidewatch/tidewatch/autoscaler"
	"github.com/tidewatch/tidewatch/store"
)

// Input is the part of the configuration an analysis depends on.
type Input struct {
	Analysis Config
	// Policies are the autoscaling policies; each is matched to the
	// objective of the job it scales.
	Policies []autoscaler.PolicyConfig
	// Jobs are the scraped jobs (scrape_configs' job_name), so that a job
	// without an objective is reported as such.
	Jobs []string
}

// Source is where the stored history is read from.
type Source struct {
	Engine    promql.QueryEngine
	Queryable storage.Queryable
}

// Open opens the configured store for reading beside a running Tidewatch
// (store.OpenReadOnly) with a query engine under query's limits. The
// caller closes the returned closer.
func Open(storage store.Config, query store.QueryConfig, logger *slog.Logger) (Source, func() error, error) {
	q, err := store.OpenReadOnly(storage, logger)
	if err != nil {
		return Source{}, nil, fmt.Errorf("open the store: %w", err)
	}
	engine := store.NewLimitedEngine(store.NewEngine(query, logger, nil), query.WithDefaults())
	return Source{Engine: engine, Queryable: q}, q.Close, nil
}

// Report is an analysis: one entry per objective, and what could not be
// analysed.
type Report struct {
	From               time.Time `json:"from"`
	To                 time.Time `json:"to"`
	StepSeconds        float64   `json:"step_seconds"`
	CostPerReplicaHour float64   `json:"cost_per_replica_hour"`
	Jobs               []Job     `json:"jobs"`
	// Unanalyzed are the scraped jobs and policies without an objective.
	Unanalyzed []Unanalyzed `json:"unanalyzed"`
}

// Unanalyzed is a job or policy the analysis skipped, and why.
type Unanalyzed struct {
	Job    string `json:"job,omitempty"`
	Policy string `json:"policy,omitempty"`
	Reason string `json:"reason"`
}

// Job is the analysis of one objective's job.
type Job struct {
	Job string `json:"job"`
	// Policy is the policy that scales the job; empty when none does.
	Policy     string  `json:"policy,omitempty"`
	Autoscaled bool    `json:"autoscaled"`
	Queries    Queries `json:"queries"`
	// Error says why the job could not be analysed (too little data, a
	// failing query); the fields below it are then partly empty.
	Error    string    `json:"error,omitempty"`
	Capacity *Capacity `json:"capacity,omitempty"`
	// Current are the policy's settings today.
	Current     *Settings `json:"current,omitempty"`
	Recommended *Settings `json:"recommended,omitempty"`
	Cost        *Cost     `json:"cost,omitempty"`
	Series      Series    `json:"series"`
	// FitSamples are the samples the fit was made on (at most 600, evenly
	// picked), for charts.
	FitSamples       []Sample `json:"fit_samples,omitempty"`
	ObjectiveSamples []Sample `json:"objective_samples,omitempty"`
}

// Capacity is one instance's capacity.
type Capacity struct {
	Estimate
	// ErrorRatioThreshold and ErrorBreaking: the lowest per-instance load
	// at which the error ratio broke its threshold (nil: not within the
	// observed load, or no error objective).
	ErrorRatioThreshold float64  `json:"error_ratio_threshold,omitempty"`
	ErrorBreaking       *float64 `json:"error_breaking_per_instance"`
	// PerInstance is what one instance serves within the objective: the
	// lower of the two breaking points. LimitedBy names which.
	PerInstance float64 `json:"capacity_per_instance"`
	LimitedBy   string  `json:"limited_by"`
}

// Settings are a policy's sizing keys.
type Settings struct {
	PerInstance         float64                     `json:"per_instance"`
	CapacityPerInstance float64                     `json:"capacity_per_instance,omitempty"`
	Min                 int                         `json:"min"`
	Max                 int                         `json:"max"`
	Schedule            []autoscaler.ScheduleConfig `json:"schedule"`
	// Notes explain choices (why there is no schedule, …).
	Notes []string `json:"notes,omitempty"`
	// YAML is the settings as a policy snippet.
	YAML string `json:"yaml,omitempty"`
}

// Series are the job's stored history at the analysis step, for charts.
type Series struct {
	Time []int64 `json:"time"` // Unix seconds
	// Load is the job's total requests per second (the load query summed).
	Load []float64 `json:"load"`
	// Instances is how many of the job's targets were up.
	Instances []float64 `json:"instances"`
	// Recommended is the replicas the recommended policy has in the
	// replay, at the same times.
	Recommended []float64 `json:"recommended,omitempty"`
}

// Analyze reads the history between from and to through src and analyses
// every objective of in.
func Analyze(ctx context.Context, in Input, src Source, from, to time.Time, logger *slog.Logger) (*Report, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if !to.After(from) {
		return nil, fmt.Errorf("--to (%s) is not after --from (%s)", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	c := in.Analysis
	rep := &Report{From: from, To: to, StepSeconds: c.step().Seconds(), CostPerReplicaHour: c.CostPerReplicaHour, Jobs: []Job{}, Unanalyzed: []Unanalyzed{}}
	covered := map[string]bool{}
	usedPolicy := map[string]bool{}
	for i, o := range c.Objectives {
		covered[o.Job] = true
		pc, hasPolicy := policyFor(o, in.Policies)
		if hasPolicy {
			usedPolicy[pc.Name] = true
		}
		a := analyzer{cfg: c, src: src, from: from, to: to, logger: logger.With("job", o.Job)}
		j := a.job(ctx, o, pc, hasPolicy, uint64(i+1))
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rep.Jobs = append(rep.Jobs, j)
	}
	for _, job := range in.Jobs {
		if !covered[job] {
			rep.Unanalyzed = append(rep.Unanalyzed, Unanalyzed{Job: job, Reason: "no objective: add one under analysis.objectives"})
		}
	}
	for _, p := range in.Policies {
		if !usedPolicy[p.Name] {
			rep.Unanalyzed = append(rep.Unanalyzed, Unanalyzed{Policy: p.Name,
				Reason: fmt.Sprintf("no objective for the job it scales: add one with job %q or policy %q under analysis.objectives", p.Target.Name, p.Name)})
		}
	}
	return rep, nil
}

// policyFor is the objective's policy: the one it names, else the one
// whose target is named as the job.
func policyFor(o Objective, ps []autoscaler.PolicyConfig) (autoscaler.PolicyConfig, bool) {
	for _, p := range ps {
		if o.Policy != "" && p.Name == o.Policy || o.Policy == "" && p.Target.Name == o.Job {
			return p, true
		}
	}
	return autoscaler.PolicyConfig{}, false
}

type analyzer struct {
	cfg      Config
	src      Source
	from, to time.Time
	logger   *slog.Logger
}

func (a *analyzer) job(ctx context.Context, o Objective, pc autoscaler.PolicyConfig, hasPolicy bool, seed uint64) Job {
	j := Job{Job: o.Job, Autoscaled: hasPolicy}
	if hasPolicy {
		j.Policy = pc.Name
		j.Current = current(pc)
	}
	fail := func(err error) Job {
		a.logger.Warn("analysis incomplete", "err", err)
		j.Error = err.Error()
		return j
	}
	hist := o.Histogram
	if hist == "" && (o.LoadQuery == "" || o.LatencyQuery == "") {
		h, err := a.findHistogram(ctx, o.Job)
		if err != nil {
			return fail(err)
		}
		hist = h
	}
	qs, err := o.Queries(hist, a.cfg.window())
	j.Queries = qs
	if err != nil {
		return fail(err)
	}
	load, err := a.matrix(ctx, qs.Load)
	if err != nil {
		return fail(fmt.Errorf("load query: %w", err))
	}
	if len(load) == 0 {
		return fail(fmt.Errorf("%w: the load query has no data between %s and %s", ErrTooLittleData, a.from.Format(time.RFC3339), a.to.Format(time.RFC3339)))
	}
	instances, err := a.matrix(ctx, fmt.Sprintf(`sum(up{job=%q})`, o.Job))
	if err != nil {
		return fail(fmt.Errorf("instances query: %w", err))
	}
	j.Series = a.series(load, instances)

	fitM, err := a.matrix(ctx, qs.Fit)
	if err != nil {
		return fail(fmt.Errorf("fit latency query: %w", err))
	}
	objM := fitM
	if qs.Latency != qs.Fit {
		if objM, err = a.matrix(ctx, qs.Latency); err != nil {
			return fail(fmt.Errorf("latency query: %w", err))
		}
	}
	fit, obj := join(load, fitM), join(load, objM)
	if len(fit) == 0 {
		return fail(fmt.Errorf("%w: the load and latency queries share no series (both must return one series per instance, with the same labels)", ErrTooLittleData))
	}
	j.FitSamples, j.ObjectiveSamples = thin(fit, 600), thin(obj, 600)
	est, err := EstimateCapacity(fit, obj, o.LatencyThreshold, seed)
	if err != nil {
		return fail(err)
	}
	capa := &Capacity{Estimate: est, PerInstance: est.Breaking, LimitedBy: "latency"}
	if qs.ErrorRatio != "" {
		capa.ErrorRatioThreshold = o.ErrorRatioThreshold
		em, err := a.matrix(ctx, qs.ErrorRatio)
		if err != nil {
			return fail(fmt.Errorf("error ratio query: %w", err))
		}
		var es []ErrorSample
		for _, s := range join(load, em) {
			es = append(es, ErrorSample{Load: s.Load, Ratio: s.Latency})
		}
		if b, ok := ErrorBreaking(es, o.ErrorRatioThreshold); ok {
			capa.ErrorBreaking = &b
			if b < capa.PerInstance {
				capa.PerInstance, capa.LimitedBy = b, "error_ratio"
			}
		}
	}
	j.Capacity = capa
	if capa.PerInstance <= 0 {
		return fail(fmt.Errorf("the objective's latency (%.3gs) is under the latency at no load (%.3gs): no load meets it", o.LatencyThreshold, est.ObjectiveBase))
	}
	total := totalLoad(j.Series)
	rec := recommend(total, capa.PerInstance)
	j.Recommended = rec
	cost, replay, err := a.cost(o, pc, hasPolicy, qs, rec, j.Series)
	if err != nil {
		return fail(err)
	}
	j.Cost = cost
	j.Series.Recommended = replay
	return j
}

// findHistogram is the job's only *_duration_seconds histogram.
func (a *analyzer) findHistogram(ctx context.Context, job string) (string, error) {
	q, err := a.src.Queryable.Querier(a.from.UnixMilli(), a.to.UnixMilli())
	if err != nil {
		return "", err
	}
	defer q.Close()
	names, _, err := q.LabelValues(ctx, labels.MetricName, nil,
		labels.MustNewMatcher(labels.MatchEqual, "job", job),
		labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+_duration_seconds_count"))
	if err != nil {
		return "", fmt.Errorf("find the latency histogram of job %s: %w", job, err)
	}
	switch len(names) {
	case 0:
		return "", fmt.Errorf("%w: job %s has no *_duration_seconds histogram between %s and %s; set histogram, or load_query and latency_query",
			ErrTooLittleData, job, a.from.Format(time.RFC3339), a.to.Format(time.RFC3339))
	case 1:
		return strings.TrimSuffix(names[0], "_count"), nil
	default:
		for i := range names {
			names[i] = strings.TrimSuffix(names[i], "_count")
		}
		return "", fmt.Errorf("job %s has %d latency histograms (%s); name one with histogram", job, len(names), strings.Join(names, ", "))
	}
}

// series is one stored series: its labels without the name, and its
// points by time (Unix milliseconds).
type series struct {
	key    string
	points map[int64]float64
	times  []int64
}

// matrix runs a range query over the analysis span. The result is copied
// out before the query is closed: the engine reuses its points.
func (a *analyzer) matrix(ctx context.Context, expr string) ([]series, error) {
	qry, err := a.src.Engine.NewRangeQuery(ctx, a.src.Queryable, nil, expr, a.from, a.to, a.cfg.step())
	if err != nil {
		return nil, err
	}
	defer qry.Close()
	res := qry.Exec(ctx)
	if res.Err != nil {
		return nil, res.Err
	}
	m, ok := res.Value.(promql.Matrix)
	if !ok {
		return nil, fmt.Errorf("not a range of series: %T", res.Value)
	}
	out := make([]series, 0, len(m))
	for _, s := range m {
		c := series{key: labels.NewBuilder(s.Metric).Del(labels.MetricName).Labels().String(), points: make(map[int64]float64, len(s.Floats))}
		for _, p := range s.Floats {
			c.points[p.T] = p.F
			c.times = append(c.times, p.T)
		}
		out = append(out, c)
	}
	return out, nil
}

// join pairs each load sample with the other query's sample of the same
// series and time.
func join(load, other []series) []Sample {
	byKey := map[string]map[int64]float64{}
	for _, s := range other {
		byKey[s.key] = s.points
	}
	var out []Sample
	for _, s := range load {
		m := byKey[s.key]
		for _, t := range s.times {
			if v, ok := m[t]; ok {
				out = append(out, Sample{Load: s.points[t], Latency: v})
			}
		}
	}
	return out
}

// thin keeps at most n samples, evenly picked.
func thin(s []Sample, n int) []Sample {
	if len(s) <= n {
		return s
	}
	out := make([]Sample, 0, n)
	for i := range n {
		out = append(out, s[i*len(s)/n])
	}
	return out
}

// series sums the load over instances on the step grid, with the up count.
func (a *analyzer) series(load, instances []series) Series {
	sum := map[int64]float64{}
	for _, s := range load {
		for t, v := range s.points {
			if !math.IsNaN(v) {
				sum[t] += v
			}
		}
	}
	up := map[int64]float64{}
	for _, s := range instances {
		maps.Copy(up, s.points)
	}
	var s Series
	for _, t := range slices.Sorted(maps.Keys(sum)) {
		s.Time = append(s.Time, t/1000)
		s.Load = append(s.Load, sum[t])
		s.Instances = append(s.Instances, up[t])
	}
	return s
}

func totalLoad(s Series) []autoscaler.Point {
	out := make([]autoscaler.Point, len(s.Time))
	for i, t := range s.Time {
		out[i] = autoscaler.Point{T: time.Unix(t, 0), V: s.Load[i]}
	}
	return out
}

func current(pc autoscaler.PolicyConfig) *Settings {
	s := &Settings{Min: pc.Min, Max: pc.Max, CapacityPerInstance: pc.CapacityPerInstance, Schedule: pc.Schedule}
	if len(pc.Metrics) > 0 {
		s.PerInstance = pc.Metrics[0].PerInstance
	}
	if s.Schedule == nil {
		s.Schedule = []autoscaler.ScheduleConfig{}
	}
	return s
}

// errNoReplay says why today's policy is not replayed.
var errNoReplay = errors.New("the policy's first metric is not per_instance, so it cannot be replayed against the load")
