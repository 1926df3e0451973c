// Package clickhouse is Tidewatch's production storage backend: samples are
// batched, written through a bounded on-disk queue and inserted into
// ClickHouse (one server or a cluster); PromQL reads them back through the
// storage.Queryable it implements. See docs/clickhouse.md.
package clickhouse
