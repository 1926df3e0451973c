package embedded

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

var _ storage.Queryable = (*ReadOnlyDB)(nil)

// ReadOnlyDB is the embedded store opened for queries only: it takes no
// lock and writes nothing in the data directory, so a running Tidewatch
// may keep serving from it. The head (the WAL not yet in blocks) is loaded
// in a temporary directory removed by Close.
type ReadOnlyDB struct {
	db      *tsdb.DBReadOnly
	sandbox string
}

// OpenReadOnly opens the store in cfg.Path for reading.
func OpenReadOnly(cfg Config, logger *slog.Logger) (*ReadOnlyDB, error) {
	sandbox, err := os.MkdirTemp("", "tidewatch-readonly-")
	if err != nil {
		return nil, fmt.Errorf("create a sandbox for the read-only store: %w", err)
	}
	db, err := tsdb.OpenDBReadOnly(cfg.Path, sandbox, logger)
	if err != nil {
		os.RemoveAll(sandbox)
		return nil, fmt.Errorf("open the embedded store read-only in %s: %w", cfg.Path, err)
	}
	return &ReadOnlyDB{db: db, sandbox: sandbox}, nil
}

// Querier implements storage.Queryable.
func (r *ReadOnlyDB) Querier(mint, maxt int64) (storage.Querier, error) {
	return r.db.Querier(mint, maxt)
}

// Close releases the store and removes the sandbox.
func (r *ReadOnlyDB) Close() error {
	err := r.db.Close()
	if rerr := os.RemoveAll(r.sandbox); err == nil {
		err = rerr
	}
	return err
}
