package store

import (
	"errors"
	"log/slog"
	"maps"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/util/features"
)

// QueryConfig is the query section: limits of the PromQL engine shared by the
// HTTP API, alert rules and autoscaling policies.
type QueryConfig struct {
	Timeout       model.Duration `yaml:"timeout"`
	MaxSamples    int            `yaml:"max_samples"`
	LookbackDelta model.Duration `yaml:"lookback_delta"`
	// MaxConcurrency is how many queries are evaluated at once; more wait
	// for a slot within their timeout.
	MaxConcurrency int `yaml:"max_concurrency"`
	// MaxLength is the longest expression, in bytes, the HTTP API parses.
	MaxLength int `yaml:"max_length"`
	// MaxDepth bounds the nesting of an expression the HTTP API parses (see
	// CheckQueryText).
	MaxDepth int `yaml:"max_depth"`
}

// DefaultQueryConfig matches Prometheus' command-line defaults; Prometheus
// has no length or depth limit, and these defaults are chosen to refuse
// expressions whose parsing and formatting alone take seconds while keeping
// dashboards' long `or` chains working (see docs/configuration.md).
var DefaultQueryConfig = QueryConfig{
	Timeout:        model.Duration(2 * time.Minute),
	MaxSamples:     50_000_000,
	LookbackDelta:  model.Duration(5 * time.Minute),
	MaxConcurrency: 20,
	MaxLength:      64 << 10,
	MaxDepth:       1000,
}

// UnmarshalYAML applies defaults before decoding.
func (c *QueryConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultQueryConfig
	type plain QueryConfig
	return unmarshal((*plain)(c))
}

// WithDefaults is c with DefaultQueryConfig's value for every unset
// (non-positive) limit, for callers that build a QueryConfig in code.
func (c QueryConfig) WithDefaults() QueryConfig {
	d := DefaultQueryConfig
	if c.Timeout <= 0 {
		c.Timeout = d.Timeout
	}
	if c.MaxSamples <= 0 {
		c.MaxSamples = d.MaxSamples
	}
	if c.LookbackDelta <= 0 {
		c.LookbackDelta = d.LookbackDelta
	}
	if c.MaxConcurrency <= 0 {
		c.MaxConcurrency = d.MaxConcurrency
	}
	if c.MaxLength <= 0 {
		c.MaxLength = d.MaxLength
	}
	if c.MaxDepth <= 0 {
		c.MaxDepth = d.MaxDepth
	}
	return c
}

// Validate checks the limits.
func (c *QueryConfig) Validate() error {
	var errs []error
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("query.timeout: must be positive"))
	}
	if c.MaxSamples <= 0 {
		errs = append(errs, errors.New("query.max_samples: must be positive"))
	}
	if c.LookbackDelta <= 0 {
		errs = append(errs, errors.New("query.lookback_delta: must be positive"))
	}
	if c.MaxConcurrency <= 0 {
		errs = append(errs, errors.New("query.max_concurrency: must be positive"))
	}
	if c.MaxLength <= 0 {
		errs = append(errs, errors.New("query.max_length: must be positive"))
	}
	if c.MaxDepth <= 0 {
		errs = append(errs, errors.New("query.max_depth: must be positive"))
	}
	return errors.Join(errs...)
}

// NewParser returns the PromQL parser shared by the engine, the HTTP API and
// rule loading. It accepts Prometheus 3's experimental functions
// (double_exponential_smoothing, sort_by_label, limitk, info…) and, so that
// Prometheus 2 rule files and dashboards keep working, holt_winters as the
// name it had before Prometheus 3 renamed it double_exponential_smoothing.
func NewParser() parser.Parser {
	fns := maps.Clone(parser.Functions)
	// The engine dispatches on Function.Name, so the alias points at the
	// renamed function itself.
	fns["holt_winters"] = parser.Functions["double_exponential_smoothing"]
	return parser.NewParser(parser.Options{EnableExperimentalFunctions: true, Functions: fns})
}

// NewEngine returns the PromQL engine configured by c. Every feature a
// current Prometheus enables by default (@ modifier, negative offsets) is on.
// At most c.MaxConcurrency queries run at once, whoever asks (HTTP API,
// rules, autoscaler); the wait counts towards c.Timeout.
// reg receives the engine's metrics (prometheus_engine_*); it may be nil.
func NewEngine(c QueryConfig, logger *slog.Logger, reg prometheus.Registerer) *promql.Engine {
	o := engineOpts(c, logger)
	o.Reg = reg
	if c.MaxConcurrency > 0 {
		o.ActiveQueryTracker = newQueryTracker(c.MaxConcurrency)
	}
	return promql.NewEngine(o)
}

func engineOpts(c QueryConfig, logger *slog.Logger) promql.EngineOpts {
	return promql.EngineOpts{
		Logger:               logger.With("component", "promql"),
		MaxSamples:           c.MaxSamples,
		Timeout:              time.Duration(c.Timeout),
		LookbackDelta:        time.Duration(c.LookbackDelta),
		Parser:               NewParser(),
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		NoStepSubqueryIntervalFn: func(int64) int64 {
			return noStepSubqueryInterval.Milliseconds()
		},
	}
}

// RegisterQueryFeatures records in r the PromQL features (language,
// operators, functions, engine options) of the engine NewEngine builds from
// c, for /api/v1/features.
func RegisterQueryFeatures(r features.Collector, c QueryConfig) {
	// The engine registers its own options; building one with no registerer
	// and no tracker starts nothing and holds nothing.
	o := engineOpts(c, slog.New(slog.DiscardHandler))
	o.FeatureRegistry = r
	promql.NewEngine(o)
}
