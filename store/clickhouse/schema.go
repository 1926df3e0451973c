package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Table names. In cluster mode the data lives in <name>_local tables on
// every shard and <name> is the Distributed table over them; on one server
// <name> is the MergeTree table itself.
const (
	tableSeries     = "series"
	tableSamples    = "samples"
	tableRollup     = "samples_5m"
	viewRollup      = "samples_5m_mv"
	tableMigrations = "schema_migrations"
	localSuffix     = "_local"
)

// sampleHour is the samples table's leading sort key: the hour of a
// sample, as a query condition must spell it for the primary key to apply.
// intDiv truncates toward zero like Go's integer division.
const sampleHour = "intDiv(timestamp, 3600000)"

// ClickHouse error codes the schema code tolerates when several Tidewatch
// instances create the same objects at once.
const (
	codeTableAlreadyExists    = 57
	codeDatabaseAlreadyExists = 82
)

// serverVersion is a ClickHouse release, from SELECT version().
type serverVersion struct{ major, minor int }

func parseVersion(s string) (serverVersion, error) {
	parts := strings.SplitN(strings.TrimSpace(s), ".", 3)
	if len(parts) < 2 {
		return serverVersion{}, fmt.Errorf("parse clickhouse version %q: want major.minor", s)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err := errors.Join(err1, err2); err != nil {
		return serverVersion{}, fmt.Errorf("parse clickhouse version %q: %w", s, err)
	}
	return serverVersion{major, minor}, nil
}

func (v serverVersion) atLeast(major, minor int) bool {
	return v.major > major || (v.major == major && v.minor >= minor)
}

func (v serverVersion) String() string { return fmt.Sprintf("%d.%d", v.major, v.minor) }

// features are the server capabilities the DDL adapts to.
type features struct {
	codecs         bool // CODEC(Delta, LZ4), 19.1
	lowCardinality bool // LowCardinality without the experimental flag, 19.3
	ttl            bool // table TTL, 19.6
	timeCodecs     bool // DoubleDelta and Gorilla, 19.11
}

func featuresOf(v serverVersion) features {
	return features{
		codecs:         v.atLeast(19, 1),
		lowCardinality: v.atLeast(19, 3),
		ttl:            v.atLeast(19, 6),
		timeCodecs:     v.atLeast(19, 11),
	}
}

// schema renders Tidewatch's DDL for one database, server and deployment.
type schema struct {
	db        string
	cluster   string
	features  features
	retention time.Duration // 0 keeps everything
}

// table is the fully qualified name queries and inserts use.
func (s schema) table(name string) string { return "`" + s.db + "`.`" + name + "`" }

// local is the fully qualified name of the table holding the data.
func (s schema) local(name string) string {
	if s.cluster == "" {
		return s.table(name)
	}
	return s.table(name + localSuffix)
}

func (s schema) onCluster() string {
	if s.cluster == "" {
		return ""
	}
	return " ON CLUSTER `" + s.cluster + "`"
}

// engine returns the table engine kind (MergeTree, ReplacingMergeTree…),
// replicated in cluster mode with a ZooKeeper path per shard and table.
func (s schema) engine(kind, name string) string {
	if s.cluster == "" {
		return kind
	}
	return fmt.Sprintf("Replicated%s('/clickhouse/tables/{shard}/%s/%s', '{replica}')", kind, s.db, name)
}

func (s schema) lowCardinality(typ string) string {
	if s.features.lowCardinality {
		return "LowCardinality(" + typ + ")"
	}
	return typ
}

func (s schema) ttl(expr string) string {
	if !s.features.ttl || s.retention <= 0 {
		return ""
	}
	return fmt.Sprintf("\nTTL %s + INTERVAL %d DAY", expr, int(s.retention/(24*time.Hour)))
}

// distributed creates the Distributed table name over name_local, sharded
// by fingerprint so that a series' rows and samples live on one shard.
func (s schema) distributed(name string) string {
	if s.cluster == "" {
		return ""
	}
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s%s AS %s\nENGINE = Distributed(`%s`, `%s`, `%s`, fingerprint)",
		s.table(name), s.onCluster(), s.local(name), s.cluster, s.db, name+localSuffix)
}

// migration is one step of the schema. Every statement must be idempotent
// (IF NOT EXISTS…): two instances may run the same migration at once, and
// a migration interrupted half-way is run again from its first statement.
type migration struct {
	version int
	name    string
	stmts   func(s schema) []string
}

var migrations = []migration{
	{1, "series and samples", func(s schema) []string {
		tsCodec, valueCodec := "", ""
		switch {
		case s.features.timeCodecs:
			tsCodec, valueCodec = " CODEC(DoubleDelta, LZ4)", " CODEC(Gorilla, LZ4)"
		case s.features.codecs:
			tsCodec = " CODEC(Delta(8), LZ4)"
		}
		stmts := []string{
			// One row per series and hour in which it has samples: the
			// label index. Rows repeat across hours (and after retried
			// inserts); readers take DISTINCT fingerprints.
			fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s%s (
    period DateTime,
    fingerprint UInt64,
    metric_name %s,
    label_names Array(%s),
    label_values Array(String)
) ENGINE = %s
PARTITION BY toDate(period)
ORDER BY (metric_name, fingerprint, period)%s`,
				s.local(tableSeries), s.onCluster(), s.lowCardinality("String"), s.lowCardinality("String"),
				s.engine("ReplacingMergeTree", tableSeries), s.ttl("toDate(period)")),
			// Samples, ordered by hour, then series, then time: one
			// series' samples of an hour are one contiguous range of the
			// primary key, and a short range over many series (an alert
			// rule's [5m], a dashboard's last hour) reads only the hours
			// it needs instead of every series' whole day. Readers must
			// repeat the hour condition: 18.16 does not derive it from a
			// timestamp condition (see querier.go). ReplacingMergeTree
			// removes the duplicates of retried inserts in background
			// merges; readers skip duplicates not merged yet.
			fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s%s (
    fingerprint UInt64,
    timestamp Int64%s,
    value Float64%s
) ENGINE = %s
PARTITION BY intDiv(timestamp, 86400000)
ORDER BY (%s, fingerprint, timestamp)%s`,
				s.local(tableSamples), s.onCluster(), tsCodec, valueCodec,
				s.engine("ReplacingMergeTree", tableSamples), sampleHour, s.ttl("toDate(toDateTime(intDiv(timestamp, 1000)))")),
		}
		if s.cluster != "" {
			stmts = append(stmts, s.distributed(tableSeries), s.distributed(tableSamples))
		}
		return stmts
	}},
	{2, "5-minute rollup", func(s schema) []string {
		stmts := []string{
			fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s%s (
    fingerprint UInt64,
    bucket Int64,
    min_value AggregateFunction(min, Float64),
    max_value AggregateFunction(max, Float64),
    sum_value AggregateFunction(sum, Float64),
    count AggregateFunction(count),
    last_value AggregateFunction(argMax, Float64, Int64)
) ENGINE = %s
PARTITION BY intDiv(bucket, 86400000)
ORDER BY (fingerprint, bucket)%s`,
				s.local(tableRollup), s.onCluster(), s.engine("AggregatingMergeTree", tableRollup),
				s.ttl("toDate(toDateTime(intDiv(bucket, 1000)))")),
			// NaN (stale markers included) would poison min/max/sum.
			fmt.Sprintf(`CREATE MATERIALIZED VIEW IF NOT EXISTS %s%s TO %s AS
SELECT
    fingerprint,
    intDiv(timestamp, 300000) * 300000 AS bucket,
    minState(value) AS min_value,
    maxState(value) AS max_value,
    sumState(value) AS sum_value,
    countState() AS count,
    argMaxState(value, timestamp) AS last_value
FROM %s
WHERE NOT isNaN(value)
GROUP BY fingerprint, bucket`,
				s.local(viewRollup), s.onCluster(), s.local(tableRollup), s.local(tableSamples)),
		}
		if s.cluster != "" {
			stmts = append(stmts, s.distributed(tableRollup))
		}
		return stmts
	}},
}

// migrate creates the database and brings its schema to the newest version.
// It is idempotent and safe to run from several instances at once. When
// every migration is recorded already it runs no DDL at all: in cluster
// mode ON CLUSTER statements wait for every server of the cluster, and a
// Tidewatch restarting while one replica is down must not wait for it.
func migrate(ctx context.Context, conn driver.Conn, s schema) error {
	if applied, err := appliedMigrations(ctx, conn, s); err == nil && len(applied) >= len(migrations) {
		all := true
		for _, m := range migrations {
			all = all && applied[uint32(m.version)]
		}
		if all {
			return nil
		}
	}
	if err := execTolerant(ctx, conn, fmt.Sprintf("CREATE DATABASE IF NOT EXISTS `%s`%s", s.db, s.onCluster())); err != nil {
		return fmt.Errorf("create database %s: %w", s.db, err)
	}
	migTable := s.table(tableMigrations)
	err := execTolerant(ctx, conn, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s%s (
    version UInt32,
    name String,
    applied_at DateTime
) ENGINE = %s
ORDER BY version`, migTable, s.onCluster(), s.engine("ReplacingMergeTree", tableMigrations)))
	if err != nil {
		return fmt.Errorf("create %s: %w", migTable, err)
	}
	applied, err := appliedMigrations(ctx, conn, s)
	if err != nil {
		return err
	}
	for _, m := range migrations {
		if applied[uint32(m.version)] {
			continue
		}
		for _, stmt := range m.stmts(s) {
			if err := execTolerant(ctx, conn, stmt); err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
			}
		}
		err := conn.Exec(ctx, fmt.Sprintf("INSERT INTO %s (version, name, applied_at) SELECT ?, ?, now()", migTable), uint32(m.version), m.name)
		if err != nil {
			return fmt.Errorf("record migration %d in %s: %w", m.version, migTable, err)
		}
	}
	return nil
}

// appliedMigrations reads the versions recorded in the migrations table.
func appliedMigrations(ctx context.Context, conn driver.Conn, s schema) (map[uint32]bool, error) {
	migTable := s.table(tableMigrations)
	applied := make(map[uint32]bool)
	rows, err := conn.Query(ctx, "SELECT DISTINCT version FROM "+migTable)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", migTable, err)
	}
	defer rows.Close()
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read %s: %w", migTable, err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", migTable, err)
	}
	return applied, nil
}

// execTolerant runs an idempotent DDL statement, treating "already exists"
// (a concurrent CREATE … IF NOT EXISTS won the race) as success.
func execTolerant(ctx context.Context, conn driver.Conn, stmt string) error {
	err := conn.Exec(ctx, stmt)
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && (ex.Code == codeTableAlreadyExists || ex.Code == codeDatabaseAlreadyExists) {
		return nil
	}
	return err
}
