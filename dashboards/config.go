package dashboards

import (
	"errors"
	"fmt"
	"regexp"
)

// Config is the dashboards section of the configuration file.
type Config struct {
	// ClickHouseDatasource is the uid of a Grafana ClickHouse data source
	// (grafana-clickhouse-datasource) reading Tidewatch's ClickHouse
	// database. When set, the dashboards get SQL panels for long-range
	// capacity analytics from the samples_5m rollup table.
	ClickHouseDatasource string `yaml:"clickhouse_datasource,omitempty"`
	// RequestsMetric is the counter of requests the Service dashboard reads
	// (labels job, instance and code).
	RequestsMetric string `yaml:"requests_metric,omitempty"`
	// LatencyHistogram is the classic histogram of request latency the
	// Service dashboard reads (without _bucket).
	LatencyHistogram string `yaml:"latency_histogram,omitempty"`
}

// Defaults of the dashboards section.
const (
	DefaultRequestsMetric   = "http_requests_total"
	DefaultLatencyHistogram = "http_request_duration_seconds"
)

// UnmarshalYAML applies defaults before decoding.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = Config{}
	type plain Config
	return unmarshal((*plain)(c))
}

var metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

// Validate checks the metric names.
func (c Config) Validate() error {
	var errs []error
	for _, f := range []struct{ field, v string }{{"requests_metric", c.RequestsMetric}, {"latency_histogram", c.LatencyHistogram}} {
		if f.v != "" && !metricName.MatchString(f.v) {
			errs = append(errs, fmt.Errorf("dashboards.%s: %q is not a metric name", f.field, f.v))
		}
	}
	return errors.Join(errs...)
}

func (c Config) requestsMetric() string {
	if c.RequestsMetric == "" {
		return DefaultRequestsMetric
	}
	return c.RequestsMetric
}

func (c Config) latencyHistogram() string {
	if c.LatencyHistogram == "" {
		return DefaultLatencyHistogram
	}
	return c.LatencyHistogram
}
