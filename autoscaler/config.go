package autoscaler

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/cronexpr"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
	"github.com/tidewatch/tidewatch/store"
)

// Config is the autoscaling section of the configuration file.
type Config struct {
	Backends []BackendConfig `yaml:"backends"`
	Policies []PolicyConfig  `yaml:"policies"`
}

// DefaultBackendTimeout bounds one call to a backend when timeout is unset.
const DefaultBackendTimeout = backend.DefaultTimeout

// PolicyConfig is one entry of autoscaling.policies.
type PolicyConfig struct {
	Name     string         `yaml:"name"`
	Target   TargetConfig   `yaml:"target"`
	Min      int            `yaml:"min"`
	Max      int            `yaml:"max"`
	Interval model.Duration `yaml:"interval"`
	Metrics  []MetricConfig `yaml:"metrics"`
	// CapacityPerInstance is what one instance serves, in the first
	// metric's unit, before it is overloaded (per_instance is the target,
	// below it). The backtest's reference model judges overload with it.
	// With it, the first metric is sized against the capacity with a
	// headroom from the load's volatility (capacity.go): Headroom and
	// ScaleUpQuery tune that, and scale-down's stabilization defaults to 10m.
	CapacityPerInstance float64         `yaml:"capacity_per_instance,omitempty"`
	Headroom            *HeadroomConfig `yaml:"headroom,omitempty"`
	// ScaleUpQuery is the first metric's per-scrape query (default: its
	// query with rate() read as irate(); "none" turns it off).
	ScaleUpQuery  string           `yaml:"scale_up_query,omitempty"`
	Forecast      *ForecastConfig  `yaml:"forecast,omitempty"`
	Tolerance     float64          `yaml:"tolerance"`
	Behavior      BehaviorConfig   `yaml:"behavior"`
	OnMetricError OnMetricError    `yaml:"on_metric_error"`
	Schedule      []ScheduleConfig `yaml:"schedule,omitempty"`
	DryRun        bool             `yaml:"dry_run"`
	// Notify sends each scale action (and each dry-run decision that would
	// change the count) to the notification receivers as a short-lived
	// TidewatchScaleEvent alert.
	Notify bool `yaml:"notify"`
}

// TargetConfig names what a policy scales, in the terms of its backend.
type TargetConfig struct {
	Backend string `yaml:"backend"`
	// Kind is the Kubernetes kind (Deployment, StatefulSet, ReplicaSet, or a
	// custom resource with a /scale subresource).
	Kind string `yaml:"kind,omitempty"`
	// APIVersion and Resource locate a custom resource (argoproj.io/v1alpha1, rollouts).
	APIVersion string `yaml:"api_version,omitempty"`
	Resource   string `yaml:"resource,omitempty"`
	Namespace  string `yaml:"namespace,omitempty"`
	// Name is the Deployment, Nomad job, Swarm service or process fleet.
	Name string `yaml:"name"`
	// Group is the Nomad task group.
	Group string `yaml:"group,omitempty"`
}

// backendTarget is t in the backends' terms.
func (t TargetConfig) backendTarget() backend.Target {
	return backend.Target{Kind: t.Kind, APIVersion: t.APIVersion, Resource: t.Resource, Namespace: t.Namespace, Name: t.Name, Group: t.Group}
}

// String is the target as a user reads it: kind/namespace/name.
func (t TargetConfig) String() string {
	var parts []string
	for _, s := range []string{t.Kind, t.Namespace, t.Name, t.Group} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "/")
}

// MetricConfig is one metric of a policy: a PromQL query returning one number
// and its target, either per instance (the query returns a total, as the
// HPA's AverageValue) or a utilization ratio (the query returns an average).
type MetricConfig struct {
	Query       string  `yaml:"query"`
	PerInstance float64 `yaml:"per_instance,omitempty"`
	Utilization float64 `yaml:"utilization,omitempty"`
}

// ForecastConfig turns on forecast-driven scale-out.
type ForecastConfig struct {
	Method  ForecastMethod `yaml:"method"`
	Window  model.Duration `yaml:"window"`
	Horizon model.Duration `yaml:"horizon"`
	// Smoothing and Trend are Holt's α and β.
	Smoothing float64 `yaml:"smoothing"`
	Trend     float64 `yaml:"trend"`
}

// DefaultForecastConfig is applied under a forecast key.
var DefaultForecastConfig = ForecastConfig{
	Method:    ForecastHoltWinters,
	Window:    model.Duration(30 * time.Minute),
	Horizon:   model.Duration(5 * time.Minute),
	Smoothing: 0.5,
	Trend:     0.1,
}

// UnmarshalYAML applies defaults before decoding.
func (c *ForecastConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultForecastConfig
	type plain ForecastConfig
	return unmarshal((*plain)(c))
}

// BehaviorConfig is the HPA's behavior: stabilization and rate policies per direction.
type BehaviorConfig struct {
	ScaleUp   ScalingRules `yaml:"scale_up"`
	ScaleDown ScalingRules `yaml:"scale_down"`
}

// ScalingRules are the rules of one direction.
type ScalingRules struct {
	Stabilization model.Duration `yaml:"stabilization"`
	Policies      []RatePolicy   `yaml:"policies"`
	Select        Select         `yaml:"select"`
}

// RatePolicy allows a change of Value pods or Value percent per Period.
type RatePolicy struct {
	Type   RateType       `yaml:"type"`
	Value  int            `yaml:"value"`
	Period model.Duration `yaml:"period"`
}

// DefaultBehavior is the Kubernetes HPA's default behavior.
var DefaultBehavior = BehaviorConfig{
	ScaleUp: ScalingRules{
		Stabilization: 0,
		Policies: []RatePolicy{
			{Type: RatePercent, Value: 100, Period: model.Duration(15 * time.Second)},
			{Type: RatePods, Value: 4, Period: model.Duration(15 * time.Second)},
		},
		Select: SelectMax,
	},
	ScaleDown: ScalingRules{
		Stabilization: model.Duration(5 * time.Minute),
		Policies:      []RatePolicy{{Type: RatePercent, Value: 100, Period: model.Duration(15 * time.Second)}},
		Select:        SelectMax,
	},
}

// UnmarshalYAML applies the HPA defaults before decoding: a direction that is
// not mentioned keeps them, and so does a key of a direction that is.
func (c *BehaviorConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultBehavior
	c.ScaleUp.Policies = slices.Clone(DefaultBehavior.ScaleUp.Policies)
	c.ScaleDown.Policies = slices.Clone(DefaultBehavior.ScaleDown.Policies)
	type plain BehaviorConfig
	return unmarshal((*plain)(c))
}

// OnMetricError says what a failed or empty metric does: hold (the
// default) keeps the replicas it would otherwise recommend at the current
// count; {fallback: N} recommends N. Neither ever scales down.
// In YAML it is the word hold or the mapping {fallback: N}.
type OnMetricError struct {
	Fallback int
}

// UnmarshalYAML accepts "hold" or {fallback: N}.
func (o *OnMetricError) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err == nil {
		if s != "hold" {
			return fmt.Errorf("%q is neither hold nor {fallback: N}", s)
		}
		*o = OnMetricError{}
		return nil
	}
	var m struct {
		Fallback *int `yaml:"fallback"`
	}
	if err := unmarshal(&m); err != nil {
		return fmt.Errorf("must be hold or {fallback: N}: %w", err)
	}
	if m.Fallback == nil || *m.Fallback < 1 {
		return errors.New("fallback must be at least 1")
	}
	o.Fallback = *m.Fallback
	return nil
}

// MarshalYAML writes hold or {fallback: N}.
func (o OnMetricError) MarshalYAML() (any, error) {
	if o.Fallback == 0 {
		return "hold", nil
	}
	return map[string]int{"fallback": o.Fallback}, nil
}

// String is "hold" or "fallback N".
func (o OnMetricError) String() string {
	if o.Fallback == 0 {
		return "hold"
	}
	return fmt.Sprintf("fallback %d", o.Fallback)
}

// ScheduleConfig raises the floor to Min for Duration from every time Cron fires.
type ScheduleConfig struct {
	Cron     string         `yaml:"cron"`
	Duration model.Duration `yaml:"duration"`
	Min      int            `yaml:"min"`
}

// DefaultInterval is a policy's evaluation interval when unset (the HPA's sync period).
const DefaultInterval = 15 * time.Second

// DefaultPolicyConfig holds a policy's defaults, those of the Kubernetes HPA.
var DefaultPolicyConfig = PolicyConfig{
	Min:       1,
	Interval:  model.Duration(DefaultInterval),
	Tolerance: 0.1,
	Behavior:  DefaultBehavior,
}

// UnmarshalYAML applies defaults before decoding.
func (c *PolicyConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultPolicyConfig
	c.Behavior.ScaleUp.Policies = slices.Clone(DefaultBehavior.ScaleUp.Policies)
	c.Behavior.ScaleDown.Policies = slices.Clone(DefaultBehavior.ScaleDown.Policies)
	type plain PolicyConfig
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	// Under capacity sizing, an unset scale-down stabilization is 10m. (A
	// generic map, so that strict decoding accepts the policy's other keys.)
	var raw map[string]any
	if err := unmarshal(&raw); err == nil && c.capacitySizing() && !hasKey(raw, "behavior", "scale_down", "stabilization") {
		c.Behavior.ScaleDown.Stabilization = model.Duration(DefaultCapacityScaleDownStabilization)
	}
	return nil
}

// hasKey reports whether the decoded mapping m has the nested key path.
func hasKey(m map[string]any, path ...string) bool {
	for i, k := range path {
		v, ok := m[k]
		if !ok {
			return false
		}
		if i == len(path)-1 {
			return true
		}
		switch next := v.(type) {
		case map[string]any:
			m = next
		case map[any]any:
			m = map[string]any{}
			for kk, vv := range next {
				if s, ok := kk.(string); ok {
					m[s] = vv
				}
			}
		default:
			return false
		}
	}
	return false
}

// Validate checks the section, naming each problem by its path
// (autoscaling.policies[0].max: …). Each part checks itself.
func (c *Config) Validate() error {
	var errs []error
	backends := map[string]*BackendConfig{}
	for i := range c.Backends {
		errs = append(errs, c.Backends[i].validate(fmt.Sprintf("autoscaling.backends[%d]", i), backends)...)
	}
	names := map[string]bool{}
	for i := range c.Policies {
		pc := &c.Policies[i]
		p := fmt.Sprintf("autoscaling.policies[%d]", i)
		switch {
		case pc.Name == "":
			errs = append(errs, fmt.Errorf("%s.name: must not be empty", p))
		case names[pc.Name]:
			errs = append(errs, fmt.Errorf("%s.name: %q is already the name of another policy", p, pc.Name))
		}
		names[pc.Name] = true
		errs = append(errs, pc.validate(p, backends)...)
	}
	return errors.Join(errs...)
}

// problems collects a part's problems, each as "path: message".
type problems []error

func (ps *problems) add(path, format string, args ...any) {
	*ps = append(*ps, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// addField adds a backend's FieldError under path p.
func (ps *problems) addField(p string, fe *backend.FieldError) {
	if fe.Field != "" {
		p += "." + fe.Field
	}
	ps.add(p, "%s", fe.Msg)
}

func (pc *PolicyConfig) validate(p string, backends map[string]*BackendConfig) []error {
	var errs problems
	if pc.Target.Backend == "" {
		errs.add(p+".target.backend", "must not be empty")
	} else if b, ok := backends[pc.Target.Backend]; !ok {
		errs.add(p+".target.backend", "no backend is named %q", pc.Target.Backend)
	} else {
		if pc.Target.Name == "" {
			errs.add(p+".target.name", "must not be empty")
		}
		for _, fe := range backend.FieldErrors(b.config().ValidateTarget(pc.Target.backendTarget())) {
			errs.addField(p+".target", fe)
		}
	}
	if pc.Min < 0 {
		errs.add(p+".min", "must not be negative")
	}
	if pc.Max < 1 {
		errs.add(p+".max", "must be at least 1")
	} else if pc.Max < pc.Min {
		errs.add(p+".max", "must not be less than min (%d)", pc.Min)
	}
	if pc.Interval <= 0 {
		errs.add(p+".interval", "must be positive")
	}
	if len(pc.Metrics) == 0 {
		errs.add(p+".metrics", "must have at least one metric")
	}
	for j := range pc.Metrics {
		errs = append(errs, pc.Metrics[j].validate(fmt.Sprintf("%s.metrics[%d]", p, j))...)
	}
	switch {
	case pc.CapacityPerInstance < 0:
		errs.add(p+".capacity_per_instance", "must not be negative")
	case pc.CapacityPerInstance > 0 && (len(pc.Metrics) == 0 || pc.Metrics[0].PerInstance <= 0):
		errs.add(p+".capacity_per_instance", "needs a first metric with per_instance")
	case pc.CapacityPerInstance > 0 && pc.CapacityPerInstance < pc.Metrics[0].PerInstance:
		errs.add(p+".capacity_per_instance", "must not be below the first metric's per_instance (%g): the target is a share of the capacity", pc.Metrics[0].PerInstance)
	}
	if pc.Headroom != nil {
		if !pc.capacitySizing() {
			errs.add(p+".headroom", "needs capacity_per_instance (headroom is part of capacity sizing)")
		}
		errs = append(errs, pc.Headroom.validate(p+".headroom")...)
	}
	switch {
	case pc.ScaleUpQuery == "" || pc.ScaleUpQuery == ScaleUpQueryOff:
	case !pc.capacitySizing():
		errs.add(p+".scale_up_query", "needs capacity_per_instance (the per-scrape metric is part of capacity sizing)")
	default:
		if _, err := store.NewParser().ParseExpr(pc.ScaleUpQuery); err != nil {
			errs.add(p+".scale_up_query", "%s", parseErrorText(err))
		}
	}
	if pc.Forecast != nil {
		errs = append(errs, pc.Forecast.validate(p+".forecast", pc.Interval)...)
	}
	if pc.Tolerance < 0 || pc.Tolerance >= 1 {
		errs.add(p+".tolerance", "must be in [0, 1)")
	}
	errs = append(errs, pc.Behavior.ScaleUp.validate(p+".behavior.scale_up")...)
	errs = append(errs, pc.Behavior.ScaleDown.validate(p+".behavior.scale_down")...)
	if pc.OnMetricError.Fallback > pc.Max && pc.Max >= 1 {
		errs.add(p+".on_metric_error", "fallback %d is above max (%d)", pc.OnMetricError.Fallback, pc.Max)
	}
	for j := range pc.Schedule {
		errs = append(errs, pc.Schedule[j].validate(fmt.Sprintf("%s.schedule[%d]", p, j), pc.Max)...)
	}
	return errs
}

func (m *MetricConfig) validate(p string) []error {
	var errs problems
	if m.Query == "" {
		errs.add(p+".query", "must not be empty")
	} else if _, err := store.NewParser().ParseExpr(m.Query); err != nil {
		errs.add(p+".query", "%s", parseErrorText(err))
	}
	switch {
	case m.PerInstance != 0 && m.Utilization != 0:
		errs.add(p, "set one of per_instance and utilization, not both")
	case m.PerInstance == 0 && m.Utilization == 0:
		errs.add(p, "set per_instance or utilization")
	case m.PerInstance < 0:
		errs.add(p+".per_instance", "must be positive")
	case m.Utilization < 0:
		errs.add(p+".utilization", "must be positive")
	}
	return errs
}

func (f *ForecastConfig) validate(p string, interval model.Duration) []error {
	var errs problems
	if err := f.Method.check(); err != nil {
		errs.add(p+".method", "%v", err)
	}
	if f.Window <= 0 {
		errs.add(p+".window", "must be positive")
	} else if f.Window < 2*interval {
		errs.add(p+".window", "must cover at least two intervals (%s)", time.Duration(2*interval))
	}
	if f.Horizon <= 0 {
		errs.add(p+".horizon", "must be positive")
	}
	if f.Smoothing <= 0 || f.Smoothing >= 1 {
		errs.add(p+".smoothing", "must be between 0 and 1 exclusive")
	}
	if f.Trend <= 0 || f.Trend >= 1 {
		errs.add(p+".trend", "must be between 0 and 1 exclusive")
	}
	return errs
}

func (r *ScalingRules) validate(p string) []error {
	var errs problems
	if r.Stabilization < 0 {
		errs.add(p+".stabilization", "must not be negative")
	}
	if err := r.Select.check(); err != nil {
		errs.add(p+".select", "%v", err)
	}
	if len(r.Policies) == 0 && r.Select != SelectDisabled {
		errs.add(p+".policies", "must have at least one policy unless select is disabled")
	}
	for k, rp := range r.Policies {
		rpp := fmt.Sprintf("%s.policies[%d]", p, k)
		if err := rp.Type.check(); err != nil {
			errs.add(rpp+".type", "%v", err)
		}
		if rp.Value <= 0 {
			errs.add(rpp+".value", "must be positive")
		}
		if rp.Period <= 0 || time.Duration(rp.Period) > 30*time.Minute {
			errs.add(rpp+".period", "must be positive and at most 30m")
		}
	}
	return errs
}

func (s *ScheduleConfig) validate(p string, maxReplicas int) []error {
	var errs problems
	if _, err := parseCron(s.Cron); err != nil {
		errs.add(p+".cron", "%v", err)
	}
	if s.Duration <= 0 {
		errs.add(p+".duration", "must be positive")
	}
	if s.Min < 0 || (maxReplicas >= 1 && s.Min > maxReplicas) {
		errs.add(p+".min", "must be between 0 and max (%d)", maxReplicas)
	}
	return errs
}

// parseCron parses a standard 5-field cron expression (minute hour
// day-of-month month day-of-week, with ranges, lists, steps and names) or a
// @hourly-style macro.
func parseCron(s string) (*cronexpr.Expression, error) {
	if n := len(strings.Fields(s)); n != 5 && !strings.HasPrefix(strings.TrimSpace(s), "@") {
		return nil, fmt.Errorf("%q: want 5 fields (minute hour day-of-month month day-of-week), got %d", s, n)
	}
	e, err := cronexpr.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	return e, nil
}

func parseErrorText(err error) string {
	var pe parser.ParseErrors
	if errors.As(err, &pe) && len(pe) > 0 {
		return "invalid PromQL: " + pe[0].Err.Error()
	}
	return "invalid PromQL: " + err.Error()
}

// SetDirectory makes the backends' file paths relative to dir, the
// configuration file's directory (each type's Config says which keys are
// paths).
func (c *Config) SetDirectory(dir string) {
	for i := range c.Backends {
		if d, ok := c.Backends[i].Config.(interface{ SetDirectory(string) }); ok {
			d.SetDirectory(dir)
		}
	}
}

// Backend returns the backend named name.
func (c *Config) Backend(name string) (BackendConfig, bool) {
	for _, b := range c.Backends {
		if b.Name == name {
			return b, true
		}
	}
	return BackendConfig{}, false
}

// Policy returns the policy named name.
func (c *Config) Policy(name string) (PolicyConfig, bool) {
	for _, p := range c.Policies {
		if p.Name == name {
			return p, true
		}
	}
	return PolicyConfig{}, false
}
