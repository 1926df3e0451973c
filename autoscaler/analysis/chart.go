package analysis

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"
)

// Charts are inline SVG, so the HTML report is one self-contained file.

const (
	chartW, chartH         = 720, 240
	padL, padR, padT, padB = 56, 12, 12, 28
)

// chartSeries is one line (or, with dots, a scatter) of a chart.
type chartSeries struct {
	name  string
	color string
	xs    []float64
	ys    []float64
	dots  bool
}

type bounds struct{ x0, x1, y0, y1 float64 }

func (b *bounds) fit(ss []chartSeries) {
	*b = bounds{math.Inf(1), math.Inf(-1), 0, math.Inf(-1)}
	for _, s := range ss {
		for i := range s.xs {
			if math.IsNaN(s.ys[i]) || math.IsInf(s.ys[i], 0) {
				continue
			}
			b.x0, b.x1 = math.Min(b.x0, s.xs[i]), math.Max(b.x1, s.xs[i])
			b.y1 = math.Max(b.y1, s.ys[i])
		}
	}
	if math.IsInf(b.x0, 1) {
		*b = bounds{0, 1, 0, 1}
	}
	if b.x1 == b.x0 {
		b.x1 = b.x0 + 1
	}
	if b.y1 <= b.y0 {
		b.y1 = b.y0 + 1
	}
	b.y1 *= 1.05
}

func (b bounds) px(x float64) float64 {
	return padL + (x-b.x0)/(b.x1-b.x0)*(chartW-padL-padR)
}

func (b bounds) py(y float64) float64 {
	return chartH - padB - (y-b.y0)/(b.y1-b.y0)*(chartH-padT-padB)
}

// svgChart draws ss; xLabel formats the x axis ticks, marks are vertical
// lines (x, label).
func svgChart(title string, ss []chartSeries, xLabel func(float64) string, yUnit string, yMax float64, marks map[string]float64) template.HTML {
	var b bounds
	b.fit(ss)
	if yMax > 0 {
		b.y1 = yMax
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<figure class="chart"><figcaption>%s</figcaption><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		template.HTMLEscapeString(title), chartW, chartH, chartW, chartH, template.HTMLEscapeString(title))
	fmt.Fprintf(&sb, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#ccc"/>`, padL, padT, chartW-padL-padR, chartH-padT-padB)
	for i := 0; i <= 4; i++ {
		y := b.y0 + (b.y1-b.y0)*float64(i)/4
		fmt.Fprintf(&sb, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" font-size="10" text-anchor="end">%s%s</text>`,
			padL, chartW-padR, b.py(y), b.py(y), padL-4, b.py(y)+3, fmtNum(y), yUnit)
		x := b.x0 + (b.x1-b.x0)*float64(i)/4
		fmt.Fprintf(&sb, `<text x="%.1f" y="%d" font-size="10" text-anchor="middle">%s</text>`, b.px(x), chartH-padB+14, template.HTMLEscapeString(xLabel(x)))
	}
	for name, x := range marks {
		if x < b.x0 || x > b.x1 {
			continue
		}
		fmt.Fprintf(&sb, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#888" stroke-dasharray="4 3"/><text x="%.1f" y="%d" font-size="10">%s</text>`,
			b.px(x), b.px(x), padT, chartH-padB, b.px(x)+3, padT+10, template.HTMLEscapeString(name))
	}
	for k, s := range ss {
		if s.dots {
			fmt.Fprintf(&sb, `<g fill="%s" fill-opacity="0.5">`, s.color)
			for i := range s.xs {
				if y := s.ys[i]; y >= b.y0 && y <= b.y1 {
					fmt.Fprintf(&sb, `<circle cx="%.1f" cy="%.1f" r="2"/>`, b.px(s.xs[i]), b.py(y))
				}
			}
			sb.WriteString(`</g>`)
		} else {
			sb.WriteString(`<polyline fill="none" stroke-width="1.5" stroke="` + s.color + `" points="`)
			for i := range s.xs {
				y := math.Min(s.ys[i], b.y1)
				if math.IsNaN(y) {
					continue
				}
				fmt.Fprintf(&sb, "%.1f,%.1f ", b.px(s.xs[i]), b.py(y))
			}
			sb.WriteString(`"/>`)
		}
		fmt.Fprintf(&sb, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d" font-size="11">%s</text>`,
			padL+8+k*170, chartH-10, s.color, padL+22+k*170, chartH-1, template.HTMLEscapeString(s.name))
	}
	sb.WriteString(`</svg></figure>`)
	return template.HTML(sb.String())
}

func fmtNum(f float64) string {
	switch a := math.Abs(f); {
	case a == 0:
		return "0"
	case a >= 1e6 || a < 1e-3:
		return fmt.Sprintf("%.2g", f)
	case a >= 100:
		return fmt.Sprintf("%.0f", f)
	default:
		return fmt.Sprintf("%.3g", f)
	}
}

func timeLabel(x float64) string { return time.Unix(int64(x), 0).UTC().Format("01-02 15:04") }

// charts are one job's charts: load against the capacity provisioned,
// replicas, and the latency-against-load fit.
func (j Job) charts() []template.HTML {
	var out []template.HTML
	s := j.Series
	if len(s.Time) > 0 {
		xs := make([]float64, len(s.Time))
		for i, t := range s.Time {
			xs[i] = float64(t)
		}
		load := []chartSeries{{name: "load (req/s)", color: "#1f77b4", xs: xs, ys: s.Load}}
		if j.Capacity != nil && j.Capacity.PerInstance > 0 {
			c := make([]float64, len(s.Instances))
			for i, n := range s.Instances {
				c[i] = n * j.Capacity.PerInstance
			}
			load = append(load, chartSeries{name: "capacity of the instances up", color: "#d62728", xs: xs, ys: c})
		}
		out = append(out, svgChart("Load and capacity: "+j.Job, load, timeLabel, "", 0, nil))
		reps := []chartSeries{{name: "instances up (measured)", color: "#2ca02c", xs: xs, ys: s.Instances}}
		if len(s.Recommended) == len(xs) {
			reps = append(reps, chartSeries{name: "recommended (replayed)", color: "#ff7f0e", xs: xs, ys: s.Recommended})
		}
		out = append(out, svgChart("Replicas: "+j.Job, reps, timeLabel, "", 0, nil))
	}
	if len(j.FitSamples) > 0 {
		var fit, obj chartSeries
		fit = chartSeries{name: "mean latency (fit)", color: "#1f77b4", dots: true}
		for _, p := range j.FitSamples {
			fit.xs, fit.ys = append(fit.xs, p.Load), append(fit.ys, p.Latency)
		}
		ss := []chartSeries{fit}
		if j.Queries.Latency != j.Queries.Fit {
			obj = chartSeries{name: "objective latency", color: "#9467bd", dots: true}
			for _, p := range j.ObjectiveSamples {
				obj.xs, obj.ys = append(obj.xs, p.Load), append(obj.ys, p.Latency)
			}
			ss = append(ss, obj)
		}
		marks := map[string]float64{}
		yMax := 0.0
		if c := j.Capacity; c != nil {
			var cx, cy, ox, oy []float64
			top := c.Saturation * 0.98
			for i := 0; i <= 60; i++ {
				x := top * float64(i) / 60
				cx, cy = append(cx, x), append(cy, c.Base/(1-x/c.Saturation))
				ox, oy = append(ox, x), append(oy, c.ObjectiveBase/(1-x/c.Saturation))
			}
			ss = append(ss, chartSeries{name: "fitted curve", color: "#d62728", xs: cx, ys: cy},
				chartSeries{name: "objective curve", color: "#8c564b", xs: ox, ys: oy},
				chartSeries{name: "threshold", color: "#7f7f7f", xs: []float64{0, c.Saturation}, ys: []float64{c.Threshold, c.Threshold}})
			marks["saturation"] = c.Saturation
			marks["objective breaks"] = c.Breaking
			yMax = 2.5 * c.Threshold
		}
		out = append(out, svgChart("Latency against per-instance load: "+j.Job, ss, func(x float64) string { return fmtNum(x) + " rps" }, "s", yMax, marks))
	}
	return out
}
