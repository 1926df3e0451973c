package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

const (
	hourMillis = int64(time.Hour / time.Millisecond)
	// insertTimeout bounds one INSERT; a stuck server is retried.
	insertTimeout = time.Minute
	minBackoff    = 100 * time.Millisecond
	maxBackoff    = 5 * time.Second
)

// seriesHour identifies one row of the series table.
type seriesHour struct {
	fp   uint64
	hour int64
}

// batch is the column-oriented content of one INSERT per table.
type batch struct {
	fps []uint64
	ts  []int64
	vs  []float64

	sPeriod []time.Time
	sFps    []uint64
	sMetric []string
	sNames  [][]string
	sValues [][]string
	// pending are the series rows of this batch, seen those already in
	// ClickHouse (owned by the writer).
	pending map[seriesHour]struct{}
	seen    map[seriesHour]struct{}
	added   []seriesHour // pending keys of the record being decoded
	missing int          // samples whose series labels were not found

	curFp   uint64
	curHour int64
	defs    map[uint64]seriesLabels
	maxHour int64
}

func (b *batch) rows() int { return len(b.fps) }

func (b *batch) reset() {
	b.fps, b.ts, b.vs = b.fps[:0], b.ts[:0], b.vs[:0]
	clear(b.sNames)
	clear(b.sValues)
	b.sPeriod, b.sFps, b.sMetric, b.sNames, b.sValues = b.sPeriod[:0], b.sFps[:0], b.sMetric[:0], b.sNames[:0], b.sValues[:0]
	clear(b.pending)
	b.missing = 0
}

func (b *batch) startSeries(fp uint64, defs map[uint64]seriesLabels) {
	b.curFp, b.curHour, b.defs = fp, math.MinInt64, defs
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func (b *batch) add(fp uint64, t int64, v float64) {
	b.fps = append(b.fps, fp)
	b.ts = append(b.ts, t)
	b.vs = append(b.vs, v)
	h := floorDiv(t, hourMillis)
	if h == b.curHour {
		return
	}
	b.curHour = h
	b.maxHour = max(b.maxHour, h)
	key := seriesHour{fp, h}
	if _, ok := b.seen[key]; ok {
		return
	}
	if _, ok := b.pending[key]; ok {
		return
	}
	sl, ok := b.defs[fp]
	if !ok {
		b.missing++
		return
	}
	b.pending[key] = struct{}{}
	b.added = append(b.added, key)
	b.sPeriod = append(b.sPeriod, time.Unix(h*3600, 0).UTC())
	b.sFps = append(b.sFps, fp)
	b.sMetric = append(b.sMetric, sl.metricName)
	b.sNames = append(b.sNames, sl.names)
	b.sValues = append(b.sValues, sl.values)
}

// truncate undoes a partly decoded record.
func (b *batch) truncate(rows, seriesRows int) {
	b.fps, b.ts, b.vs = b.fps[:rows], b.ts[:rows], b.vs[:rows]
	b.sPeriod, b.sFps, b.sMetric, b.sNames, b.sValues = b.sPeriod[:seriesRows], b.sFps[:seriesRows], b.sMetric[:seriesRows], b.sNames[:seriesRows], b.sValues[:seriesRows]
	for _, k := range b.added {
		delete(b.pending, k)
	}
}

// bytes estimates the uncompressed size of the batch's columns.
func (b *batch) bytes() int {
	n := 24*len(b.fps) + 20*len(b.sFps)
	for i := range b.sNames {
		n += len(b.sMetric[i])
		for j := range b.sNames[i] {
			n += len(b.sNames[i][j]) + len(b.sValues[i][j]) + 2
		}
	}
	return n
}

// writer is the goroutine that moves records from the queue into ClickHouse.
type writer struct {
	s       *Store
	r       *queueReader
	b       batch
	closing chan struct{}
	done    chan struct{}
	// ctx ends when Close gives up waiting for the writer.
	ctx    context.Context
	cancel context.CancelFunc
	// prunedHour is the newest hour pruneSeen ran for.
	prunedHour int64
}

func newWriter(s *Store, r *queueReader) *writer {
	ctx, cancel := context.WithCancel(context.Background())
	return &writer{
		s: s,
		r: r,
		b: batch{
			pending: make(map[seriesHour]struct{}),
			seen:    make(map[seriesHour]struct{}),
		},
		closing:    make(chan struct{}),
		done:       make(chan struct{}),
		ctx:        ctx,
		cancel:     cancel,
		prunedHour: math.MinInt64,
	}
}

func (w *writer) isClosing() bool {
	select {
	case <-w.closing:
		return true
	default:
		return false
	}
}

// run inserts batches until Close; what it could not insert stays queued.
func (w *writer) run() {
	defer close(w.done)
	defer w.r.close()
	for {
		end, ok := w.gather()
		if !ok {
			return
		}
		if !w.send(end) {
			return
		}
	}
}

// gather reads records into the batch until it is full, its oldest sample
// waited batch.max_delay, a Flush asks for it or Close begins. It returns
// the queue position after the batch, and false when the writer should
// stop.
func (w *writer) gather() (position, bool) {
	cfg := w.s.cfg.Batch
	var deadline time.Time
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for w.b.rows() < cfg.MaxRows {
		payload, err := w.r.next()
		if err == nil {
			rows, seriesRows := w.b.rows(), len(w.b.sFps)
			w.b.added = w.b.added[:0]
			if err := decodeRecord(payload, w.r.labels, &w.b); err != nil {
				w.b.truncate(rows, seriesRows)
				w.s.logger.Error("undecodable queue record: skipping it", "segment", w.r.seg, "offset", w.r.off, "err", err)
				w.s.metrics.errorOf(errKindQueue).Inc()
				continue
			}
			if deadline.IsZero() && w.b.rows() > 0 {
				deadline = time.Now().Add(time.Duration(cfg.MaxDelay))
			}
			continue
		}
		if !errors.Is(err, errNoRecord) {
			w.s.logger.Error("read disk queue", "err", err)
			w.s.metrics.errorOf(errKindQueue).Inc()
			if !w.wait(time.Second) {
				return w.r.pos(), w.b.rows() > 0
			}
			continue
		}
		// Everything written so far is read.
		if w.b.rows() == 0 {
			if w.s.queue.acked().less(w.r.pos()) {
				// Segments without samples (or only corrupt ones) were passed.
				if err := w.s.queue.acknowledge(w.r.pos()); err != nil {
					w.s.logger.Warn("acknowledge queue position", "err", err)
				}
			}
			if w.isClosing() {
				return w.r.pos(), false
			}
		} else if w.isClosing() || w.s.queue.flushPending() || !time.Now().Before(deadline) {
			break
		}
		var timeout <-chan time.Time
		if !deadline.IsZero() {
			if timer == nil {
				timer = time.NewTimer(time.Until(deadline))
			} else {
				timer.Reset(time.Until(deadline))
			}
			timeout = timer.C
		}
		select {
		case <-w.s.queue.notify:
		case <-timeout:
		case <-w.closing:
		}
	}
	return w.r.pos(), true
}

// wait sleeps for d unless Close begins; it reports whether it slept.
func (w *writer) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-w.closing:
		return false
	}
}

// send inserts the batch, retrying with backoff until it succeeds, and
// acknowledges it. It returns false when Close made it give up: the batch
// stays in the queue for the next start.
func (w *writer) send(end position) bool {
	backoff := minBackoff
	var firstErr time.Time
	for attempt := 1; ; attempt++ {
		err := w.insert()
		if err == nil {
			if attempt > 1 {
				w.s.metrics.replays.Inc()
				w.s.logger.Info("clickhouse inserts recovered", "attempts", attempt, "outage", time.Since(firstErr).Round(time.Millisecond))
			}
			break
		}
		kind := errorKind(err)
		w.s.metrics.errorOf(kind).Inc()
		if attempt == 1 {
			firstErr = time.Now()
			w.s.logger.Warn("insert into clickhouse: retrying while samples wait in the disk queue", "kind", kind, "rows", w.b.rows(), "err", err)
		} else if attempt%50 == 0 {
			w.s.logger.Warn("insert into clickhouse still failing", "kind", kind, "attempts", attempt, "outage", time.Since(firstErr).Round(time.Second), "err", err)
		}
		if w.isClosing() {
			w.s.logger.Warn("closing with samples left in the disk queue: they are inserted after the next start", "rows", w.b.rows())
			return false
		}
		if !w.wait(backoff) {
			return false
		}
		backoff = min(2*backoff, maxBackoff)
	}
	for k := range w.b.pending {
		w.b.seen[k] = struct{}{}
	}
	w.pruneSeen()
	if w.b.missing > 0 {
		w.s.metrics.missingLabels.Add(w.b.missing)
	}
	w.b.reset()
	if err := w.s.queue.acknowledge(end); err != nil {
		w.s.logger.Warn("acknowledge queue position", "err", err)
		w.s.metrics.errorOf(errKindQueue).Inc()
	}
	return true
}

// pruneSeen forgets the series rows of hours before the previous one, once
// per new hour.
func (w *writer) pruneSeen() {
	if w.b.maxHour <= w.prunedHour {
		return
	}
	w.prunedHour = w.b.maxHour
	for k := range w.b.seen {
		if k.hour < w.b.maxHour-1 {
			delete(w.b.seen, k)
		}
	}
}

func (w *writer) insert() error {
	ctx, cancel := context.WithTimeout(w.ctx, insertTimeout)
	defer cancel()
	sch, err := w.s.ensureSchema(ctx)
	if err != nil {
		return err
	}
	if w.s.cfg.Cluster != "" {
		// Acknowledge only what the shards have, not the initiator's
		// Distributed queue.
		ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"insert_distributed_sync": 1}))
	}
	start := time.Now()
	if len(w.b.sFps) > 0 {
		table := sch.table(tableSeries)
		err := w.insertColumns(ctx, fmt.Sprintf("INSERT INTO %s (period, fingerprint, metric_name, label_names, label_values)", table),
			w.b.sPeriod, w.b.sFps, w.b.sMetric, w.b.sNames, w.b.sValues)
		if err != nil {
			return fmt.Errorf("insert batch into %s: %w", table, err)
		}
	}
	table := sch.table(tableSamples)
	if err := w.insertColumns(ctx, fmt.Sprintf("INSERT INTO %s (fingerprint, timestamp, value)", table), w.b.fps, w.b.ts, w.b.vs); err != nil {
		return fmt.Errorf("insert batch into %s: %w", table, err)
	}
	w.s.metrics.insertSeconds.UpdateDuration(start)
	w.s.metrics.batches.Inc()
	w.s.metrics.rowsSamples.Add(len(w.b.fps))
	w.s.metrics.rowsSeries.Add(len(w.b.sFps))
	w.s.metrics.bytesSent.Add(w.b.bytes())
	return nil
}

// insertColumns sends one INSERT with the given columns, in the order of
// the statement's explicit column list.
func (w *writer) insertColumns(ctx context.Context, stmt string, cols ...any) error {
	b, err := w.s.conn.PrepareBatch(ctx, stmt, driver.WithReleaseConnection())
	if err != nil {
		return err
	}
	defer b.Close()
	for i, c := range cols {
		if err := b.Column(i).Append(c); err != nil {
			return fmt.Errorf("column %d: %w", i, err)
		}
	}
	return b.Send()
}

// errorKind classifies an insert or query error for the errors metric.
func errorKind(err error) string {
	var ex *clickhouse.Exception
	var nerr net.Error
	switch {
	case errors.As(err, &ex):
		return errKindServer
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &nerr) && nerr.Timeout():
		return errKindTimeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &nerr):
		return errKindConnection
	}
	return errKindOther
}
