package analysis

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/prometheus/common/model"

	"github.com/tidewatch/tidewatch/store"
)

// Config is the analysis section of the configuration file.
type Config struct {
	// CostPerReplicaHour prices one replica for one hour (any currency);
	// 0 reports replica-hours only.
	CostPerReplicaHour float64 `yaml:"cost_per_replica_hour,omitempty"`
	// Step is the resolution the stored history is read at.
	Step model.Duration `yaml:"step,omitempty"`
	// Window is the range of the default queries' rate() (it should span
	// at least four scrapes).
	Window model.Duration `yaml:"window,omitempty"`
	// Objectives are the service-level objectives capacity is measured
	// against, one per scraped job.
	Objectives []Objective `yaml:"objectives,omitempty"`
}

// Defaults of the analysis section.
const (
	DefaultStep            = time.Minute
	DefaultWindow          = 2 * time.Minute
	DefaultLatencyQuantile = 0.99
)

// Objective is one job's service-level objective: a latency and an
// optional error ratio, each a per-instance query and a threshold. An
// instance breaks the objective when either query crosses its threshold.
type Objective struct {
	// Job is the scraped job (its job label).
	Job string `yaml:"job"`
	// Policy is the autoscaling policy that scales the job (default: the
	// policy whose target name is the job, if there is one).
	Policy string `yaml:"policy,omitempty"`
	// Histogram is the job's classic latency histogram, without _bucket
	// (default: the job's only *_duration_seconds histogram in the store).
	// It gives the default load, latency and fit queries.
	Histogram string `yaml:"histogram,omitempty"`
	// LoadQuery is each instance's load in requests per second, one series
	// per instance (default: the rate of the histogram's _count by instance).
	LoadQuery string `yaml:"load_query,omitempty"`
	// LatencyQuery is each instance's latency in seconds, one series per
	// instance with the load query's labels (default: the histogram's
	// LatencyQuantile by instance).
	LatencyQuery string `yaml:"latency_query,omitempty"`
	// LatencyQuantile is the default latency query's quantile.
	LatencyQuantile float64 `yaml:"latency_quantile,omitempty"`
	// LatencyThreshold is the objective's latency in seconds.
	LatencyThreshold float64 `yaml:"latency_threshold"`
	// ErrorRatioQuery is each instance's share of failed requests (0–1),
	// one series per instance with the load query's labels.
	ErrorRatioQuery string `yaml:"error_ratio_query,omitempty"`
	// ErrorRatioThreshold is the objective's error ratio.
	ErrorRatioThreshold float64 `yaml:"error_ratio_threshold,omitempty"`
}

var metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

// Validate checks the section, naming each problem by its path
// (analysis.objectives[0].latency_threshold: …).
func (c *Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if c.CostPerReplicaHour < 0 {
		add("analysis.cost_per_replica_hour", "must not be negative")
	}
	if c.Step < 0 {
		add("analysis.step", "must not be negative")
	}
	if c.Window < 0 {
		add("analysis.window", "must not be negative")
	}
	jobs := map[string]bool{}
	for i, o := range c.Objectives {
		p := fmt.Sprintf("analysis.objectives[%d]", i)
		switch {
		case o.Job == "":
			add(p+".job", "must not be empty")
		case jobs[o.Job]:
			add(p+".job", "%q already has an objective", o.Job)
		}
		jobs[o.Job] = true
		if o.Histogram != "" && !metricName.MatchString(o.Histogram) {
			add(p+".histogram", "%q is not a metric name", o.Histogram)
		}
		for _, q := range []struct{ key, expr string }{
			{"load_query", o.LoadQuery}, {"latency_query", o.LatencyQuery}, {"error_ratio_query", o.ErrorRatioQuery},
		} {
			if q.expr == "" {
				continue
			}
			if _, err := store.NewParser().ParseExpr(q.expr); err != nil {
				add(p+"."+q.key, "%v", err)
			}
		}
		if o.LatencyQuantile < 0 || o.LatencyQuantile >= 1 {
			add(p+".latency_quantile", "must be in (0, 1)")
		}
		if o.LatencyQuantile != 0 && o.LatencyQuery != "" {
			add(p+".latency_quantile", "is only used without latency_query")
		}
		if o.LatencyThreshold <= 0 {
			add(p+".latency_threshold", "must be positive (seconds)")
		}
		switch {
		case o.ErrorRatioQuery != "" && (o.ErrorRatioThreshold <= 0 || o.ErrorRatioThreshold >= 1):
			add(p+".error_ratio_threshold", "must be in (0, 1) with error_ratio_query")
		case o.ErrorRatioQuery == "" && o.ErrorRatioThreshold != 0:
			add(p+".error_ratio_query", "must be set with error_ratio_threshold")
		}
	}
	return errors.Join(errs...)
}

func (c *Config) step() time.Duration {
	if c.Step <= 0 {
		return DefaultStep
	}
	return time.Duration(c.Step)
}

func (c *Config) window() time.Duration {
	if c.Window <= 0 {
		return DefaultWindow
	}
	return time.Duration(c.Window)
}

// Queries are an objective's queries with the defaults filled in.
type Queries struct {
	// Load is each instance's requests per second.
	Load string `json:"load"`
	// Latency is the objective's latency per instance.
	Latency string `json:"latency"`
	// Fit is the latency the saturation point is fitted on: the
	// histogram's mean (the queueing model's sojourn time, exact at any
	// bucket layout) or, without a histogram, Latency.
	Fit string `json:"fit"`
	// ErrorRatio is the error ratio per instance, if the objective has one.
	ErrorRatio string `json:"error_ratio,omitempty"`
}

// Queries fills in o's defaults for window w. histogram is the job's
// histogram (o.Histogram, or the one found in the store); without one,
// load_query and latency_query must be set.
func (o Objective) Queries(histogram string, w time.Duration) (Queries, error) {
	if histogram == "" {
		histogram = o.Histogram
	}
	rng := "[" + model.Duration(w).String() + "]"
	sel := fmt.Sprintf(`{job=%q}`, o.Job)
	qs := Queries{Load: o.LoadQuery, Latency: o.LatencyQuery, ErrorRatio: o.ErrorRatioQuery}
	if histogram != "" {
		if qs.Load == "" {
			qs.Load = fmt.Sprintf(`sum by (instance) (rate(%s_count%s%s))`, histogram, sel, rng)
		}
		if qs.Latency == "" {
			quantile := o.LatencyQuantile
			if quantile == 0 {
				quantile = DefaultLatencyQuantile
			}
			qs.Latency = fmt.Sprintf(`histogram_quantile(%g, sum by (instance, le) (rate(%s_bucket%s%s)))`, quantile, histogram, sel, rng)
		}
		qs.Fit = fmt.Sprintf(`sum by (instance) (rate(%s_sum%s%s)) / sum by (instance) (rate(%s_count%s%s))`, histogram, sel, rng, histogram, sel, rng)
	}
	if qs.Load == "" || qs.Latency == "" {
		return qs, fmt.Errorf("job %s: no latency histogram found; set histogram, or load_query and latency_query", o.Job)
	}
	if qs.Fit == "" {
		qs.Fit = qs.Latency
	}
	return qs, nil
}
