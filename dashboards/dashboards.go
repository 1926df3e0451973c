package dashboards

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/tidewatch/tidewatch/autoscaler"
	"github.com/tidewatch/tidewatch/store/clickhouse"
)

// Input is what the dashboards are generated from: the parts of the running
// configuration that change them.
type Input struct {
	Dashboards Config
	// Policies get one row each on the Autoscaling dashboard.
	Policies []autoscaler.PolicyConfig
	// ClickHouseStore adds the ClickHouse store's panels to the Tidewatch
	// dashboard (storage.type: clickhouse).
	ClickHouseStore bool
	// ClickHouseDatabase is the database of the ClickHouse SQL panels.
	ClickHouseDatabase string
}

// Dashboard is one generated dashboard.
type Dashboard struct {
	UID   string
	Title string
	// JSON is the dashboard model, indented, as Grafana stores it.
	JSON []byte
}

// Stable UIDs of the dashboards.
const (
	UIDFleet       = "tidewatch-fleet"
	UIDService     = "tidewatch-service"
	UIDAutoscaling = "tidewatch-autoscaling"
	UIDAlerts      = "tidewatch-alerts"
	UIDTidewatch   = "tidewatch-self"
)

// Generate builds every dashboard. The output depends only on in.
func Generate(in Input) ([]Dashboard, error) {
	builders := []*dashboard.DashboardBuilder{
		fleet(in), service(in), autoscaling(in), alerts(), self(in),
	}
	out := make([]Dashboard, 0, len(builders))
	for _, b := range builders {
		d, err := b.Build()
		if err != nil {
			return nil, fmt.Errorf("build dashboard: %w", err)
		}
		numberPanels(&d)
		js, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("encode dashboard %s: %w", *d.Uid, err)
		}
		out = append(out, Dashboard{UID: *d.Uid, Title: *d.Title, JSON: append(js, '\n')})
	}
	return out, nil
}

// numberPanels gives every panel and row a unique id, in layout order.
func numberPanels(d *dashboard.Dashboard) {
	id := uint32(0)
	for _, p := range d.Panels {
		id++
		switch {
		case p.Panel != nil:
			p.Panel.Id = ptr(id)
		case p.RowPanel != nil:
			p.RowPanel.Id = id
		}
	}
}

// sel is the $job/$instance matcher set, with extra matchers appended.
func sel(extra ...string) string {
	return "{" + strings.Join(append([]string{`job=~"$job"`, `instance=~"$instance"`}, extra...), ",") + "}"
}

const ri = "[$__rate_interval]"

func fleet(in Input) *dashboard.DashboardBuilder {
	s := sel()
	d := newDashboard(UIDFleet, "Tidewatch / Fleet overview", `__name__=~"up|probe_success"`).
		WithRow(dashboard.NewRowBuilder("Targets")).
		WithPanel(statPanel("Targets up", "none", "Scrape targets whose last scrape succeeded.",
			q(`sum(up`+s+`)`, ""))).
		WithPanel(statPanel("Targets down", "none", "Scrape targets whose last scrape failed.",
			q(`count(up`+s+` == 0) or vector(0)`, ""))).
		WithPanel(statPanel("Probe success", "percentunit", "Share of probes that succeeded.",
			q(`avg(probe_success`+s+`)`, ""))).
		WithPanel(statPanel("Samples per scrape", "short", "Samples scraped in the last scrape of every target.",
			q(`sum(scrape_samples_scraped`+s+`)`, ""))).
		WithPanel(timeseriesPanel("Targets up by job", "none", "", 12,
			q(`sum by (job) (up`+s+`)`, "{{job}}"))).
		WithPanel(timeseriesPanel("Scrape failure ratio by job", "percentunit", "Share of scrapes that failed over the rate interval.", 12,
			q(`1 - avg by (job) (avg_over_time(up`+s+ri+`))`, "{{job}}"))).
		WithRow(dashboard.NewRowBuilder("Probes and load")).
		WithPanel(timeseriesPanel("Probe success by job", "percentunit", "", 12,
			q(`avg by (job) (avg_over_time(probe_success`+s+ri+`))`, "{{job}}"))).
		WithPanel(timeseriesPanel("Scrape duration by job", "s", "", 12,
			q(`max by (job) (scrape_duration_seconds`+s+`)`, "{{job}}"))).
		WithPanel(tablePanel("Busiest jobs by samples", "Jobs by samples per scrape, the ten largest.", 12,
			q(`topk(10, sum by (job) (scrape_samples_scraped`+s+`))`, ""))).
		WithPanel(timeseriesPanel("Samples scraped by job", "short", "", 12,
			q(`topk(10, sum by (job) (scrape_samples_scraped`+s+`))`, "{{job}}")))
	if in.Dashboards.ClickHouseDatasource != "" {
		d = d.WithRow(dashboard.NewRowBuilder("Long range (ClickHouse rollup)")).
			WithPanel(sqlPanel(in, "Daily peak of targets up, per job", 24, false, clickhouse.DailyMaxQuery(in.db(), "up", "job")))
	}
	return d
}

func service(in Input) *dashboard.DashboardBuilder {
	req := in.Dashboards.requestsMetric()
	hist := in.Dashboards.latencyHistogram()
	s := sel()
	d := newDashboard(UIDService, "Tidewatch / Service", `__name__=~"up|probe_success"`).
		WithRow(dashboard.NewRowBuilder("Traffic")).
		WithPanel(timeseriesPanel("Request rate", "reqps", "Requests per second per job ("+req+").", 12,
			q(`sum by (job) (rate(`+req+s+ri+`))`, "{{job}}"))).
		WithPanel(timeseriesPanel("Error ratio", "percentunit", "Share of requests answered with a 5xx code.", 12,
			q(`sum by (job) (rate(`+req+sel(`code=~"5.."`)+ri+`)) / sum by (job) (rate(`+req+s+ri+`))`+
				` or sum by (job) (rate(`+req+s+ri+`)) * 0`, "{{job}}"))).
		WithPanel(timeseriesPanel("Requests by code", "reqps", "", 12,
			q(`sum by (job, code) (rate(`+req+s+ri+`))`, "{{job}} {{code}}"))).
		WithPanel(timeseriesPanel("Latency quantiles", "s", "From the histogram "+hist+".", 12,
			q(`histogram_quantile(0.5, sum by (job, le) (rate(`+hist+`_bucket`+s+ri+`)))`, "p50 {{job}}"),
			q(`histogram_quantile(0.9, sum by (job, le) (rate(`+hist+`_bucket`+s+ri+`)))`, "p90 {{job}}"),
			q(`histogram_quantile(0.99, sum by (job, le) (rate(`+hist+`_bucket`+s+ri+`)))`, "p99 {{job}}"))).
		WithPanel(heatmapPanel("Latency distribution", "Requests per latency bucket of "+hist+".", 24,
			q(`sum by (le) (increase(`+hist+`_bucket`+s+ri+`))`, ""))).
		WithRow(dashboard.NewRowBuilder("Instances")).
		WithPanel(timeseriesPanel("Instances up", "none", "", 12,
			q(`sum by (job) (up`+s+`)`, "up {{job}}"),
			q(`count by (job) (up`+s+`)`, "total {{job}}"))).
		WithPanel(timeseriesPanel("Request rate by instance", "reqps", "", 12,
			q(`sum by (instance) (rate(`+req+s+ri+`))`, "{{instance}}"))).
		WithPanel(timeseriesPanel("Probe latency", "s", "Duration of the probes of the selected jobs.", 12,
			q(`max by (job, instance) (probe_duration_seconds`+s+`)`, "{{job}} {{instance}}"))).
		WithPanel(timeseriesPanel("Probe success", "percentunit", "", 12,
			q(`avg by (job, instance) (avg_over_time(probe_success`+s+ri+`))`, "{{job}} {{instance}}")))
	if in.Dashboards.ClickHouseDatasource != "" {
		d = d.WithRow(dashboard.NewRowBuilder("Long range (ClickHouse rollup)")).
			WithPanel(sqlPanel(in, "Requests per 5 minutes, per job", 24, false, clickhouse.IncreasePer5mQuery(in.db(), req)))
	}
	return d
}

func autoscaling(in Input) *dashboard.DashboardBuilder {
	d := newDashboard(UIDAutoscaling, "Tidewatch / Autoscaling", `__name__="up"`)
	for _, p := range in.Policies {
		pol := fmt.Sprintf(`{policy=%q}`, p.Name)
		d = d.WithRow(dashboard.NewRowBuilder(fmt.Sprintf("Policy %s (%s)", p.Name, p.Target))).
			WithPanel(timeseriesPanel(p.Name+": current vs desired replicas", "none",
				fmt.Sprintf("Replicas of %s, between min %d and max %d.", p.Target, p.Min, p.Max), 8,
				q(`tidewatch_autoscaler_current_replicas`+pol, "current"),
				q(`tidewatch_autoscaler_desired_replicas`+pol, "desired"),
				q(`tidewatch_autoscaler_min_replicas`+pol, "min"),
				q(`tidewatch_autoscaler_max_replicas`+pol, "max")))
		load := []query{q(`tidewatch_autoscaler_metric_value`+pol, "actual (metric {{metric}})")}
		if p.Forecast != nil {
			load = append(load, q(`tidewatch_autoscaler_forecast`+pol, "forecast (metric {{metric}})"))
		}
		d = d.WithPanel(timeseriesPanel(p.Name+": forecast vs actual load", "short",
			"The policy's metric values and, with a forecast, the value expected at the horizon.", 8, load...))
		var util []query
		for i, m := range p.Metrics {
			mp := fmt.Sprintf(`{policy=%q,metric="%d"}`, p.Name, i)
			if m.PerInstance > 0 {
				util = append(util,
					q(`tidewatch_autoscaler_metric_value`+mp+` / on (policy) group_left clamp_min(tidewatch_autoscaler_current_replicas`+pol+`, 1)`,
						fmt.Sprintf("metric %d per replica", i)),
					q(`tidewatch_autoscaler_metric_target`+mp, fmt.Sprintf("metric %d target per replica", i)))
				continue
			}
			util = append(util,
				q(`tidewatch_autoscaler_metric_value`+mp, fmt.Sprintf("metric %d utilization", i)),
				q(`tidewatch_autoscaler_metric_target`+mp, fmt.Sprintf("metric %d target", i)))
		}
		if len(util) > 0 {
			d = d.WithPanel(timeseriesPanel(p.Name+": utilization vs target", "short", "", 8, util...))
		}
		d = d.Annotation(dashboard.NewAnnotationQueryBuilder().Name("Scaling decisions: " + p.Name).
			Datasource(promDS).Enable(true).IconColor("orange").
			Expr(`tidewatch_autoscaler_desired_replicas` + pol + ` != tidewatch_autoscaler_current_replicas` + pol).
			TitleFormat(p.Name + ": desired replicas differ from current").
			TextFormat("target {{target}} on backend {{backend}}; the value is the desired count").
			Step("1m"))
	}
	if in.Dashboards.ClickHouseDatasource != "" {
		d = d.WithRow(dashboard.NewRowBuilder("Long range (ClickHouse rollup)")).
			WithPanel(sqlPanel(in, "Daily peak of desired replicas, per policy", 24, false,
				clickhouse.DailyMaxQuery(in.db(), "tidewatch_autoscaler_desired_replicas", "policy")))
	}
	return d
}

func alerts() *dashboard.DashboardBuilder {
	return newDashboard(UIDAlerts, "Tidewatch / Alerts", `__name__="up"`).
		WithRow(dashboard.NewRowBuilder("Alerts")).
		WithPanel(statPanel("Firing alerts", "none", "",
			q(`count(ALERTS{alertstate="firing"}) or vector(0)`, ""))).
		WithPanel(statPanel("Pending alerts", "none", "",
			q(`count(ALERTS{alertstate="pending"}) or vector(0)`, ""))).
		WithPanel(statPanel("Notifications sent", "short", "Notifications delivered over the rate interval.",
			q(`sum(increase(tidewatch_notifications_sent_total`+ri+`)) or vector(0)`, ""))).
		WithPanel(statPanel("Notification failures", "short", "Failed notification attempts over the rate interval.",
			q(`sum(increase(tidewatch_notifications_failed_total`+ri+`)) or vector(0)`, ""))).
		WithPanel(timeseriesPanel("Firing by severity", "none", "", 12,
			q(`sum by (severity) (ALERTS{alertstate="firing"})`, "{{severity}}"))).
		WithPanel(tablePanel("Firing alerts", "", 12,
			q(`ALERTS{alertstate="firing"}`, ""))).
		WithRow(dashboard.NewRowBuilder("Notifications")).
		WithPanel(timeseriesPanel("Notification failures per receiver", "short", "Failed attempts per second, per receiver and integration.", 12,
			q(`sum by (receiver, integration) (rate(tidewatch_notifications_failed_total`+ri+`))`, "{{receiver}}/{{integration}}"))).
		WithPanel(timeseriesPanel("Notifications sent per receiver", "short", "", 12,
			q(`sum by (receiver, integration) (rate(tidewatch_notifications_sent_total`+ri+`))`, "{{receiver}}/{{integration}}")))
}

// self is the Tidewatch dashboard: Tidewatch's own metrics, scraped from
// its /metrics by a job the $job variable picks.
func self(in Input) *dashboard.DashboardBuilder {
	s := sel()
	d := newDashboard(UIDTidewatch, "Tidewatch / Tidewatch", `__name__="tidewatch_store_samples_appended_total"`).
		WithRow(dashboard.NewRowBuilder("Ingest")).
		WithPanel(timeseriesPanel("Ingest rate", "short", "Samples appended to the store per second, by source.", 12,
			q(`sum by (source) (rate(tidewatch_store_samples_appended_total`+s+ri+`))`, "{{source}}"))).
		WithPanel(timeseriesPanel("Commit latency", "s", "Store commit duration quantiles, by source.", 12,
			q(`histogram_quantile(0.5, sum by (source, le) (rate(tidewatch_store_commit_duration_seconds_bucket`+s+ri+`)))`, "p50 {{source}}"),
			q(`histogram_quantile(0.99, sum by (source, le) (rate(tidewatch_store_commit_duration_seconds_bucket`+s+ri+`)))`, "p99 {{source}}"))).
		WithPanel(timeseriesPanel("Append failures", "short", "", 12,
			q(`sum by (source) (rate(tidewatch_store_append_failures_total`+s+ri+`))`, "{{source}}"))).
		WithPanel(timeseriesPanel("Scrapes", "short", "Scrapes per second per scraped job (exported_job when the self-scrape does not honor labels).", 12,
			q(`sum by (exported_job) (rate(tidewatch_scrapes_total`+s+ri+`))`, "{{exported_job}} scrapes"),
			q(`sum by (exported_job) (rate(tidewatch_scrape_failures_total`+s+ri+`))`, "{{exported_job}} failures"))).
		WithRow(dashboard.NewRowBuilder("Queries and rules")).
		WithPanel(timeseriesPanel("Query latency", "s", "Prometheus API query duration, by kind.", 12,
			q(`histogram_quantile(0.5, sum by (kind, le) (rate(tidewatch_query_duration_seconds_bucket`+s+ri+`)))`, "p50 {{kind}}"),
			q(`histogram_quantile(0.99, sum by (kind, le) (rate(tidewatch_query_duration_seconds_bucket`+s+ri+`)))`, "p99 {{kind}}"))).
		WithPanel(timeseriesPanel("HTTP requests by handler", "reqps", "", 12,
			q(`sum by (handler) (rate(tidewatch_http_requests_total`+s+ri+`))`, "{{handler}}"))).
		WithPanel(timeseriesPanel("Rule group evaluations", "short", "", 12,
			q(`sum by (rule_group) (rate(tidewatch_rule_group_evaluations_total`+s+ri+`))`, "{{rule_group}}"),
			q(`sum by (rule_group) (rate(tidewatch_rule_evaluation_failures_total`+s+ri+`))`, "{{rule_group}} failures"))).
		WithPanel(timeseriesPanel("Rule group evaluation latency", "s", "", 12,
			q(`histogram_quantile(0.99, sum by (rule_group, le) (rate(tidewatch_rule_group_evaluation_duration_seconds_bucket`+s+ri+`)))`, "p99 {{rule_group}}"))).
		WithPanel(timeseriesPanel("Autoscaler evaluations", "short", "", 12,
			q(`sum by (policy) (rate(tidewatch_autoscaler_evaluations_total`+s+ri+`))`, "{{policy}}"),
			q(`sum by (policy) (rate(tidewatch_autoscaler_evaluation_failures_total`+s+ri+`))`+
				` or sum by (policy) (rate(tidewatch_autoscaler_evaluations_total`+s+ri+`)) * 0`, "{{policy}} failures"))).
		WithPanel(timeseriesPanel("Probes", "short", "Probes per second and probes in flight.", 12,
			q(`sum by (exported_job) (rate(tidewatch_probes_total`+s+ri+`))`, "{{exported_job}}"),
			q(`sum(tidewatch_probes_in_flight`+s+`)`, "in flight")))
	if in.ClickHouseStore {
		d = d.WithRow(dashboard.NewRowBuilder("ClickHouse store")).
			WithPanel(timeseriesPanel("ClickHouse insert latency", "s", "", 12,
				q(`histogram_quantile(0.5, sum by (le) (rate(tidewatch_clickhouse_insert_duration_seconds_bucket`+s+ri+`)))`, "p50"),
				q(`histogram_quantile(0.99, sum by (le) (rate(tidewatch_clickhouse_insert_duration_seconds_bucket`+s+ri+`)))`, "p99"))).
			WithPanel(timeseriesPanel("ClickHouse queue", "bytes", "Bytes waiting in the disk queue.", 12,
				q(`sum(tidewatch_clickhouse_queue_pending_bytes`+s+`)`, "pending"),
				q(`sum(tidewatch_clickhouse_queue_file_bytes`+s+`)`, "on disk"))).
			WithPanel(timeseriesPanel("ClickHouse rows inserted", "short", "", 12,
				q(`sum by (table) (rate(tidewatch_clickhouse_insert_rows_total`+s+ri+`))`, "{{table}}"))).
			WithPanel(timeseriesPanel("ClickHouse errors", "short", "", 12,
				q(`sum by (kind) (rate(tidewatch_clickhouse_errors_total`+s+ri+`)) or sum(rate(tidewatch_clickhouse_insert_batches_total`+s+ri+`)) * 0`, "{{kind}}")))
	}
	if in.Dashboards.ClickHouseDatasource != "" {
		d = d.WithRow(dashboard.NewRowBuilder("Long range (ClickHouse rollup)")).
			WithPanel(sqlPanel(in, "Daily peak of samples per scrape, per job", 24, false,
				clickhouse.DailyMaxQuery(in.db(), "scrape_samples_scraped", "job")))
	}
	return d
}

func (in Input) db() string {
	if in.ClickHouseDatabase == "" {
		return "tidewatch"
	}
	return in.ClickHouseDatabase
}

// sqlPanel is a time series panel with one ClickHouse SQL target.
func sqlPanel(in Input, title string, span uint32, table bool, sql string) *dashboard.PanelBuilder {
	ds := ClickHouseType
	uid := in.Dashboards.ClickHouseDatasource
	p := dashboard.NewPanelBuilder().Type("timeseries").Title(title).Span(span).Height(8).
		Datasource(dashboardDS(ds, uid)).
		Description("Long-range capacity analytics from the samples_5m rollup table (see docs/clickhouse.md).").
		WithTarget(sqlQuery{uid: uid, refID: "A", sql: sql, table: table})
	return p
}

func dashboardDS(typ, uid string) dashboard.DataSourceRef {
	return dashboard.DataSourceRef{Type: ptr(typ), Uid: ptr(uid)}
}
