// Package dashboards generates Tidewatch's Grafana dashboards as code with
// grafana-foundation-sdk: Fleet overview, Service, Autoscaling (one row per
// configured policy), Alerts and Tidewatch itself. It also writes Grafana
// provisioning files and pushes dashboards through Grafana's HTTP API.
//
// Every Prometheus query uses the template variables $datasource, $job and
// $instance (and Grafana's $__rate_interval). The JSON is deterministic: the
// same Input gives the same bytes, and each dashboard has a fixed UID, so
// re-provisioning or re-pushing updates dashboards in place.
package dashboards
