package autoscaler

import (
	"errors"
	"math"
	"time"
)

// Point is one sample of a metric's history.
type Point struct {
	T time.Time
	V float64
}

// errTooFewPoints is returned when a forecast has fewer than two usable points.
var errTooFewPoints = errors.New("forecast: fewer than two points in the window")

// Forecast predicts the metric's value horizon after the last point of
// points (oldest first) with method: holt_winters (Holt's double
// exponential smoothing with smoothing α and trend β, as PromQL's
// double_exponential_smoothing, extrapolated by the trend) or linear (least
// squares over the window). NaN and infinite points are skipped.
func Forecast(c ForecastConfig, points []Point) (float64, error) {
	pts := make([]Point, 0, len(points))
	for _, p := range points {
		if !math.IsNaN(p.V) && !math.IsInf(p.V, 0) {
			pts = append(pts, p)
		}
	}
	if len(pts) < 2 {
		return 0, errTooFewPoints
	}
	horizon := time.Duration(c.Horizon)
	if c.Method == ForecastLinear {
		return linear(pts, pts[len(pts)-1].T.Add(horizon)), nil
	}
	return holt(pts, c.Smoothing, c.Trend, horizon), nil
}

// holt runs Holt's linear trend method. The trend is per step; steps are the
// median spacing of the points, so the horizon is horizon/step steps.
func holt(pts []Point, alpha, beta float64, horizon time.Duration) float64 {
	level := pts[0].V
	trend := pts[1].V - pts[0].V
	for _, p := range pts[1:] {
		prev := level
		level = alpha*p.V + (1-alpha)*(level+trend)
		trend = beta*(level-prev) + (1-beta)*trend
	}
	step := pts[len(pts)-1].T.Sub(pts[0].T) / time.Duration(len(pts)-1)
	if step <= 0 {
		return level
	}
	return level + trend*float64(horizon)/float64(step)
}

// linear fits v = a + b·t by least squares and evaluates it at at.
func linear(pts []Point, at time.Time) float64 {
	t0 := pts[0].T
	var sx, sy, sxx, sxy float64
	n := float64(len(pts))
	for _, p := range pts {
		x := p.T.Sub(t0).Seconds()
		sx += x
		sy += p.V
		sxx += x * x
		sxy += x * p.V
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return sy / n
	}
	b := (n*sxy - sx*sy) / den
	a := (sy - b*sx) / n
	return a + b*at.Sub(t0).Seconds()
}
