// Package store defines the storage contract that the rest of Tidewatch consumes,
// and opens the configured backend.
//
// A Store is a Prometheus storage: an AppendableV2 for the collector, the
// remote-write receiver and the rule manager, and a Queryable for the PromQL
// engine. Backends may write asynchronously (the ClickHouse backend batches and
// queues): an appender's Commit means the store has accepted the data and will
// not lose it, not necessarily that it is visible to queries yet. Flush waits
// until everything committed so far is visible and durable. Errors that happen
// after Commit returned are reported through Health.
package store

import (
	"context"

	"github.com/prometheus/prometheus/storage"
)

// Store is what a storage backend provides.
type Store interface {
	storage.Queryable
	storage.AppendableV2

	// Flush blocks until every sample committed before the call is durable and
	// visible to queries, or ctx ends.
	Flush(ctx context.Context) error
	// Health is nil while the backend accepts and persists writes normally. A
	// non-nil error means it is degraded (for example its disk queue is full,
	// or its data disk failed a write and it refuses writes until repaired);
	// readiness reports it.
	Health() error
	// Close flushes and releases the backend. It is safe to call more than once.
	Close() error
}
