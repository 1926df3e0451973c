package clickhouse

import (
	"fmt"

	"github.com/VictoriaMetrics/metrics"
)

// storeMetrics are the ClickHouse backend's self-metrics, registered in the
// *metrics.Set given to Open.
type storeMetrics struct {
	set *metrics.Set

	samplesCommitted *metrics.Counter
	commitsRejected  *metrics.Counter // queue full or closed
	samplesRejected  *metrics.Counter
	exemplarsDropped *metrics.Counter

	batches       *metrics.Counter
	rowsSamples   *metrics.Counter
	rowsSeries    *metrics.Counter
	bytesSent     *metrics.Counter
	insertSeconds *metrics.PrometheusHistogram
	replays       *metrics.Counter // batches inserted after at least one failed attempt
	missingLabels *metrics.Counter

	queueBytes        *metrics.Gauge // not yet in ClickHouse
	queueFileBytes    *metrics.Gauge // segment files on disk
	queueSegments     *metrics.Gauge
	queueFull         *metrics.Gauge
	queueCorruptBytes *metrics.Counter

	queryRowsRead   *metrics.Counter
	querySeriesRead *metrics.Counter
	queryLimitHits  *metrics.Counter
}

// Error kinds of tidewatch_clickhouse_errors_total.
const (
	errKindConnection = "connection"
	errKindServer     = "server"
	errKindTimeout    = "timeout"
	errKindQueue      = "queue"
	errKindOther      = "other"
)

func newStoreMetrics(set *metrics.Set) *storeMetrics {
	if set == nil {
		set = metrics.NewSet()
	}
	return &storeMetrics{
		set:               set,
		samplesCommitted:  set.NewCounter(`tidewatch_clickhouse_samples_committed_total`),
		commitsRejected:   set.NewCounter(`tidewatch_clickhouse_commits_rejected_total`),
		samplesRejected:   set.NewCounter(`tidewatch_clickhouse_samples_rejected_total`),
		exemplarsDropped:  set.NewCounter(`tidewatch_clickhouse_exemplars_dropped_total`),
		batches:           set.NewCounter(`tidewatch_clickhouse_insert_batches_total`),
		rowsSamples:       set.NewCounter(`tidewatch_clickhouse_insert_rows_total{table="samples"}`),
		rowsSeries:        set.NewCounter(`tidewatch_clickhouse_insert_rows_total{table="series"}`),
		bytesSent:         set.NewCounter(`tidewatch_clickhouse_insert_bytes_total`),
		insertSeconds:     set.NewPrometheusHistogram(`tidewatch_clickhouse_insert_duration_seconds`),
		replays:           set.NewCounter(`tidewatch_clickhouse_insert_retried_batches_total`),
		missingLabels:     set.NewCounter(`tidewatch_clickhouse_queue_missing_labels_total`),
		queueBytes:        set.NewGauge(`tidewatch_clickhouse_queue_pending_bytes`, nil),
		queueFileBytes:    set.NewGauge(`tidewatch_clickhouse_queue_file_bytes`, nil),
		queueSegments:     set.NewGauge(`tidewatch_clickhouse_queue_segments`, nil),
		queueFull:         set.NewGauge(`tidewatch_clickhouse_queue_full`, nil),
		queueCorruptBytes: set.NewCounter(`tidewatch_clickhouse_queue_corrupt_bytes_total`),
		queryRowsRead:     set.NewCounter(`tidewatch_clickhouse_query_rows_read_total`),
		querySeriesRead:   set.NewCounter(`tidewatch_clickhouse_query_series_read_total`),
		queryLimitHits:    set.NewCounter(`tidewatch_clickhouse_query_limit_exceeded_total`),
	}
}

func (m *storeMetrics) errorOf(kind string) *metrics.Counter {
	return m.set.GetOrCreateCounter(fmt.Sprintf(`tidewatch_clickhouse_errors_total{kind=%q}`, kind))
}
