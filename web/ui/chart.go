package ui

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// point is one sample of a chart line.
type point struct {
	T time.Time
	V float64
}

// line is one series of a chart. Right lines use the right-hand axis.
type line struct {
	Name   string
	Points []point
	Right  bool
}

// palette holds the line colours, in order.
var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

const (
	chartW   = 860
	chartH   = 240
	padLeft  = 56
	padRight = 56
	padTop   = 12
	padBot   = 28
)

type axis struct{ lo, hi float64 }

func (a *axis) add(v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	a.lo, a.hi = math.Min(a.lo, v), math.Max(a.hi, v)
}

// settle makes the range non-empty and starts it at zero for non-negative
// data, which is what replica counts and rates want.
func (a *axis) settle() {
	if a.lo > a.hi { // no data
		a.lo, a.hi = 0, 1
	}
	if a.lo > 0 {
		a.lo = 0
	}
	if a.hi == a.lo {
		a.hi = a.lo + 1
	}
	a.hi += (a.hi - a.lo) * 0.05
}

// svgChart draws lines between from and to as an inline SVG with a legend.
// Labels are escaped; the output is safe to embed.
func svgChart(label string, from, to time.Time, lines []line) template.HTML {
	left, right := axis{math.Inf(1), math.Inf(-1)}, axis{math.Inf(1), math.Inf(-1)}
	hasRight := false
	for _, l := range lines {
		for _, p := range l.Points {
			if l.Right {
				right.add(p.V)
				hasRight = true
			} else {
				left.add(p.V)
			}
		}
	}
	left.settle()
	right.settle()
	if !to.After(from) {
		to = from.Add(time.Minute)
	}
	plotW, plotH := float64(chartW-padLeft-padRight), float64(chartH-padTop-padBot)
	x := func(t time.Time) float64 {
		return padLeft + plotW*float64(t.Sub(from))/float64(to.Sub(from))
	}
	y := func(a axis, v float64) float64 { return padTop + plotH*(1-(v-a.lo)/(a.hi-a.lo)) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" role="img" aria-label="%s" viewBox="0 0 %d %d" xmlns="http://www.w3.org/2000/svg">`,
		template.HTMLEscapeString(label), chartW, chartH)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%g" height="%g" class="plot"/>`, padLeft, padTop, plotW, plotH)
	for i := 0; i <= 4; i++ {
		f := float64(i) / 4
		yy := padTop + plotH*(1-f)
		fmt.Fprintf(&b, `<line x1="%d" x2="%g" y1="%.1f" y2="%.1f" class="grid"/>`, padLeft, padLeft+plotW, yy, yy)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" class="tick" text-anchor="end">%s</text>`, padLeft-4, yy+4, fmtNum(left.lo+f*(left.hi-left.lo)))
		if hasRight {
			fmt.Fprintf(&b, `<text x="%g" y="%.1f" class="tick">%s</text>`, padLeft+plotW+4, yy+4, fmtNum(right.lo+f*(right.hi-right.lo)))
		}
	}
	for i := 0; i <= 4; i++ {
		t := from.Add(time.Duration(float64(to.Sub(from)) * float64(i) / 4))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="tick" text-anchor="middle">%s</text>`, x(t), chartH-8, t.UTC().Format("15:04:05"))
	}
	for i, l := range lines {
		a := left
		if l.Right {
			a = right
		}
		color := palette[i%len(palette)]
		var pts strings.Builder
		flush := func() {
			if pts.Len() > 0 {
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.8" points="%s"/>`, color, pts.String())
				pts.Reset()
			}
		}
		var prev time.Time
		for _, p := range l.Points {
			if math.IsNaN(p.V) || math.IsInf(p.V, 0) {
				flush()
				continue
			}
			// A gap of more than a tenth of the range breaks the line.
			if !prev.IsZero() && p.T.Sub(prev) > to.Sub(from)/10 {
				flush()
			}
			prev = p.T
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(p.T), y(a, p.V))
		}
		flush()
	}
	b.WriteString(`</svg>`)
	if len(lines) > 0 {
		b.WriteString(`<ul class="legend">`)
		for i, l := range lines {
			side := ""
			if l.Right && hasRight {
				side = " (right axis)"
			}
			fmt.Fprintf(&b, `<li><svg class="swatch" viewBox="0 0 10 10"><rect width="10" height="10" fill="%s"/></svg>%s%s</li>`,
				palette[i%len(palette)], template.HTMLEscapeString(l.Name), side)
		}
		b.WriteString(`</ul>`)
	}
	return template.HTML(b.String())
}

func fmtNum(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case f == 0:
		return "0"
	case math.Abs(f) >= 1e6 || math.Abs(f) < 1e-3:
		return strconv.FormatFloat(f, 'g', 4, 64)
	default:
		return strconv.FormatFloat(f, 'g', 6, 64)
	}
}
