package dashboards

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// PanelQuery is one query of a generated dashboard, as Grafana would send it.
type PanelQuery struct {
	Dashboard string
	Panel     string
	RefID     string
	// Datasource is the target's data source type (prometheus or
	// grafana-clickhouse-datasource); Annotation marks an annotation query.
	Datasource string
	Annotation bool
	// Expr is the PromQL expression; SQL the ClickHouse query.
	Expr, SQL string
	Instant   bool
}

// Name is "dashboard / panel / refId" for messages.
func (q PanelQuery) Name() string {
	return q.Dashboard + " / " + q.Panel + " / " + q.RefID
}

// Queries lists every panel target and annotation query of d, in order,
// read from its JSON as Grafana reads it.
func Queries(d Dashboard) ([]PanelQuery, error) {
	type target struct {
		RefID      string `json:"refId"`
		Expr       string `json:"expr"`
		RawSQL     string `json:"rawSql"`
		Instant    bool   `json:"instant"`
		Datasource struct {
			Type string `json:"type"`
		} `json:"datasource"`
	}
	type panel struct {
		Title   string   `json:"title"`
		Targets []target `json:"targets"`
		Panels  []panel  `json:"panels"`
	}
	var model struct {
		Title       string  `json:"title"`
		Panels      []panel `json:"panels"`
		Annotations struct {
			List []struct {
				Name       string `json:"name"`
				Expr       string `json:"expr"`
				Datasource struct {
					Type string `json:"type"`
				} `json:"datasource"`
			} `json:"list"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(d.JSON, &model); err != nil {
		return nil, fmt.Errorf("decode dashboard %s: %w", d.UID, err)
	}
	var out []PanelQuery
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				out = append(out, PanelQuery{Dashboard: model.Title, Panel: p.Title, RefID: t.RefID,
					Datasource: t.Datasource.Type, Expr: t.Expr, SQL: t.RawSQL, Instant: t.Instant})
			}
			walk(p.Panels)
		}
	}
	walk(model.Panels)
	for _, a := range model.Annotations.List {
		out = append(out, PanelQuery{Dashboard: model.Title, Panel: "annotation " + a.Name,
			Datasource: a.Datasource.Type, Annotation: true, Expr: a.Expr})
	}
	return out, nil
}

// Substitute replaces Grafana template variables in expr, both as $name and
// ${name}; vars maps names without the $ (job, __rate_interval…). Longer
// names are replaced first so that $__rate_interval is not read as
// $__rate followed by text.
func Substitute(expr string, vars map[string]string) string {
	names := make([]string, 0, len(vars))
	for n := range vars {
		names = append(names, n)
	}
	// Longest first, then by name for a stable order.
	slices.SortFunc(names, func(a, b string) int {
		if c := cmp.Compare(len(b), len(a)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	for _, n := range names {
		expr = strings.ReplaceAll(expr, "${"+n+"}", vars[n])
		expr = strings.ReplaceAll(expr, "$"+n, vars[n])
	}
	return expr
}
