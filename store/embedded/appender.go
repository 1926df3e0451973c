package embedded

import (
	"errors"
	"fmt"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// appender is a TSDB head appender whose Commit is acknowledged only if the
// WAL took every record of it and nothing torn precedes them.
type appender struct {
	db   *DB
	gen  uint64 // the TSDB generation next belongs to
	next storage.AppenderV2
}

var (
	_ storage.ExemplarAppenderV2 = (*appender)(nil)
	_ storage.GetRef             = (*appender)(nil)
	_ storage.ExemplarAppenderV2 = errAppender{}
	_ storage.GetRef             = errAppender{}
)

// Series references carry the TSDB generation in their top bits. Callers
// cache them across appenders (the scrape loop does), and the head trusts a
// reference without checking the labels: after a reopen, an old reference
// may name another series. A reference of another generation is dropped, so
// the head looks the series up by its labels. Generation 0 (no reopen yet)
// leaves references as the TSDB makes them.
const (
	refGenShift = 48
	refMask     = 1<<refGenShift - 1
)

func (a *appender) tag(ref storage.SeriesRef) storage.SeriesRef {
	if ref == 0 {
		return 0
	}
	return ref&refMask | storage.SeriesRef(a.gen)<<refGenShift
}

func (a *appender) untag(ref storage.SeriesRef) storage.SeriesRef {
	if uint64(ref)>>refGenShift != a.gen&(1<<(64-refGenShift)-1) {
		return 0
	}
	return ref & refMask
}

// stale reports why the appender can no longer touch its head: the store
// was closed, or the head was closed by a repair's reopen (appending to a
// closed head can make the TSDB panic when it maps a full chunk). The caller
// holds db.mu for reading.
func (a *appender) stale() error {
	switch {
	case a.db.closed:
		return ErrClosed
	case a.db.gen != a.gen || a.db.tsdb == nil:
		return fmt.Errorf("%w: the TSDB was reopened since this appender was made", ErrDegraded)
	}
	return nil
}

func (a *appender) Append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AppendV2Options) (storage.SeriesRef, error) {
	a.db.mu.RLock()
	defer a.db.mu.RUnlock()
	if err := a.stale(); err != nil {
		return 0, err
	}
	ref, err := a.next.Append(a.untag(ref), ls, st, t, v, h, fh, opts)
	return a.tag(ref), err
}

func (a *appender) AppendExemplars(ref storage.SeriesRef, ls labels.Labels, es []exemplar.Exemplar) (storage.SeriesRef, error) {
	a.db.mu.RLock()
	defer a.db.mu.RUnlock()
	if err := a.stale(); err != nil {
		return 0, err
	}
	ea, ok := a.next.(storage.ExemplarAppenderV2)
	if !ok {
		return ref, errors.New("the TSDB appender does not take exemplars")
	}
	ref, err := ea.AppendExemplars(a.untag(ref), ls, es)
	return a.tag(ref), err
}

func (a *appender) GetRef(ls labels.Labels, hash uint64) (storage.SeriesRef, labels.Labels) {
	a.db.mu.RLock()
	defer a.db.mu.RUnlock()
	if a.stale() != nil {
		return 0, labels.EmptyLabels()
	}
	if g, ok := a.next.(storage.GetRef); ok {
		ref, ls := g.GetRef(ls, hash)
		return a.tag(ref), ls
	}
	return 0, labels.EmptyLabels()
}

// Commit writes the transaction to the WAL. It holds the TSDB open (a
// repair waits for it) and refuses to commit while the store is degraded or
// if the TSDB was reopened since the appender was made.
//
// A WAL write failure anywhere during the commit, even of another
// transaction, fails it: the WAL serialises writes, so records logged after a
// failed (possibly torn) one sit behind it, and the repair would drop them.
func (a *appender) Commit() error {
	db := a.db
	db.mu.RLock()
	defer db.mu.RUnlock()
	if err := a.stale(); err != nil {
		// Nothing of the closed head is kept: no rollback to write.
		return fmt.Errorf("commit: %w", err)
	}
	if err := db.Health(); err != nil {
		_ = a.next.Rollback()
		return fmt.Errorf("commit: %w", err)
	}
	err := a.next.Commit()
	if n := db.regs.walWritesFailed(); n > 0 {
		cause := err
		if cause == nil {
			cause = errors.New("a concurrent WAL write failed before this commit's records")
		}
		db.degrade(cause)
		return fmt.Errorf("commit (not acknowledged: %d WAL writes failed since the WAL was opened): %w: %w", int(n), ErrDegraded, cause)
	}
	if err != nil && isDiskError(err) {
		db.degrade(err)
		return fmt.Errorf("commit: %w: %w", ErrDegraded, err)
	}
	return err
}

func (a *appender) Rollback() error {
	a.db.mu.RLock()
	defer a.db.mu.RUnlock()
	if a.stale() != nil {
		return nil
	}
	return a.next.Rollback()
}

// errAppender refuses every append with err.
type errAppender struct{ err error }

func (e errAppender) Append(ref storage.SeriesRef, _ labels.Labels, _, _ int64, _ float64, _ *histogram.Histogram, _ *histogram.FloatHistogram, _ storage.AppendV2Options) (storage.SeriesRef, error) {
	return ref, e.err
}

func (e errAppender) AppendExemplars(ref storage.SeriesRef, _ labels.Labels, _ []exemplar.Exemplar) (storage.SeriesRef, error) {
	return ref, e.err
}

func (errAppender) GetRef(labels.Labels, uint64) (storage.SeriesRef, labels.Labels) {
	return 0, labels.EmptyLabels()
}

func (e errAppender) Commit() error { return e.err }
func (errAppender) Rollback() error { return nil }
