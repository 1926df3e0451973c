package autoscaler

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/cronexpr"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/tidewatch/tidewatch/store"
)

// Config is the autoscaling section of the configuration file.
type Config struct {
	Backends []BackendConfig `yaml:"backends"`
	Policies []PolicyConfig  `yaml:"policies"`
}

// Backend types accepted in autoscaling.backends[].type.
const (
	TypeKubernetes = "kubernetes"
	TypeNomad      = "nomad"
	TypeDocker     = "docker"
	TypeWebhook    = "webhook"
	TypeExec       = "exec"
	TypeProcess    = "process"
)

// BackendConfig is one entry of autoscaling.backends: a name, a type and the
// fields of that type. The fields of every type share one flat mapping, as in
// the documentation; Validate rejects a field that the type does not use.
type BackendConfig struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"`

	// kubernetes
	Kubeconfig string `yaml:"kubeconfig,omitempty"`
	InCluster  bool   `yaml:"in_cluster,omitempty"`
	Context    string `yaml:"context,omitempty"`

	// nomad (address), docker (host)
	Address   string `yaml:"address,omitempty"`
	TokenFile string `yaml:"token_file,omitempty"`
	Region    string `yaml:"region,omitempty"`
	Host      string `yaml:"host,omitempty"`

	// webhook
	URL          string            `yaml:"url,omitempty"`
	SecretFile   string            `yaml:"secret_file,omitempty"`
	Headers      map[string]string `yaml:"headers,omitempty"`
	MaxRetries   int               `yaml:"max_retries,omitempty"`
	RetryBackoff model.Duration    `yaml:"retry_backoff,omitempty"`

	// exec and process
	Command []string `yaml:"command,omitempty"`
	// CurrentCommand (exec) prints the current replica count.
	CurrentCommand []string `yaml:"current_command,omitempty"`
	// Timeout bounds one call to the backend (exec: one command run).
	Timeout model.Duration `yaml:"timeout,omitempty"`

	// process
	BasePort    int            `yaml:"base_port,omitempty"`
	Dir         string         `yaml:"dir,omitempty"`
	Env         []string       `yaml:"env,omitempty"`
	StopTimeout model.Duration `yaml:"stop_timeout,omitempty"`
	SDFile      string         `yaml:"sd_file,omitempty"`
	Labels      model.LabelSet `yaml:"labels,omitempty"`
}

// backendFields lists the type-specific yaml keys each backend type accepts.
var backendFields = map[string][]string{
	TypeKubernetes: {"kubeconfig", "in_cluster", "context", "timeout"},
	TypeNomad:      {"address", "token_file", "region", "timeout"},
	TypeDocker:     {"host", "timeout"},
	TypeWebhook:    {"url", "secret_file", "headers", "max_retries", "retry_backoff", "timeout"},
	TypeExec:       {"command", "current_command", "timeout"},
	TypeProcess:    {"command", "base_port", "dir", "env", "stop_timeout", "sd_file", "labels"},
}

// DefaultBackendTimeout bounds one call to a backend when timeout is unset.
const DefaultBackendTimeout = 30 * time.Second

// PolicyConfig is one entry of autoscaling.policies.
type PolicyConfig struct {
	Name          string           `yaml:"name"`
	Target        TargetConfig     `yaml:"target"`
	Min           int              `yaml:"min"`
	Max           int              `yaml:"max"`
	Interval      model.Duration   `yaml:"interval"`
	Metrics       []MetricConfig   `yaml:"metrics"`
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

// Forecast methods.
const (
	ForecastHoltWinters = "holt_winters"
	ForecastLinear      = "linear"
)

// ForecastConfig turns on forecast-driven scale-out.
type ForecastConfig struct {
	Method  string         `yaml:"method"`
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

// Rate policy types and select values, as in the HPA.
const (
	RatePercent = "percent"
	RatePods    = "pods"

	SelectMax      = "max"
	SelectMin      = "min"
	SelectDisabled = "disabled"
)

// BehaviorConfig is the HPA's behavior: stabilization and rate policies per direction.
type BehaviorConfig struct {
	ScaleUp   ScalingRules `yaml:"scale_up"`
	ScaleDown ScalingRules `yaml:"scale_down"`
}

// ScalingRules are the rules of one direction.
type ScalingRules struct {
	Stabilization model.Duration `yaml:"stabilization"`
	Policies      []RatePolicy   `yaml:"policies"`
	Select        string         `yaml:"select"`
}

// RatePolicy allows a change of Value pods or Value percent per Period.
type RatePolicy struct {
	Type   string         `yaml:"type"`
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
	return unmarshal((*plain)(c))
}

// Validate checks the section, naming each problem by its path
// (autoscaling.policies[0].max: …).
func (c *Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("autoscaling.%s: %s", path, fmt.Sprintf(format, args...)))
	}
	backends := map[string]string{}
	for i, b := range c.Backends {
		p := fmt.Sprintf("backends[%d]", i)
		switch {
		case b.Name == "":
			add(p+".name", "must not be empty")
		case backends[b.Name] != "":
			add(p+".name", "%q is already the name of another backend", b.Name)
		}
		fields, ok := backendFields[b.Type]
		if !ok {
			add(p+".type", "unknown backend type %q (known: %s)", b.Type, strings.Join(backendTypes(), ", "))
			continue
		}
		if b.Name != "" && backends[b.Name] == "" {
			backends[b.Name] = b.Type
		}
		for _, key := range setFields(b) {
			if !slices.Contains(fields, key) {
				add(p+"."+key, "not a field of a %s backend", b.Type)
			}
		}
		if b.Timeout < 0 || b.StopTimeout < 0 || b.RetryBackoff < 0 {
			add(p, "durations must not be negative")
		}
		switch b.Type {
		case TypeKubernetes:
			if b.InCluster && b.Kubeconfig != "" {
				add(p+".in_cluster", "kubeconfig and in_cluster are mutually exclusive")
			}
		case TypeNomad:
			if b.Address == "" {
				add(p+".address", "must not be empty")
			}
		case TypeDocker:
			if b.Host == "" {
				add(p+".host", "must not be empty (unix:///var/run/docker.sock, tcp://host:2375)")
			}
		case TypeWebhook:
			if !strings.HasPrefix(b.URL, "http://") && !strings.HasPrefix(b.URL, "https://") {
				add(p+".url", "must be an http:// or https:// URL")
			}
			if b.MaxRetries < 0 {
				add(p+".max_retries", "must not be negative")
			}
		case TypeExec:
			if len(b.Command) == 0 {
				add(p+".command", "must not be empty")
			}
		case TypeProcess:
			if len(b.Command) == 0 {
				add(p+".command", "must not be empty")
			}
			if b.BasePort < 0 || b.BasePort > 65535 {
				add(p+".base_port", "must be a port number")
			}
		}
	}
	names := map[string]bool{}
	for i, pc := range c.Policies {
		p := fmt.Sprintf("policies[%d]", i)
		switch {
		case pc.Name == "":
			add(p+".name", "must not be empty")
		case names[pc.Name]:
			add(p+".name", "%q is already the name of another policy", pc.Name)
		}
		names[pc.Name] = true
		if pc.Target.Backend == "" {
			add(p+".target.backend", "must not be empty")
		} else if typ, ok := backends[pc.Target.Backend]; !ok {
			add(p+".target.backend", "no backend is named %q", pc.Target.Backend)
		} else {
			if pc.Target.Name == "" {
				add(p+".target.name", "must not be empty")
			}
			if typ == TypeNomad && pc.Target.Group == "" {
				add(p+".target.group", "must name the task group of a nomad job")
			}
			if typ == TypeKubernetes {
				if pc.Target.Kind == "" {
					add(p+".target.kind", "must not be empty (Deployment, StatefulSet, ReplicaSet or a kind with /scale)")
				} else if !isAppsKind(pc.Target.Kind) && pc.Target.APIVersion == "" {
					add(p+".target.api_version", "must be set for kind %s", pc.Target.Kind)
				}
			}
		}
		if pc.Min < 0 {
			add(p+".min", "must not be negative")
		}
		if pc.Max < 1 {
			add(p+".max", "must be at least 1")
		} else if pc.Max < pc.Min {
			add(p+".max", "must not be less than min (%d)", pc.Min)
		}
		if pc.Interval <= 0 {
			add(p+".interval", "must be positive")
		}
		if len(pc.Metrics) == 0 {
			add(p+".metrics", "must have at least one metric")
		}
		for j, m := range pc.Metrics {
			mp := fmt.Sprintf("%s.metrics[%d]", p, j)
			if m.Query == "" {
				add(mp+".query", "must not be empty")
			} else if _, err := store.NewParser().ParseExpr(m.Query); err != nil {
				add(mp+".query", "%s", parseErrorText(err))
			}
			switch {
			case m.PerInstance != 0 && m.Utilization != 0:
				add(mp, "set one of per_instance and utilization, not both")
			case m.PerInstance == 0 && m.Utilization == 0:
				add(mp, "set per_instance or utilization")
			case m.PerInstance < 0:
				add(mp+".per_instance", "must be positive")
			case m.Utilization < 0:
				add(mp+".utilization", "must be positive")
			}
		}
		if f := pc.Forecast; f != nil {
			fp := p + ".forecast"
			if f.Method != ForecastHoltWinters && f.Method != ForecastLinear {
				add(fp+".method", "%q is neither %s nor %s", f.Method, ForecastHoltWinters, ForecastLinear)
			}
			if f.Window <= 0 {
				add(fp+".window", "must be positive")
			} else if f.Window < 2*pc.Interval {
				add(fp+".window", "must cover at least two intervals (%s)", time.Duration(2*pc.Interval))
			}
			if f.Horizon <= 0 {
				add(fp+".horizon", "must be positive")
			}
			if f.Smoothing <= 0 || f.Smoothing >= 1 {
				add(fp+".smoothing", "must be between 0 and 1 exclusive")
			}
			if f.Trend <= 0 || f.Trend >= 1 {
				add(fp+".trend", "must be between 0 and 1 exclusive")
			}
		}
		if pc.Tolerance < 0 || pc.Tolerance >= 1 {
			add(p+".tolerance", "must be in [0, 1)")
		}
		for _, d := range []struct {
			name string
			r    ScalingRules
		}{{"scale_up", pc.Behavior.ScaleUp}, {"scale_down", pc.Behavior.ScaleDown}} {
			bp := p + ".behavior." + d.name
			if d.r.Stabilization < 0 {
				add(bp+".stabilization", "must not be negative")
			}
			if d.r.Select != SelectMax && d.r.Select != SelectMin && d.r.Select != SelectDisabled {
				add(bp+".select", "%q is not max, min or disabled", d.r.Select)
			}
			if len(d.r.Policies) == 0 && d.r.Select != SelectDisabled {
				add(bp+".policies", "must have at least one policy unless select is disabled")
			}
			for k, rp := range d.r.Policies {
				rpp := fmt.Sprintf("%s.policies[%d]", bp, k)
				if rp.Type != RatePercent && rp.Type != RatePods {
					add(rpp+".type", "%q is neither percent nor pods", rp.Type)
				}
				if rp.Value <= 0 {
					add(rpp+".value", "must be positive")
				}
				if rp.Period <= 0 || time.Duration(rp.Period) > 30*time.Minute {
					add(rpp+".period", "must be positive and at most 30m")
				}
			}
		}
		if pc.OnMetricError.Fallback > pc.Max && pc.Max >= 1 {
			add(p+".on_metric_error", "fallback %d is above max (%d)", pc.OnMetricError.Fallback, pc.Max)
		}
		for j, s := range pc.Schedule {
			sp := fmt.Sprintf("%s.schedule[%d]", p, j)
			if _, err := parseCron(s.Cron); err != nil {
				add(sp+".cron", "%v", err)
			}
			if s.Duration <= 0 {
				add(sp+".duration", "must be positive")
			}
			if s.Min < 0 || (pc.Max >= 1 && s.Min > pc.Max) {
				add(sp+".min", "must be between 0 and max (%d)", pc.Max)
			}
		}
	}
	return errors.Join(errs...)
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

func isAppsKind(kind string) bool {
	switch kind {
	case "Deployment", "StatefulSet", "ReplicaSet":
		return true
	}
	return false
}

func backendTypes() []string {
	var ts []string
	for t := range backendFields {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

// setFields returns the yaml keys of b's type-specific fields that are set.
func setFields(b BackendConfig) []string {
	var keys []string
	v := reflect.ValueOf(b)
	t := v.Type()
	for i := range t.NumField() {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if key == "name" || key == "type" {
			continue
		}
		if !v.Field(i).IsZero() {
			keys = append(keys, key)
		}
	}
	return keys
}

// SetDirectory makes the backends' file paths relative to dir, the
// configuration file's directory; a kubeconfig starting with ~/ is under the
// home directory.
func (c *Config) SetDirectory(dir string) {
	for i := range c.Backends {
		b := &c.Backends[i]
		if rest, ok := strings.CutPrefix(b.Kubeconfig, "~/"); ok {
			if home, err := os.UserHomeDir(); err == nil {
				b.Kubeconfig = filepath.Join(home, rest)
			}
		}
		b.Kubeconfig = commoncfg.JoinDir(dir, b.Kubeconfig)
		b.TokenFile = commoncfg.JoinDir(dir, b.TokenFile)
		b.SecretFile = commoncfg.JoinDir(dir, b.SecretFile)
		b.SDFile = commoncfg.JoinDir(dir, b.SDFile)
		b.Dir = commoncfg.JoinDir(dir, b.Dir)
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
