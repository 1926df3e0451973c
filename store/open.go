package store

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/storage"

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

// Reader is a store opened for queries only (OpenReadOnly).
type Reader interface {
	storage.Queryable
	io.Closer
}

var _ Reader = (*embedded.ReadOnlyDB)(nil)

// OpenReadOnly opens the backend that cfg selects for queries, beside a
// Tidewatch that may be running on it (for tools such as backtest). The
// embedded store is opened read-only (embedded.OpenReadOnly); ClickHouse
// is opened as by Open, which starts its writer, but nothing is appended
// through a Reader.
func OpenReadOnly(cfg Config, logger *slog.Logger) (Reader, error) {
	switch cfg.Type {
	case TypeEmbedded:
		return embedded.OpenReadOnly(cfg.Embedded, logger)
	case TypeClickHouse:
		return clickhouse.Open(cfg.ClickHouse, logger, nil)
	default:
		return nil, fmt.Errorf("storage.type: unknown backend %q", cfg.Type)
	}
}
