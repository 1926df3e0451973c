package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/VictoriaMetrics/metrics"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/prometheus/storage"

	"github.com/tidewatch/tidewatch/internal/fileread"
)

const (
	// startupSchemaTimeout bounds Open's attempt to create the schema; a
	// server that cannot be reached by then is retried in the background.
	startupSchemaTimeout = 15 * time.Second
	// closeTimeout bounds how long Close keeps inserting queued batches.
	closeTimeout = 10 * time.Second
	// retentionInterval is how often expired partitions are dropped on
	// servers without TTL.
	retentionInterval = time.Hour
	// lastSampleTTL is how long the duplicate check remembers a series.
	lastSampleTTL = time.Hour
)

// Store is the ClickHouse backend. It is safe for concurrent use.
type Store struct {
	cfg     Config
	logger  *slog.Logger
	metrics *storeMetrics
	conn    driver.Conn
	queue   *queue
	writer  *writer
	last    lastSamples
	names   schema // table names; features unknown until the server answers

	schemaMu sync.Mutex
	schema   *schema // set once migrated

	// literalFingerprints is the most fingerprints a samples query lists
	// literally; larger selections use a subquery on the series table.
	literalFingerprints int

	maintCancel context.CancelFunc
	maintDone   chan struct{}
	closeOnce   sync.Once
	closeErr    error
}

var (
	_ storage.Queryable               = (*Store)(nil)
	_ storage.ChunkQueryable          = (*Store)(nil)
	_ storage.SampleAndChunkQueryable = (*Store)(nil)
	_ storage.AppendableV2            = (*Store)(nil)
)

// Open connects to ClickHouse, creates or migrates the schema, opens the
// disk queue in cfg.Queue.Path and starts the background writer. When
// ClickHouse cannot be reached, Open still succeeds: commits go to the disk
// queue and the schema is created once the server answers. Server-side
// errors (authentication, DDL) fail Open. set receives the self-metrics; nil
// uses a private set (see MetricsSet).
func Open(cfg Config, logger *slog.Logger, set *metrics.Set) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger = logger.With("component", "clickhouse")
	opts := &clickhouse.Options{
		Addr:         cfg.Addresses,
		Auth:         clickhouse.Auth{Username: cfg.Username},
		DialTimeout:  5 * time.Second,
		MaxOpenConns: 10,
		MaxIdleConns: 5,
		Protocol:     clickhouse.Native,
	}
	if cfg.PasswordFile != "" {
		b, err := fileread.ReadFile(cfg.PasswordFile, fileread.SecretLimit)
		if err != nil {
			return nil, fmt.Errorf("storage.clickhouse.password_file: %w", err)
		}
		opts.Auth.Password = strings.TrimRight(string(b), "\r\n")
	}
	if cfg.TLS != nil {
		tc, err := commoncfg.NewTLSConfig(cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("storage.clickhouse.tls: %w", err)
		}
		opts.TLS = tc
	}
	switch cfg.Compression {
	case CompressionLZ4:
		opts.Compression = &clickhouse.Compression{Method: clickhouse.CompressionLZ4}
	case CompressionZSTD:
		opts.Compression = &clickhouse.Compression{Method: clickhouse.CompressionZSTD}
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse connection to %s: %w", strings.Join(cfg.Addresses, ","), err)
	}
	s := &Store{
		cfg:                 cfg,
		logger:              logger,
		metrics:             newStoreMetrics(set),
		conn:                conn,
		names:               schema{db: cfg.Database, cluster: cfg.Cluster, retention: time.Duration(cfg.Retention)},
		literalFingerprints: 5000,
	}
	s.queue, err = openQueue(cfg.Queue.Path, int64(cfg.Queue.MaxSize), logger, s.metrics)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("open disk queue: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startupSchemaTimeout)
	_, err = s.ensureSchema(ctx)
	cancel()
	if err != nil {
		var ex *clickhouse.Exception
		if errors.As(err, &ex) {
			s.queue.close()
			conn.Close()
			return nil, err
		}
		logger.Warn("clickhouse unreachable at start: queueing commits on disk until it answers", "addresses", cfg.Addresses, "err", err)
	}
	r, err := newQueueReader(s.queue)
	if err != nil {
		s.queue.close()
		conn.Close()
		return nil, err
	}
	s.writer = newWriter(s, r)
	go s.writer.run()
	mctx, mcancel := context.WithCancel(context.Background())
	s.maintCancel, s.maintDone = mcancel, make(chan struct{})
	go s.maintain(mctx)
	return s, nil
}

// MetricsSet returns the set holding the store's self-metrics.
func (s *Store) MetricsSet() *metrics.Set { return s.metrics.set }

// ensureSchema returns the migrated schema, detecting the server version
// and running the migrations on first use.
func (s *Store) ensureSchema(ctx context.Context) (schema, error) {
	s.schemaMu.Lock()
	defer s.schemaMu.Unlock()
	if s.schema != nil {
		return *s.schema, nil
	}
	var version string
	if err := s.conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		return schema{}, fmt.Errorf("query clickhouse version: %w", err)
	}
	v, err := parseVersion(version)
	if err != nil {
		return schema{}, err
	}
	sch := s.names
	sch.features = featuresOf(v)
	if err := migrate(ctx, s.conn, sch); err != nil {
		return schema{}, err
	}
	s.logger.Info("clickhouse schema ready", "server_version", version, "database", sch.db, "cluster", sch.cluster,
		"codecs", sch.features.codecs, "low_cardinality", sch.features.lowCardinality, "ttl", sch.features.ttl)
	s.schema = &sch
	return sch, nil
}

// maintain fsyncs the queue, prunes the duplicate check's memory and, on
// servers without TTL, drops expired partitions.
func (s *Store) maintain(ctx context.Context) {
	defer close(s.maintDone)
	syncTick := time.NewTicker(time.Second)
	defer syncTick.Stop()
	var lastRetention, lastPrune time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-syncTick.C:
			if err := s.queue.sync(); err != nil {
				s.logger.Error("fsync disk queue", "err", err)
				s.metrics.errorOf(errKindQueue).Inc()
			}
			if now.Sub(lastPrune) >= lastSampleTTL/4 {
				lastPrune = now
				s.last.prune(now.Add(-lastSampleTTL))
			}
			if s.cfg.Retention > 0 && now.Sub(lastRetention) >= retentionInterval {
				s.schemaMu.Lock()
				sch := s.schema
				s.schemaMu.Unlock()
				if sch == nil || sch.features.ttl {
					continue
				}
				lastRetention = now
				if err := s.dropExpired(ctx, *sch, now); err != nil {
					s.logger.Warn("drop expired partitions", "err", err)
					s.metrics.errorOf(errorKind(err)).Inc()
				}
			}
		}
	}
}

// dropExpired drops the daily partitions entirely older than the retention
// (for servers without TTL).
func (s *Store) dropExpired(ctx context.Context, sch schema, now time.Time) error {
	cutoff := now.Add(-time.Duration(s.cfg.Retention)).UTC()
	// Partition IDs: samples and rollup by day number since the epoch,
	// series by the server-local date YYYYMMDD (one spare day for the
	// time zone).
	cutDay := floorDiv(cutoff.UnixMilli(), 24*hourMillis)
	cutDate, _ := strconv.Atoi(cutoff.AddDate(0, 0, -1).Format("20060102"))
	var errs []error
	for _, t := range []struct {
		name    string
		expired func(id int64) bool
	}{
		{tableSamples, func(id int64) bool { return id < cutDay }},
		{tableRollup, func(id int64) bool { return id < cutDay }},
		{tableSeries, func(id int64) bool { return id < int64(cutDate) }},
	} {
		local := t.name
		if sch.cluster != "" {
			local += localSuffix
		}
		rows, err := s.conn.Query(ctx, "SELECT DISTINCT partition_id FROM system.parts WHERE database = ? AND table = ? AND active", sch.db, local)
		if err != nil {
			errs = append(errs, fmt.Errorf("list partitions of %s: %w", local, err))
			continue
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err == nil {
				ids = append(ids, id)
			}
		}
		rows.Close()
		for _, id := range ids {
			n, err := strconv.ParseInt(id, 10, 64)
			if err != nil || !t.expired(n) {
				continue
			}
			stmt := fmt.Sprintf("ALTER TABLE %s%s DROP PARTITION ID '%s'", sch.local(t.name), sch.onCluster(), id)
			if err := s.conn.Exec(ctx, stmt); err != nil {
				errs = append(errs, fmt.Errorf("drop partition %s of %s: %w", id, local, err))
				continue
			}
			s.logger.Info("dropped expired partition", "table", local, "partition_id", id)
		}
	}
	return errors.Join(errs...)
}

// Flush blocks until everything committed before the call is inserted into
// ClickHouse, or ctx ends (for example while ClickHouse is down).
func (s *Store) Flush(ctx context.Context) error {
	target := s.queue.writePos()
	for {
		acked, done := s.queue.requestFlush(target)
		if done {
			return nil
		}
		select {
		case <-acked:
		case <-s.writer.done:
			if _, done := s.queue.requestFlush(target); done {
				return nil
			}
			return fmt.Errorf("flush clickhouse store: %w", ErrClosed)
		case <-ctx.Done():
			return fmt.Errorf("flush clickhouse store: %w", ctx.Err())
		}
	}
}

// Health is nil while commits are accepted. It reports ErrQueueFull while
// the disk queue rejects commits, and ErrClosed after Close. An unreachable
// ClickHouse alone is not unhealthy: the queue absorbs the outage.
func (s *Store) Health() error {
	select {
	case <-s.writer.done:
		return ErrClosed
	default:
	}
	return s.queue.health()
}

// Close stops accepting commits, keeps inserting queued batches for up to
// 10 s, then leaves the rest in the disk queue for the next start. It is
// safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		qerr := s.queue.close()
		close(s.writer.closing)
		t := time.NewTimer(closeTimeout)
		select {
		case <-s.writer.done:
		case <-t.C:
			s.writer.cancel()
			<-s.writer.done
		}
		t.Stop()
		s.writer.cancel()
		s.maintCancel()
		<-s.maintDone
		cerr := s.conn.Close()
		s.closeErr = errors.Join(qerr, cerr)
	})
	return s.closeErr
}
