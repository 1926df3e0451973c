// Package embedded is Tidewatch's zero-set-up storage backend: the Prometheus
// TSDB in a local directory, with its write-ahead log, compaction and
// retention by time and size.
//
// Every committed append is written to the WAL before Commit returns, so a
// restart (or a crash of the process) finds it again; Close compacts nothing
// and just closes the head cleanly, as Prometheus does on shutdown.
package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/compression"
)

// DB is the embedded store. It is safe for concurrent use.
type DB struct {
	*tsdb.DB
	stats *tsdb.DBStats

	closeOnce sync.Once
	closeErr  error
}

var (
	_ storage.Storage                 = (*DB)(nil)
	_ storage.SampleAndChunkQueryable = (*DB)(nil)
)

// Open opens (or creates) the TSDB in cfg.Path. reg receives the TSDB's own
// Prometheus metrics (prometheus_tsdb_*); it may be nil.
func Open(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = time.Duration(cfg.Retention).Milliseconds()
	opts.MaxBytes = int64(cfg.RetentionSize)
	opts.OutOfOrderTimeWindow = time.Duration(cfg.OutOfOrderTimeWindow).Milliseconds()
	opts.WALCompression = compression.Snappy
	opts.EnableExemplarStorage = true
	opts.MaxExemplars = 100_000
	stats := tsdb.NewDBStats()
	db, err := tsdb.Open(cfg.Path, logger.With("component", "tsdb"), reg, opts, stats)
	if err != nil {
		return nil, fmt.Errorf("open tsdb in %q: %w", cfg.Path, err)
	}
	return &DB{DB: db, stats: stats}, nil
}

// Flush returns at once: a committed append is already in the WAL and
// visible to queries.
func (*DB) Flush(context.Context) error { return nil }

// Health is always nil: the embedded store has no asynchronous write path
// (a failed append is returned to the appender directly).
func (*DB) Health() error { return nil }

// Stats reports head statistics, for /api/v1/status/tsdb.
func (db *DB) Stats(statsByLabelName string, limit int) (*tsdb.Stats, error) {
	return db.Head().Stats(statsByLabelName, limit), nil
}

// WALReplayStatus reports the WAL replay progress, for /api/v1/status/walreplay.
func (db *DB) WALReplayStatus() (tsdb.WALReplayStatus, error) {
	return db.stats.Head.WALReplayStatus.GetWALReplayStatus(), nil
}

// BlockMetas lists the persisted blocks, for /api/v1/status/tsdb/blocks.
func (db *DB) BlockMetas() ([]tsdb.BlockMeta, error) {
	blocks := db.Blocks()
	metas := make([]tsdb.BlockMeta, 0, len(blocks))
	for _, b := range blocks {
		metas = append(metas, b.Meta())
	}
	return metas, nil
}

// Close closes the TSDB. Further calls return the first call's result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() { db.closeErr = db.DB.Close() })
	return db.closeErr
}
