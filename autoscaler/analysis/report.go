package analysis

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteJSON writes the report indented: the JSON of --output json and of
// GET /api/v1/autoscaler/analysis's data.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func ivText(iv Interval) string {
	if iv.High == nil {
		return fmt.Sprintf("%s–unbounded", fmtNum(iv.Low))
	}
	return fmt.Sprintf("%s–%s", fmtNum(iv.Low), fmtNum(*iv.High))
}

// WriteTable writes the report for a terminal.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "capacity analysis %s to %s (step %s)\n", r.From.UTC().Format(time.RFC3339), r.To.UTC().Format(time.RFC3339), time.Duration(r.StepSeconds*float64(time.Second)))
	for _, j := range r.Jobs {
		fmt.Fprintf(&b, "\njob %s", j.Job)
		if j.Policy != "" {
			fmt.Fprintf(&b, " (policy %s)", j.Policy)
		} else {
			b.WriteString(" (not autoscaled)")
		}
		b.WriteString("\n")
		if c := j.Capacity; c != nil {
			fmt.Fprintf(&b, "  saturation point        %s req/s per instance (90 %% interval %s; R² %.3f; %d samples, load %s–%s)\n",
				fmtNum(c.Saturation), ivText(c.SaturationInterval), c.R2, c.Samples, fmtNum(c.Min), fmtNum(c.Max))
			fmt.Fprintf(&b, "  latency objective       %ss is broken at %s req/s per instance (interval %s; confidence %s)\n",
				fmtNum(c.Threshold), fmtNum(c.Breaking), ivText(c.BreakingInterval), c.Confidence)
			if c.ErrorRatioThreshold > 0 {
				if c.ErrorBreaking != nil {
					fmt.Fprintf(&b, "  error-ratio objective   %s is broken at %s req/s per instance\n", fmtNum(c.ErrorRatioThreshold), fmtNum(*c.ErrorBreaking))
				} else {
					fmt.Fprintf(&b, "  error-ratio objective   %s is not broken up to %s req/s per instance\n", fmtNum(c.ErrorRatioThreshold), fmtNum(c.Max))
				}
			}
			fmt.Fprintf(&b, "  capacity per instance   %s req/s (limited by %s)\n", fmtNum(c.PerInstance), c.LimitedBy)
		}
		if j.Error != "" {
			fmt.Fprintf(&b, "  not analysed: %s\n", j.Error)
			continue
		}
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  settings\tper_instance\tcapacity_per_instance\tmin\tmax\tschedule floors")
		row := func(name string, s *Settings) {
			if s == nil {
				return
			}
			var sch []string
			for _, e := range s.Schedule {
				sch = append(sch, fmt.Sprintf("%s for %s: %d", e.Cron, e.Duration, e.Min))
			}
			if len(sch) == 0 {
				sch = []string{"none"}
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%d\t%s\n", name, fmtNum(s.PerInstance), fmtNum(s.CapacityPerInstance), s.Min, s.Max, strings.Join(sch, "; "))
		}
		row("current", j.Current)
		row("recommended", j.Recommended)
		tw.Flush()
		if j.Recommended != nil {
			for _, n := range j.Recommended.Notes {
				fmt.Fprintf(&b, "  (%s)\n", n)
			}
		}
		if c := j.Cost; c != nil {
			tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "  cost\treplica-hours\tcost\toverloaded min\tscale events\treplicas")
			for _, run := range []*Run{&c.Measured, c.Current, &c.Recommended, &c.Static} {
				if run == nil {
					continue
				}
				over := fmtNum(run.OverloadedMinutes)
				if run.Name == "measured" {
					over = "—"
				}
				fmt.Fprintf(tw, "  %s\t%.2f\t%.2f\t%s\t%d\t%d–%d\n", run.Name, run.ReplicaHours, run.Cost, over, run.ScaleEvents, run.MinReplicas, run.MaxReplicas)
			}
			tw.Flush()
			fmt.Fprintf(&b, "  the recommended settings save %.2f replica-hours (%.1f %%, %.2f in cost) against %s\n",
				c.SavingsReplicaHours, 100*c.SavingsRatio, c.SavingsCost, c.SavingsAgainst)
		}
		if j.Recommended != nil && j.Recommended.YAML != "" {
			b.WriteString("  recommended policy keys:\n")
			for _, l := range strings.Split(strings.TrimRight(j.Recommended.YAML, "\n"), "\n") {
				b.WriteString("    " + l + "\n")
			}
		}
	}
	for _, u := range r.Unanalyzed {
		name := "job " + u.Job
		if u.Policy != "" {
			name = "policy " + u.Policy
		}
		fmt.Fprintf(&b, "\n%s: %s\n", name, u.Reason)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"num": fmtNum, "iv": ivText,
	"ts":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"pct": func(f float64) string { return fmt.Sprintf("%.1f %%", 100*f) },
	"f2":  func(f float64) string { return fmt.Sprintf("%.2f", f) },
	"deref": func(p *float64) float64 {
		if p == nil {
			return 0
		}
		return *p
	},
	"charts": func(j Job) []template.HTML { return j.charts() },
}).Parse(`<section class="analysis">
<p>From {{ts .From}} to {{ts .To}}, step {{.StepSeconds}} s{{if .CostPerReplicaHour}}, {{.CostPerReplicaHour}} per replica-hour{{end}}.</p>
{{range .Jobs}}<article class="analysis-job" id="job-{{.Job}}">
<h2>Job {{.Job}}{{if .Policy}} (policy {{.Policy}}){{else}} (not autoscaled){{end}}</h2>
{{with .Capacity}}<table class="capacity">
<tr><th>saturation point</th><td>{{num .Saturation}} req/s per instance</td><td>90 % interval {{iv .SaturationInterval}}, R² {{printf "%.3f" .R2}}, {{.Samples}} samples over {{num .Min}}–{{num .Max}} req/s</td></tr>
<tr><th>latency objective {{num .Threshold}} s</th><td>broken at {{num .Breaking}} req/s per instance</td><td>interval {{iv .BreakingInterval}}, confidence {{.Confidence}}</td></tr>
{{if .ErrorRatioThreshold}}<tr><th>error-ratio objective {{num .ErrorRatioThreshold}}</th><td>{{if .ErrorBreaking}}broken at {{num (deref .ErrorBreaking)}} req/s per instance{{else}}not broken within the load observed{{end}}</td><td></td></tr>{{end}}
<tr><th>capacity per instance</th><td class="capacity-per-instance">{{num .PerInstance}} req/s</td><td>limited by {{.LimitedBy}}</td></tr>
</table>{{end}}
{{if .Error}}<p class="error">Not analysed: {{.Error}}</p>{{end}}
{{if .Recommended}}<h3>Settings</h3><table class="settings"><tr><th></th><th>per_instance</th><th>capacity_per_instance</th><th>min</th><th>max</th><th>schedule floors</th></tr>
{{with .Current}}<tr><th>current</th><td>{{num .PerInstance}}</td><td>{{num .CapacityPerInstance}}</td><td>{{.Min}}</td><td>{{.Max}}</td><td>{{range .Schedule}}{{.Cron}} for {{.Duration}}: {{.Min}}<br>{{else}}none{{end}}</td></tr>{{end}}
{{with .Recommended}}<tr><th>recommended</th><td>{{num .PerInstance}}</td><td>{{num .CapacityPerInstance}}</td><td>{{.Min}}</td><td>{{.Max}}</td><td>{{range .Schedule}}{{.Cron}} for {{.Duration}}: {{.Min}}<br>{{else}}none{{end}}</td></tr>{{end}}
</table>{{range .Recommended.Notes}}<p class="note">{{.}}</p>{{end}}
<pre class="yaml">{{.Recommended.YAML}}</pre>{{end}}
{{with .Cost}}<h3>Cost</h3><table class="cost"><tr><th></th><th>replica-hours</th><th>cost</th><th>overloaded minutes</th><th>scale events</th><th>replicas</th></tr>
{{with .Measured}}<tr><th>measured (up)</th><td>{{f2 .ReplicaHours}}</td><td>{{f2 .Cost}}</td><td>—</td><td>{{.ScaleEvents}}</td><td>{{.MinReplicas}}–{{.MaxReplicas}}</td></tr>{{end}}
{{with .Current}}<tr><th>current policy (replayed)</th><td>{{f2 .ReplicaHours}}</td><td>{{f2 .Cost}}</td><td>{{num .OverloadedMinutes}}</td><td>{{.ScaleEvents}}</td><td>{{.MinReplicas}}–{{.MaxReplicas}}</td></tr>{{end}}
{{with .Recommended}}<tr><th>recommended (replayed)</th><td>{{f2 .ReplicaHours}}</td><td>{{f2 .Cost}}</td><td>{{num .OverloadedMinutes}}</td><td>{{.ScaleEvents}}</td><td>{{.MinReplicas}}–{{.MaxReplicas}}</td></tr>{{end}}
{{with .Static}}<tr><th>static peak</th><td>{{f2 .ReplicaHours}}</td><td>{{f2 .Cost}}</td><td>{{num .OverloadedMinutes}}</td><td>{{.ScaleEvents}}</td><td>{{.MinReplicas}}–{{.MaxReplicas}}</td></tr>{{end}}
</table><p class="savings">The recommended settings save {{f2 .SavingsReplicaHours}} replica-hours ({{pct .SavingsRatio}}, {{f2 .SavingsCost}} in cost) against {{.SavingsAgainst}}. Replays run the reference model: capacity {{num .CapacityPerInstance}} req/s per instance, readiness {{.StartupSeconds}} s.</p>{{end}}
{{range charts .}}{{.}}{{end}}
</article>{{else}}<p>No objectives: add them under <code>analysis.objectives</code>.</p>{{end}}
{{if .Unanalyzed}}<h2>Not analysed</h2><ul>{{range .Unanalyzed}}<li>{{if .Policy}}policy {{.Policy}}{{else}}job {{.Job}}{{end}}: {{.Reason}}</li>{{end}}</ul>{{end}}
</section>`))

// Fragment is the report as an HTML section (the status UI's Analysis
// page embeds it; WriteHTML wraps it in a page).
func (r *Report) Fragment() (template.HTML, error) {
	var buf bytes.Buffer
	if err := reportTemplate.Execute(&buf, r); err != nil {
		return "", fmt.Errorf("render the analysis: %w", err)
	}
	return template.HTML(buf.String()), nil
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Tidewatch capacity analysis</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left}
.error{color:#a00}.note{color:#555;font-size:.9em}pre.yaml{background:#f6f6f6;padding:.6em}
figure.chart{margin:1em 0}figcaption{font-weight:600}
</style></head><body><h1>Tidewatch capacity analysis</h1>
{{.}}
</body></html>
`))

// WriteHTML writes the report as one self-contained HTML page (inline
// styles and SVG charts, no scripts or external resources).
func (r *Report) WriteHTML(w io.Writer) error {
	f, err := r.Fragment()
	if err != nil {
		return err
	}
	return pageTemplate.Execute(w, f)
}
