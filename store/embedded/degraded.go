package embedded

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// defaultProbeSize is how much a space probe writes: a few WAL pages more
// than a repair and the next commits need.
const defaultProbeSize = 1 << 20

// health is the store's degraded state and the repair loop's settings.
type health struct {
	mtx       sync.Mutex
	cause     error // nil while healthy
	repairing bool  // the repair loop runs

	retryMin, retryMax time.Duration
	probeSize          int
}

func (h *health) err() error {
	h.mtx.Lock()
	defer h.mtx.Unlock()
	if h.cause == nil {
		return nil
	}
	return fmt.Errorf("embedded storage: %w: %w", ErrDegraded, h.cause)
}

// isDiskError reports whether err is an error of the data disk rather than
// of the data (out of order, out of bounds…).
func isDiskError(err error) bool {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EIO, syscall.EROFS} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// degrade marks the store degraded by cause and starts the repair loop. The
// caller holds mu for reading.
func (db *DB) degrade(cause error) {
	h := &db.health
	h.mtx.Lock()
	defer h.mtx.Unlock()
	if h.cause == nil {
		h.cause = cause
		db.logger.Error("a write of the data disk failed; refusing writes until the wal is repaired", "path", db.cfg.Path, "err", cause)
	}
	if h.repairing {
		return
	}
	h.repairing = true
	db.repairWG.Add(1)
	go db.repairLoop()
}

// repairLoop waits, with a growing back-off, until a probe write shows the
// data disk writable, then reopens the TSDB. It ends when the store is
// healthy again or closed.
func (db *DB) repairLoop() {
	defer db.repairWG.Done()
	h := &db.health
	wait := h.retryMin
	for {
		select {
		case <-db.stop:
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, h.retryMax)
		if err := probeSpace(db.cfg.Path, h.probeSize); err != nil {
			db.logger.Warn("data disk still not writable", "path", db.cfg.Path, "err", err, "retry_in", wait)
			continue
		}
		if err := db.reopen(); err != nil {
			db.logger.Error("reopening the tsdb to repair its wal", "path", db.cfg.Path, "err", err, "retry_in", wait)
			continue
		}
		db.logger.Info("wal repaired; accepting writes again", "path", db.cfg.Path)
		return
	}
}

// reopen closes the TSDB and opens it again: the WAL replay finds the torn
// tail a failed write left, the repair cuts it off with everything after
// it (all refused, never acknowledged) and writes on in a new segment, and
// the head is rebuilt from what the WAL holds, so no series lives on in
// memory without its WAL record. On success the store is healthy again.
func (db *DB) reopen() error {
	// Refuse new queriers, and wait for the open ones: they read chunks from
	// files that closing unmaps.
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return ErrClosed
	}
	db.repairing = true
	db.mu.Unlock()
	waited := make(chan struct{})
	go func() { db.readers.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-db.stop: // Close does not wait for a querier left open
		return ErrClosed
	}

	db.mu.Lock()
	defer db.mu.Unlock()
	defer func() { db.repairing = false }()
	if db.tsdb != nil {
		if err := db.tsdb.Close(); err != nil {
			db.logger.Warn("closing the tsdb before its repair", "err", err)
		}
		db.tsdb = nil
		db.regs.unregisterAll()
		db.gen++
	}
	if err := db.open(); err != nil {
		return err
	}
	h := &db.health
	h.mtx.Lock()
	h.cause, h.repairing = nil, false
	h.mtx.Unlock()
	return nil
}

// probeSpace writes size bytes to a file in dir, syncs and removes it.
func probeSpace(dir string, size int) (err error) {
	f, err := os.CreateTemp(dir, ".space-probe-*")
	if err != nil {
		return fmt.Errorf("create probe file: %w", err)
	}
	defer func() {
		if rerr := os.Remove(f.Name()); rerr != nil && err == nil {
			err = fmt.Errorf("remove probe file: %w", rerr)
		}
	}()
	buf := make([]byte, 64<<10)
	for n := 0; n < size; n += len(buf) {
		if _, err := f.Write(buf); err != nil {
			f.Close()
			return fmt.Errorf("write probe file: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync probe file: %w", err)
	}
	return f.Close()
}

// registrations is the registerer one TSDB instance gets: it forwards to the
// store's registerer (if any), remembers what was registered so that a
// reopen can unregister it first (the TSDB does not on Close), and keeps the
// WAL's and WBL's writes_failed_total counters, which tell a commit whether
// any WAL write failed since the WAL was opened.
type registrations struct {
	reg prometheus.Registerer // may be nil

	mtx        sync.Mutex
	registered []prometheus.Collector
	failed     []prometheus.Collector
}

var _ prometheus.Registerer = (*registrations)(nil)

var walWritesFailedNames = []string{
	`"prometheus_tsdb_wal_writes_failed_total"`,
	`"prometheus_tsdb_out_of_order_wbl_writes_failed_total"`,
}

func (r *registrations) Register(c prometheus.Collector) error {
	if describes(c, walWritesFailedNames) && collects(c) == 1 {
		r.mtx.Lock()
		r.failed = append(r.failed, c)
		r.mtx.Unlock()
	}
	if r.reg == nil {
		return nil
	}
	if err := r.reg.Register(c); err != nil {
		return err
	}
	r.mtx.Lock()
	r.registered = append(r.registered, c)
	r.mtx.Unlock()
	return nil
}

func (r *registrations) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r *registrations) Unregister(c prometheus.Collector) bool {
	if r.reg == nil {
		return true
	}
	return r.reg.Unregister(c)
}

// unregisterAll unregisters every collector still registered.
func (r *registrations) unregisterAll() {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	if r.reg != nil {
		for _, c := range r.registered {
			r.reg.Unregister(c)
		}
	}
	r.registered = nil
}

// walWritesFailed sums the WAL's and WBL's failed writes.
func (r *registrations) walWritesFailed() float64 {
	r.mtx.Lock()
	cs := r.failed
	r.mtx.Unlock()
	var sum float64
	for _, c := range cs {
		// A counter collects one metric: no goroutine needed (this runs on
		// every commit).
		ch := make(chan prometheus.Metric, 1)
		c.Collect(ch)
		close(ch)
		for m := range ch {
			var d dto.Metric
			if m.Write(&d) == nil {
				sum += d.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// describes reports whether c describes a metric named one of names (quoted).
func describes(c prometheus.Collector, names []string) bool {
	ch := make(chan *prometheus.Desc, 4)
	go func() { c.Describe(ch); close(ch) }()
	found := false
	for d := range ch {
		s := d.String()
		for _, n := range names {
			if strings.Contains(s, "fqName: "+n) {
				found = true
			}
		}
	}
	return found
}

// collects counts the metrics c collects.
func collects(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 4)
	go func() { c.Collect(ch); close(ch) }()
	n := 0
	for range ch {
		n++
	}
	return n
}
