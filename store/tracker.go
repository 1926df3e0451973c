package store

import (
	"context"
	"errors"

	"github.com/prometheus/prometheus/promql"
)

// queryTracker bounds how many queries the engine runs at once
// (query.max_concurrency). A query that finds every slot taken waits for
// one, for as long as its context allows: the engine passes the context that
// carries query.timeout and the client's cancellation, so a queued query
// gives up when either ends.
//
// It is written here rather than taken from Prometheus because
// promql.ActiveQueryTracker needs a memory-mapped file in a data directory
// (queries.active, replayed at start to log what was running at a crash).
// Tidewatch may run on ClickHouse with no local data directory, and writing
// files outside the configured paths is not allowed, so the tracker keeps
// only the part that protects the process: the semaphore.
type queryTracker struct {
	slots chan struct{}
}

var _ promql.QueryTracker = (*queryTracker)(nil)

// newQueryTracker returns a tracker allowing max concurrent queries; max
// must be positive.
func newQueryTracker(max int) *queryTracker {
	return &queryTracker{slots: make(chan struct{}, max)}
}

// GetMaxConcurrent implements promql.QueryTracker.
func (t *queryTracker) GetMaxConcurrent() int { return cap(t.slots) }

// Insert takes a slot, waiting while all are busy, until ctx ends. The
// returned index is meaningless: slots are interchangeable.
func (t *queryTracker) Insert(ctx context.Context, _ string) (int, error) {
	// A context that has already ended must not win a free slot by chance.
	if err := ctx.Err(); err != nil {
		return 0, queueErr(err)
	}
	select {
	case t.slots <- struct{}{}:
		return 0, nil
	case <-ctx.Done():
		return 0, queueErr(ctx.Err())
	}
}

// queueErr names a context's end the way the engine does, so that the API
// answers 503 timeout or canceled for a query that never got a slot.
func queueErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return promql.ErrQueryTimeout("query queue")
	}
	return promql.ErrQueryCanceled("query queue")
}

// Delete releases the slot Insert took.
func (t *queryTracker) Delete(int) {
	select {
	case <-t.slots:
	default:
		// More Deletes than Inserts is a caller bug; never block on it.
	}
}

// Running returns how many queries hold a slot now.
func (t *queryTracker) Running() int { return len(t.slots) }

// Close implements io.Closer; there is nothing to release.
func (t *queryTracker) Close() error { return nil }
