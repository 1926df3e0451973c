package clickhouse

// The SQL Grafana's ClickHouse data source runs for the dashboards'
// capacity panels. It lives here because it reads this package's tables
// (the 5-minute rollup and the series table), whose names are private to it.

import (
	"fmt"
	"regexp"
	"strings"
)

var grafanaIdentRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// grafanaIdent returns db when it is a plain identifier and a backquoted one otherwise.
func grafanaIdent(db string) string {
	if grafanaIdentRE.MatchString(db) {
		return db
	}
	return "`" + strings.ReplaceAll(db, "`", "\\`") + "`"
}

// grafanaString quotes s as a ClickHouse string literal.
func grafanaString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// rollupJoin is the FROM clause both queries share: per series and bucket,
// agg over the rollup, joined to the series of metric seen in the range.
func rollupJoin(db, metric, agg string) string {
	db = grafanaIdent(db)
	return fmt.Sprintf(`FROM
(
    SELECT fingerprint, bucket, %[3]s
    FROM %[1]s.`+tableRollup+`
    WHERE bucket BETWEEN toUInt64($__fromTime) * 1000 AND toUInt64($__toTime) * 1000
    GROUP BY fingerprint, bucket
)
ANY INNER JOIN
(
    SELECT DISTINCT fingerprint, label_names, label_values
    FROM %[1]s.`+tableSeries+`
    WHERE metric_name = %[2]s AND period >= toStartOfHour($__fromTime)
) USING fingerprint`, db, grafanaString(metric), agg)
}

// DailyMaxQuery is the daily maximum of metric per label, read from the
// 5-minute rollup: SQL for Grafana's ClickHouse data source ($__fromTime,
// $__toTime), with the tables' own names, for the capacity panels.
func DailyMaxQuery(db, metric, label string) string {
	return fmt.Sprintf(`SELECT
    toUInt64(toDateTime(toDate(toDateTime(intDiv(bucket, 1000))))) * 1000 AS t,
    label_values[indexOf(label_names, %[2]s)] AS %[3]s,
    max(peak) AS daily_peak
%[1]s
GROUP BY t, %[3]s
ORDER BY t, %[3]s`, rollupJoin(db, metric, "maxMerge(max_value) AS peak"), grafanaString(label), label)
}

// IncreasePer5mQuery is the increase of the counter metric per 5 minutes and
// job, from the rollup (within each bucket, ignoring counter resets): SQL
// for Grafana's ClickHouse data source, like DailyMaxQuery.
func IncreasePer5mQuery(db, metric string) string {
	return fmt.Sprintf(`SELECT
    bucket AS t,
    label_values[indexOf(label_names, 'job')] AS job,
    sum(increase) AS requests
%s
GROUP BY t, job
ORDER BY t, job`, rollupJoin(db, metric, "maxMerge(max_value) - minMerge(min_value) AS increase"))
}
