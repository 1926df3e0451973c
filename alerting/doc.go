// Package alerting evaluates Prometheus rule files on the store and delivers
// the resulting alerts.
//
// Rules are Prometheus' own (github.com/prometheus/prometheus/rules): rule
// files listed by rule_files (globs) are evaluated with Tidewatch's PromQL
// engine on the store's Queryable; recording rule results and the ALERTS and
// ALERTS_FOR_STATE series are appended to the store (counted as
// source="rules"). After a restart, pending and firing alerts are restored
// from ALERTS_FOR_STATE, as in Prometheus, when Tidewatch was down for less
// than OutageTolerance.
//
// Alerts go two ways at once:
//
//   - to the Alertmanagers of alerting.alertmanagers, through Prometheus'
//     notifier (static and discovered, relabeling, API v2, queue, resend);
//   - to the built-in notifier (package notify): Alertmanager's dispatcher,
//     inhibitor, silences, notification log and receivers embedded
//     in-process, configured by the notifications section. Without a
//     notifications route it holds alerts (visible in /api/v2/alerts) and
//     sends nothing.
package alerting
