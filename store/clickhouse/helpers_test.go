package clickhouse_test

import (
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/common/model"

	"github.com/tidewatch/tidewatch/internal/testinfra"
	"github.com/tidewatch/tidewatch/store/clickhouse"
)

// testConfig is a store configuration for srv with its queue in dir and a
// database of its own named after dir.
func testConfig(srv *testinfra.ClickHouse, dir string) clickhouse.Config {
	cfg := clickhouse.DefaultConfig
	cfg.Addresses = []string{srv.Addr}
	h := fnv.New64a()
	h.Write([]byte(dir))
	cfg.Database = fmt.Sprintf("t%016x", h.Sum64())
	cfg.Queue.Path = filepath.Join(dir, "queue")
	cfg.Batch.MaxDelay = model.Duration(50 * time.Millisecond)
	// The tests write fixed timestamps from 2023: keep them.
	cfg.Retention = 0
	return cfg
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() || os.Getenv("TIDEWATCH_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func openStore(t testing.TB, cfg clickhouse.Config) *clickhouse.Store {
	t.Helper()
	st, err := clickhouse.Open(cfg, testLogger(t), metrics.NewSet())
	if err != nil {
		t.Fatalf("open clickhouse store: %v", err)
	}
	return st
}
