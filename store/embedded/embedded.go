// Package embedded is Tidewatch's zero-set-up storage backend: the Prometheus
// TSDB in a local directory, with its write-ahead log, compaction and
// retention by time and size.
//
// Every committed append is written to the WAL before Commit returns, so a
// restart (or a crash of the process) finds it again; Close compacts nothing
// and just closes the head cleanly, as Prometheus does on shutdown.
//
// A write error of the data disk (a full disk, an I/O error) can leave a torn
// record at the tail of the WAL, and the series the failed transaction
// created live on in memory without their WAL record. Anything acknowledged
// after that point would be cut off by the repair at the next start, so the
// store degrades instead (see degraded.go): Health reports the error,
// appends are refused, and once a probe write shows the disk writable again
// the TSDB is closed and reopened, which repairs the torn tail (never
// acknowledged) and rebuilds the head from what the WAL holds.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/compression"
)

// DB is the embedded store. It is safe for concurrent use.
type DB struct {
	cfg    Config
	logger *slog.Logger
	reg    prometheus.Registerer // may be nil

	// mu guards the open TSDB: read-locked by every use, write-locked by a
	// repair while it closes and reopens it.
	mu        sync.RWMutex
	tsdb      *tsdb.DB // nil after a failed reopen, until the next succeeds
	stats     *tsdb.DBStats
	regs      *registrations // what the open TSDB registered
	gen       uint64         // incremented by every reopen
	repairing bool           // a repair waits for the open queriers; refuse new ones
	closed    bool
	// readers counts the open queriers: their chunks are mmapped files that
	// a reopen must not unmap under them.
	readers sync.WaitGroup

	health health

	stop      chan struct{}
	repairWG  sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var (
	_ storage.SampleAndChunkQueryable = (*DB)(nil)
	_ storage.AppendableV2            = (*DB)(nil)
	_ storage.ExemplarQueryable       = (*DB)(nil)
)

var (
	// ErrDegraded is returned (wrapped) by Health and by appends while a
	// write of the data disk has failed and the WAL is not repaired yet.
	ErrDegraded = errors.New("writes are refused until the WAL is repaired")
	// ErrRepairing is returned by queries while the TSDB is being reopened.
	ErrRepairing = errors.New("the TSDB is being reopened to repair its WAL")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("the embedded store is closed")
)

// Open opens (or creates) the TSDB in cfg.Path. reg receives the TSDB's own
// Prometheus metrics (prometheus_tsdb_*); it may be nil.
func Open(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	db := &DB{
		cfg:    cfg,
		logger: logger,
		reg:    reg,
		health: health{retryMin: 250 * time.Millisecond, retryMax: 5 * time.Second, probeSize: defaultProbeSize},
		stop:   make(chan struct{}),
	}
	if err := db.open(); err != nil {
		return nil, err
	}
	return db, nil
}

// open opens the TSDB. The caller holds mu, or is Open.
func (db *DB) open() error {
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = time.Duration(db.cfg.Retention).Milliseconds()
	opts.MaxBytes = int64(db.cfg.RetentionSize)
	opts.OutOfOrderTimeWindow = time.Duration(db.cfg.OutOfOrderTimeWindow).Milliseconds()
	opts.WALCompression = compression.Snappy
	opts.EnableExemplarStorage = true
	opts.MaxExemplars = 100_000
	stats := tsdb.NewDBStats()
	regs := &registrations{reg: db.reg}
	t, err := tsdb.Open(db.cfg.Path, db.logger.With("component", "tsdb"), regs, opts, stats)
	if err != nil {
		regs.unregisterAll()
		return fmt.Errorf("open tsdb in %q: %w", db.cfg.Path, err)
	}
	db.tsdb, db.stats, db.regs = t, stats, regs
	return nil
}

// readable returns the open TSDB, or why there is none. The caller holds mu.
func (db *DB) readable() (*tsdb.DB, error) {
	switch {
	case db.closed:
		return nil, ErrClosed
	case db.repairing || db.tsdb == nil:
		return nil, ErrRepairing
	}
	return db.tsdb, nil
}

// Flush returns at once: a committed append is already in the WAL and
// visible to queries.
func (*DB) Flush(context.Context) error { return nil }

// Health is nil while the store accepts writes. After a write of the data
// disk failed it wraps ErrDegraded with the cause, until the WAL is repaired.
func (db *DB) Health() error { return db.health.err() }

// AppenderV2 returns an appender of the TSDB head. While the store is
// degraded, its Append and Commit return the Health error.
func (db *DB) AppenderV2(ctx context.Context) storage.AppenderV2 {
	db.mu.RLock()
	defer db.mu.RUnlock()
	t, err := db.readable()
	if err == nil {
		err = db.Health()
	}
	if err != nil {
		return errAppender{err: err}
	}
	return &appender{db: db, gen: db.gen, next: t.AppenderV2(ctx)}
}

// Querier returns a querier of the blocks and the head.
func (db *DB) Querier(mint, maxt int64) (storage.Querier, error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	t, err := db.readable()
	if err != nil {
		return nil, err
	}
	q, err := t.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	db.readers.Add(1)
	return &querier{Querier: q, done: db.readers.Done}, nil
}

// ChunkQuerier returns a chunk querier of the blocks and the head.
func (db *DB) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	t, err := db.readable()
	if err != nil {
		return nil, err
	}
	q, err := t.ChunkQuerier(mint, maxt)
	if err != nil {
		return nil, err
	}
	db.readers.Add(1)
	return &chunkQuerier{ChunkQuerier: q, done: db.readers.Done}, nil
}

// ExemplarQuerier returns a querier of the head's exemplars (kept in memory).
func (db *DB) ExemplarQuerier(ctx context.Context) (storage.ExemplarQuerier, error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	t, err := db.readable()
	if err != nil {
		return nil, err
	}
	return t.ExemplarQuerier(ctx)
}

// StartTime returns the oldest timestamp stored.
func (db *DB) StartTime() (int64, error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	t, err := db.readable()
	if err != nil {
		return 0, err
	}
	return t.StartTime()
}

// Stats reports head statistics, for /api/v1/status/tsdb.
func (db *DB) Stats(statsByLabelName string, limit int) (*tsdb.Stats, error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	t, err := db.readable()
	if err != nil {
		return nil, err
	}
	return t.Head().Stats(statsByLabelName, limit), nil
}

// WALReplayStatus reports the WAL replay progress, for /api/v1/status/walreplay.
func (db *DB) WALReplayStatus() (tsdb.WALReplayStatus, error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.stats.Head.WALReplayStatus.GetWALReplayStatus(), nil
}

// BlockMetas lists the persisted blocks, for /api/v1/status/tsdb/blocks.
func (db *DB) BlockMetas() ([]tsdb.BlockMeta, error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	t, err := db.readable()
	if err != nil {
		return nil, err
	}
	blocks := t.Blocks()
	metas := make([]tsdb.BlockMeta, 0, len(blocks))
	for _, b := range blocks {
		metas = append(metas, b.Meta())
	}
	return metas, nil
}

// Snapshot writes a snapshot of the blocks (and the head if withHead) to dir.
func (db *DB) Snapshot(dir string, withHead bool) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	t, err := db.readable()
	if err != nil {
		return err
	}
	return t.Snapshot(dir, withHead)
}

// Delete marks the matching samples in [mint, maxt] deleted.
func (db *DB) Delete(ctx context.Context, mint, maxt int64, ms ...*labels.Matcher) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	t, err := db.readable()
	if err != nil {
		return err
	}
	return t.Delete(ctx, mint, maxt, ms...)
}

// CleanTombstones rewrites the blocks that have deletions.
func (db *DB) CleanTombstones() error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	t, err := db.readable()
	if err != nil {
		return err
	}
	return t.CleanTombstones()
}

// Close stops a running repair and closes the TSDB. Further calls return
// the first call's result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		// No commit can degrade the store (and start a repair) once closed
		// is set, so the repair loop, if any, is the last to stop.
		db.mu.Lock()
		db.closed = true
		db.mu.Unlock()
		close(db.stop)
		db.repairWG.Wait()
		db.mu.Lock()
		defer db.mu.Unlock()
		if db.tsdb != nil {
			db.closeErr = db.tsdb.Close()
		}
	})
	return db.closeErr
}

// querier releases its hold on the open TSDB when closed.
type querier struct {
	storage.Querier
	once sync.Once
	done func()
}

func (q *querier) Close() error {
	err := q.Querier.Close()
	q.once.Do(q.done)
	return err
}

type chunkQuerier struct {
	storage.ChunkQuerier
	once sync.Once
	done func()
}

func (q *chunkQuerier) Close() error {
	err := q.ChunkQuerier.Close()
	q.once.Do(q.done)
	return err
}
