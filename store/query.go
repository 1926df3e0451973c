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
)

// QueryConfig is the query section: limits of the PromQL engine shared by the
// HTTP API, alert rules and autoscaling policies.
type QueryConfig struct {
	Timeout       model.Duration `yaml:"timeout"`
	MaxSamples    int            `yaml:"max_samples"`
	LookbackDelta model.Duration `yaml:"lookback_delta"`
}

// DefaultQueryConfig matches Prometheus' command-line defaults.
var DefaultQueryConfig = QueryConfig{
	Timeout:       model.Duration(2 * time.Minute),
	MaxSamples:    50_000_000,
	LookbackDelta: model.Duration(5 * time.Minute),
}

// UnmarshalYAML applies defaults before decoding.
func (c *QueryConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultQueryConfig
	type plain QueryConfig
	return unmarshal((*plain)(c))
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
// reg receives the engine's metrics (prometheus_engine_*); it may be nil.
func NewEngine(c QueryConfig, logger *slog.Logger, reg prometheus.Registerer) *promql.Engine {
	return promql.NewEngine(promql.EngineOpts{
		Logger:               logger.With("component", "promql"),
		Reg:                  reg,
		MaxSamples:           c.MaxSamples,
		Timeout:              time.Duration(c.Timeout),
		LookbackDelta:        time.Duration(c.LookbackDelta),
		Parser:               NewParser(),
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		NoStepSubqueryIntervalFn: func(int64) int64 {
			return time.Minute.Milliseconds()
		},
	})
}
