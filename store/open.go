package store

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidewatch/tidewatch/store/embedded"
)

var _ Store = (*embedded.DB)(nil)

// Open opens the backend that cfg selects. reg receives the backend's
// Prometheus-library metrics.
func Open(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (Store, error) {
	switch cfg.Type {
	case TypeEmbedded:
		return embedded.Open(cfg.Embedded, logger, reg)
	default:
		return nil, fmt.Errorf("storage.type: unknown backend %q", cfg.Type)
	}
}
