package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/heatmap"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// The building blocks every dashboard shares: the data source reference,
// the template variables and small panel constructors.

// Grafana plugin ids of the data sources the dashboards use.
const (
	PrometheusType = "prometheus"
	ClickHouseType = "grafana-clickhouse-datasource"
)

func ptr[T any](v T) *T { return &v }

// promDS refers to the data source chosen in $datasource.
var promDS = common.DataSourceRef{Type: ptr(PrometheusType), Uid: ptr("${datasource}")}

// query is one Prometheus target.
type query struct {
	expr, legend string
	instant      bool
}

func q(expr, legend string) query { return query{expr: expr, legend: legend} }

func (qu query) builder(refID string) *prometheus.DataqueryBuilder {
	b := prometheus.NewDataqueryBuilder().Datasource(promDS).RefId(refID).Expr(qu.expr)
	if qu.legend != "" {
		b = b.LegendFormat(qu.legend)
	}
	if qu.instant {
		b = b.Instant().Format(prometheus.PromQueryFormatTable)
	} else {
		b = b.Range()
	}
	return b
}

func refID(i int) string { return string(rune('A' + i)) }

func timeseriesPanel(title, unit, desc string, span uint32, qs ...query) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().Title(title).Description(desc).Datasource(promDS).
		Unit(unit).Span(span).Height(8)
	for i, qu := range qs {
		p = p.WithTarget(qu.builder(refID(i)))
	}
	return p
}

func statPanel(title, unit, desc string, qs ...query) *stat.PanelBuilder {
	p := stat.NewPanelBuilder().Title(title).Description(desc).Datasource(promDS).
		Unit(unit).Span(6).Height(4).GraphMode(common.BigValueGraphModeArea).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}))
	for i, qu := range qs {
		p = p.WithTarget(qu.builder(refID(i)))
	}
	return p
}

// heatmapPanel shows the buckets of a classic histogram, one query in the
// heatmap format (le as the y axis).
func heatmapPanel(title, desc string, span uint32, qu query) *heatmap.PanelBuilder {
	return heatmap.NewPanelBuilder().Title(title).Description(desc).Datasource(promDS).
		Span(span).Height(8).Calculate(false).
		WithTarget(qu.builder("A").Format(prometheus.PromQueryFormatHeatmap).LegendFormat("{{le}}"))
}

func tablePanel(title, desc string, span uint32, qs ...query) *table.PanelBuilder {
	p := table.NewPanelBuilder().Title(title).Description(desc).Datasource(promDS).Span(span).Height(8)
	for i, qu := range qs {
		qu.instant = true
		p = p.WithTarget(qu.builder(refID(i)))
	}
	return p
}

// sqlQuery is a ClickHouse SQL target. The foundation SDK has no ClickHouse
// query builder, so the target is the plugin's JSON as an UnknownDataquery.
type sqlQuery struct {
	uid, refID, sql string
	table           bool
}

func (s sqlQuery) Build() (variants.Dataquery, error) {
	format := 0 // time series
	if s.table {
		format = 1
	}
	return variants.UnknownDataquery{
		"refId":      s.refID,
		"datasource": map[string]any{"type": ClickHouseType, "uid": s.uid},
		"editorType": "sql",
		"queryType":  "sql",
		"format":     format,
		"rawSql":     s.sql,
	}, nil
}

var _ cog.Builder[variants.Dataquery] = sqlQuery{}

// variables are $datasource, $job and $instance; matcher selects the series
// whose job and instance label values the variables offer.
func variables(matcher string) []cog.Builder[dashboard.VariableModel] {
	all := dashboard.VariableOption{Selected: ptr(true), Text: dashboard.StringOrArrayOfString{String: ptr("All")}, Value: dashboard.StringOrArrayOfString{String: ptr("$__all")}}
	return []cog.Builder[dashboard.VariableModel]{
		dashboard.NewDatasourceVariableBuilder("datasource").Label("Data source").Type(PrometheusType),
		dashboard.NewQueryVariableBuilder("job").Label("Job").Datasource(promDS).
			Query(dashboard.StringOrMap{String: ptr("label_values({" + matcher + "}, job)")}).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).Sort(dashboard.VariableSortAlphabeticalAsc).
			Multi(true).IncludeAll(true).AllValue(".+").Current(all),
		dashboard.NewQueryVariableBuilder("instance").Label("Instance").Datasource(promDS).
			Query(dashboard.StringOrMap{String: ptr(`label_values({` + matcher + `,job=~"$job"}, instance)`)}).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).Sort(dashboard.VariableSortAlphabeticalAsc).
			Multi(true).IncludeAll(true).AllValue(".+").Current(all),
	}
}

// newDashboard is a dashboard with Tidewatch's common settings.
func newDashboard(uid, title, matcher string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).Uid(uid).Tags([]string{"tidewatch"}).
		Time("now-1h", "now").Refresh("30s").Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).Editable().
		Variables(variables(matcher))
}
