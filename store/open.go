package store

import (
	"fmt"
	"log/slog"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidewatch/tidewatch/store/clickhouse"
	"github.com/tidewatch/tidewatch/store/embedded"
)

var (
	_ Store = (*embedded.DB)(nil)
	_ Store = (*clickhouse.Store)(nil)
)

// Open opens the backend that cfg selects. reg receives the Prometheus
// libraries' metrics (the embedded TSDB's prometheus_tsdb_*), set Tidewatch's
// own (the ClickHouse store's tidewatch_clickhouse_*); either may be nil.
func Open(cfg Config, logger *slog.Logger, reg prometheus.Registerer, set *metrics.Set) (Store, error) {
	switch cfg.Type {
	case TypeEmbedded:
		return embedded.Open(cfg.Embedded, logger, reg)
	case TypeClickHouse:
		return clickhouse.Open(cfg.ClickHouse, logger, set)
	default:
		return nil, fmt.Errorf("storage.type: unknown backend %q", cfg.Type)
	}
}
