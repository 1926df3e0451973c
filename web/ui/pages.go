package ui

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/scrape"

	"github.com/tidewatch/tidewatch/autoscaler"
	"github.com/tidewatch/tidewatch/collector/probe"
)

// targetRow is one scrape target.
type targetRow struct {
	URL        string
	Labels     string
	Health     string
	LastScrape time.Time
	Duration   time.Duration
	Error      string
}

type targetPool struct {
	Job     string
	Up, All int
	Targets []targetRow
}

func (u *UI) targets(c *gin.Context) {
	var pools []targetPool
	if u.o.Targets != nil {
		active := u.o.Targets.TargetsActive()
		lb := labels.NewBuilder(labels.EmptyLabels())
		for _, job := range slices.Sorted(maps.Keys(active)) {
			p := targetPool{Job: job}
			for _, t := range active[job] {
				r := targetRow{
					URL:        t.URL().String(),
					Labels:     t.Labels(lb).String(),
					Health:     string(t.Health()),
					LastScrape: t.LastScrape(),
					Duration:   t.LastScrapeDuration(),
				}
				if err := t.LastError(); err != nil {
					r.Error = err.Error()
				}
				if t.Health() == scrape.HealthGood {
					p.Up++
				}
				p.Targets = append(p.Targets, r)
			}
			p.All = len(p.Targets)
			slices.SortFunc(p.Targets, func(a, b targetRow) int { return cmp.Compare(a.URL, b.URL) })
			pools = append(pools, p)
		}
	}
	u.render(c, "targets", "Targets", pools)
}

func (u *UI) probes(c *gin.Context) {
	var active []probe.ActiveTarget
	if u.o.Probes != nil {
		active, _ = u.o.Probes.Targets()
	}
	u.render(c, "probes", "Probes", active)
}

// alertRow is one alerting rule with its active alerts.
type alertRow struct {
	Name   string
	State  string
	Expr   string
	For    time.Duration
	Labels string
	Alerts []activeAlert
}

type activeAlert struct {
	Labels   string
	State    string
	ActiveAt time.Time
	Value    float64
	Summary  string
}

type alertsPage struct {
	Firing, Pending, Inactive int
	Rules                     []alertRow
}

func (u *UI) alerts(c *gin.Context) {
	var p alertsPage
	if u.o.Rules != nil {
		for _, r := range u.o.Rules.AlertingRules() {
			row := alertRow{Name: r.Name(), State: r.State().String(), Expr: r.Query().String(), For: r.HoldDuration(), Labels: r.Labels().String()}
			for _, a := range r.ActiveAlerts() {
				row.Alerts = append(row.Alerts, activeAlert{
					Labels: a.Labels.String(), State: a.State.String(), ActiveAt: a.ActiveAt, Value: a.Value,
					Summary: a.Annotations.Get("summary"),
				})
			}
			switch r.State() {
			case rules.StateFiring:
				p.Firing++
			case rules.StatePending:
				p.Pending++
			default:
				p.Inactive++
			}
			p.Rules = append(p.Rules, row)
		}
		// Firing first, then pending, then by name.
		rank := map[string]int{"firing": 0, "pending": 1}
		slices.SortStableFunc(p.Rules, func(a, b alertRow) int {
			ra, ok := rank[a.State]
			if !ok {
				ra = 2
			}
			rb, ok := rank[b.State]
			if !ok {
				rb = 2
			}
			return cmp.Or(cmp.Compare(ra, rb), cmp.Compare(a.Name, b.Name))
		})
	}
	u.render(c, "alerts", "Alerts", p)
}

type ruleRow struct {
	Kind, Name, Expr, Health, Error string
	LastEval                        time.Time
	EvalTime                        time.Duration
}

type ruleGroup struct {
	Name, File string
	Interval   time.Duration
	Rules      []ruleRow
}

func (u *UI) rules(c *gin.Context) {
	var groups []ruleGroup
	if u.o.Rules != nil {
		for _, g := range u.o.Rules.RuleGroups() {
			rg := ruleGroup{Name: g.Name(), File: g.File(), Interval: g.Interval()}
			for _, r := range g.Rules() {
				row := ruleRow{Name: r.Name(), Expr: r.Query().String(), Health: string(r.Health()),
					LastEval: r.GetEvaluationTimestamp(), EvalTime: r.GetEvaluationDuration()}
				switch r.(type) {
				case *rules.AlertingRule:
					row.Kind = "alert"
				default:
					row.Kind = "record"
				}
				if err := r.LastError(); err != nil {
					row.Error = err.Error()
				}
				rg.Rules = append(rg.Rules, row)
			}
			groups = append(groups, rg)
		}
	}
	u.render(c, "rules", "Rules", groups)
}

// policyView is one scaling policy on the autoscaler page.
type policyView struct {
	autoscaler.PolicyStatus
	Current, Desired int
	Known            bool
	Decisions        []decisionView
	Chart            any
}

type decisionView struct {
	Time             time.Time
	Current, Desired int
	Action           string
	Reason           string
	Error            string
}

func (u *UI) autoscaler(c *gin.Context) {
	var views []policyView
	if u.o.Autoscaler != nil {
		now := u.o.Now()
		for _, p := range u.o.Autoscaler.Policies() {
			v := policyView{PolicyStatus: p}
			from := chartStart(now, u.o.Autoscaler.Decisions(p.Name, 100_000))
			if d := p.LastDecision; d != nil {
				v.Current, v.Desired, v.Known = d.Current, d.Desired, true
			}
			for _, d := range u.o.Autoscaler.Decisions(p.Name, 10) {
				v.Decisions = append(v.Decisions, decisionView{Time: d.Time, Current: d.Current, Desired: d.Desired,
					Action: d.Action, Reason: d.Reason(), Error: d.Error})
			}
			sel := fmt.Sprintf(`{policy=%q}`, p.Name)
			var lines []line
			for _, q := range []struct {
				name, expr string
				right      bool
			}{
				{"load (metric 0)", `tidewatch_autoscaler_metric_value` + strings.TrimSuffix(sel, "}") + `,metric="0"}`, false},
				{"forecast (metric 0)", `tidewatch_autoscaler_forecast` + strings.TrimSuffix(sel, "}") + `,metric="0"}`, false},
				{"current replicas", `tidewatch_autoscaler_current_replicas` + sel, true},
				{"desired replicas", `tidewatch_autoscaler_desired_replicas` + sel, true},
			} {
				step := max(now.Sub(from)/200, 2*time.Second)
				ls, err := u.rangeLines(c.Request.Context(), q.expr, from, now, step)
				if err != nil {
					u.logger.Warn("autoscaler chart query", "policy", p.Name, "query", q.expr, "err", err)
					continue
				}
				for _, l := range ls {
					l.Name, l.Right = q.name, q.right
					lines = append(lines, l)
				}
			}
			v.Chart = svgChart("load against replicas for "+p.Name, from, now, lines)
			views = append(views, v)
		}
	}
	u.render(c, "autoscaler", "Autoscaler", views)
}

// chartStart is where a policy's chart begins: an hour ago, or shortly
// before its oldest decision when that is later, so that a young policy's
// history fills the chart. The chart spans at least five minutes.
func chartStart(now time.Time, newestFirst []autoscaler.Decision) time.Time {
	from := now.Add(-time.Hour)
	if n := len(newestFirst); n > 0 {
		if oldest := newestFirst[n-1].Time.Add(-30 * time.Second); oldest.After(from) {
			from = oldest
		}
	}
	if earliest := now.Add(-5 * time.Minute); from.After(earliest) {
		from = earliest
	}
	return from
}

// rangeLines runs a range query and returns one line per series.
func (u *UI) rangeLines(ctx context.Context, expr string, from, to time.Time, step time.Duration) ([]line, error) {
	q, err := u.o.Engine.NewRangeQuery(ctx, u.o.Queryable, nil, expr, from, to, step)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		return nil, res.Err
	}
	m, err := res.Matrix()
	if err != nil {
		return nil, err
	}
	var out []line
	for _, s := range m {
		l := line{Name: s.Metric.String()}
		for _, p := range s.Floats {
			l.Points = append(l.Points, point{T: time.UnixMilli(p.T), V: p.F})
		}
		out = append(out, l)
	}
	return out, nil
}

// graphPage is the query page: an instant table and a range chart.
type graphPage struct {
	Expr    string
	Range   string
	Ranges  []string
	Error   string
	Rows    []graphRow
	Chart   any
	Scalar  string
	Elapsed time.Duration
}

type graphRow struct {
	Metric string
	Value  string
}

var graphRanges = []string{"5m", "15m", "1h", "3h", "12h", "1d"}

const maxGraphLines = 20

func (u *UI) graph(c *gin.Context) {
	p := graphPage{Expr: c.Query("expr"), Range: c.DefaultQuery("range", "1h"), Ranges: graphRanges}
	rng, err := time.ParseDuration(strings.Replace(p.Range, "1d", "24h", 1))
	if err != nil || rng <= 0 || !slices.Contains(graphRanges, p.Range) {
		p.Range, rng = "1h", time.Hour
	}
	if p.Expr != "" {
		start := time.Now()
		u.runGraph(c.Request.Context(), &p, rng)
		p.Elapsed = time.Since(start)
	}
	u.render(c, "graph", "Graph", p)
}

func (u *UI) runGraph(ctx context.Context, p *graphPage, rng time.Duration) {
	now := u.o.Now()
	q, err := u.o.Engine.NewInstantQuery(ctx, u.o.Queryable, nil, p.Expr, now)
	if err != nil {
		p.Error = err.Error()
		return
	}
	res := q.Exec(ctx)
	defer q.Close()
	if res.Err != nil {
		p.Error = res.Err.Error()
		return
	}
	switch v := res.Value.(type) {
	case promql.Vector:
		for _, s := range v {
			val := fmtNum(s.F)
			if s.H != nil {
				val = s.H.String()
			}
			p.Rows = append(p.Rows, graphRow{Metric: s.Metric.String(), Value: val})
		}
	case promql.Scalar:
		p.Scalar = fmtNum(v.V)
	case promql.String:
		p.Scalar = v.V
	case promql.Matrix:
		for _, s := range v {
			p.Rows = append(p.Rows, graphRow{Metric: s.Metric.String(), Value: fmt.Sprintf("%d samples", len(s.Floats)+len(s.Histograms))})
		}
		// A range selector cannot be charted as a range query.
		return
	}
	slices.SortFunc(p.Rows, func(a, b graphRow) int { return cmp.Compare(a.Metric, b.Metric) })
	from := now.Add(-rng)
	step := max(rng/240, time.Second)
	lines, err := u.rangeLines(ctx, p.Expr, from, now, step)
	if err != nil {
		p.Error = err.Error()
		return
	}
	if len(lines) > maxGraphLines {
		lines = lines[:maxGraphLines]
	}
	p.Chart = svgChart(p.Expr, from, now, lines)
}
