package autoscaler

import (
	"fmt"
	"math"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/tidewatch/tidewatch/store"
)

// Capacity sizing is what a policy does when it knows capacity_per_instance.
// The HPA sizes replicas at the target (per_instance) and leaves the gap to
// the capacity as a fixed headroom that a fast surge still outruns, because
// its metric is a one-minute mean and a new replica serves only after its
// readiness delay. Capacity sizing instead sizes the first metric against
// the capacity, with a headroom measured from the load itself:
//
//	replicas = ceil((max(value, per-scrape value) + deviations × σ) / capacity)
//
// where the per-scrape value is the first metric's query with rate()
// read as irate() (the last scrape interval's rate, so a surge is seen
// within one scrape rather than after a minute), and σ is the standard
// deviation of that value's rise over the horizon (the time a replica added
// now needs before it serves) during the last window. A calm load gets
// little headroom and runs close to its capacity; a volatile one gets more.
// Scale-down keeps the HPA's tolerance and a longer stabilization (10m), so
// a replica is removed only when the sized count has stayed lower for that
// long. Every term is named in the decision's explanation.

// HeadroomConfig is a policy's headroom key: how much of the load's recent
// volatility capacity sizing adds.
type HeadroomConfig struct {
	// Deviations is how many standard deviations of the rise are added; 0
	// adds none.
	Deviations float64 `yaml:"deviations"`
	// Window is the history the volatility is measured over.
	Window model.Duration `yaml:"window"`
	// Horizon is the span of the rise measured: how long a replica added now
	// takes to serve (the evaluation interval, a scrape and the readiness
	// delay).
	Horizon model.Duration `yaml:"horizon"`
}

// DefaultHeadroom is the headroom of a policy with capacity_per_instance.
var DefaultHeadroom = HeadroomConfig{
	Deviations: 1,
	Window:     model.Duration(time.Hour),
	Horizon:    model.Duration(time.Minute),
}

// DefaultCapacityScaleDownStabilization is scale-down's stabilization under
// capacity sizing when behavior.scale_down.stabilization is not set.
const DefaultCapacityScaleDownStabilization = 10 * time.Minute

// UnmarshalYAML applies the defaults before decoding.
func (h *HeadroomConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*h = DefaultHeadroom
	type plain HeadroomConfig
	return unmarshal((*plain)(h))
}

func (h *HeadroomConfig) validate(p string) []error {
	var errs problems
	if h.Deviations < 0 || h.Deviations > 10 {
		errs.add(p+".deviations", "must be between 0 and 10")
	}
	if h.Window <= 0 {
		errs.add(p+".window", "must be positive")
	}
	if h.Horizon <= 0 {
		errs.add(p+".horizon", "must be positive")
	} else if h.Window > 0 && h.Horizon*2 > h.Window {
		errs.add(p+".horizon", "must be at most half the window (%s)", time.Duration(h.Window))
	}
	return errs
}

// capacitySizing reports whether c sizes its first metric by capacity.
func (c *PolicyConfig) capacitySizing() bool {
	return c.CapacityPerInstance > 0 && len(c.Metrics) > 0 && c.Metrics[0].PerInstance > 0
}

// headroom is c's headroom under capacity sizing.
func (c *PolicyConfig) headroom() HeadroomConfig {
	if c.Headroom != nil {
		return *c.Headroom
	}
	return DefaultHeadroom
}

// ScaleUpQueryOff is the scale_up_query that turns the per-scrape metric off.
const ScaleUpQueryOff = "none"

// FastQuery is the query of the first metric's per-scrape value under
// capacity sizing: scale_up_query when set, otherwise the first metric's
// query with each rate() read as irate(); "" when there is none (the policy
// does not size by capacity, scale_up_query is "none", or the query has no
// rate()).
func (c *PolicyConfig) FastQuery() string {
	if !c.capacitySizing() || c.ScaleUpQuery == ScaleUpQueryOff {
		return ""
	}
	if c.ScaleUpQuery != "" {
		return c.ScaleUpQuery
	}
	q, err := perScrapeQuery(c.Metrics[0].Query)
	if err != nil {
		return ""
	}
	return q
}

// perScrapeQuery rewrites every rate() of q as irate(), the rate between
// the last two samples of the range; "" when q has no rate().
func perScrapeQuery(q string) (string, error) {
	expr, err := store.NewParser().ParseExpr(q)
	if err != nil {
		return "", err
	}
	changed := false
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if call, ok := n.(*parser.Call); ok && call.Func.Name == "rate" {
			call.Func = parser.Functions["irate"]
			changed = true
		}
		return nil
	})
	if !changed {
		return "", nil
	}
	return expr.String(), nil
}

// Volatility is the standard deviation of the rise of points over horizon:
// of v(t) − v(t−horizon) for each point that has one horizon before it
// (points are in time order and evenly spaced). It needs at least three
// such rises.
func Volatility(points []Point, horizon time.Duration) (float64, bool) {
	if len(points) < 2 {
		return 0, false
	}
	step := points[len(points)-1].T.Sub(points[0].T) / time.Duration(len(points)-1)
	if step <= 0 {
		return 0, false
	}
	k := max(int(math.Round(float64(horizon)/float64(step))), 1)
	var n, mean, m2 float64 // Welford's running variance
	for i := k; i < len(points); i++ {
		a, b := points[i].V, points[i-k].V
		if math.IsNaN(a) || math.IsNaN(b) || math.IsInf(a, 0) || math.IsInf(b, 0) {
			continue
		}
		d := a - b
		n++
		delta := d - mean
		mean += delta / n
		m2 += delta * (d - mean)
	}
	if n < 3 {
		return 0, false
	}
	return math.Sqrt(m2 / (n - 1)), true
}

// capacityRecommend sizes the first metric against the capacity with the
// volatility headroom. Scale-down keeps the tolerance: a count within it
// below current stays at current.
func (p *Policy) capacityRecommend(obs Observation, current int) (int, string) {
	c := p.Config
	level, fast := obs.Value, obs.HasFast && obs.Fast > obs.Value
	if fast {
		level = obs.Fast
	}
	h := c.headroom()
	extra := 0.0
	if obs.HasVolatility && h.Deviations > 0 {
		extra = h.Deviations * obs.Volatility
	}
	n := max(int(math.Ceil((level+extra)/c.CapacityPerInstance)), 0)
	keep := n < current && float64(n) >= float64(current)*(1-c.Tolerance)
	if p.terse {
		if keep {
			return current, ""
		}
		return n, ""
	}
	what := fmt.Sprintf("value %.4g", obs.Value)
	if fast {
		what = fmt.Sprintf("per-scrape value %.4g (value %.4g)", obs.Fast, obs.Value)
	}
	hr := ""
	if extra > 0 {
		hr = fmt.Sprintf(" + headroom %.4g (%g × σ %.4g of the %s rise over %s)", extra, h.Deviations, obs.Volatility, time.Duration(h.Horizon), time.Duration(h.Window))
	}
	note := fmt.Sprintf("%s%s / capacity %.4g per instance = %d", what, hr, c.CapacityPerInstance, n)
	if keep {
		return current, note + fmt.Sprintf(", within tolerance %.2g of %d", c.Tolerance, current)
	}
	return n, note
}
