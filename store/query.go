package store

import (
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql"
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
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		NoStepSubqueryIntervalFn: func(int64) int64 {
			return time.Minute.Milliseconds()
		},
	})
}
