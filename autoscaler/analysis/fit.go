package analysis

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// The capacity model is a queue's: an instance under load x answers in
//
//	latency(x) = base / (1 − x/saturation)
//
// so 1/latency falls linearly with the load and reaches zero at the
// saturation point. A weighted least-squares line through (x, 1/latency),
// weighted by latency² so that every sample counts by its relative error,
// gives both: saturation = −intercept/slope, base = 1/intercept. Any
// latency that is proportional to the mean (a quantile of an M/M/1
// queue, a jittered service) has the same saturation point and its own
// base, found with the saturation held fixed (ScaleFit); that latency
// crosses a threshold at saturation × (1 − base/threshold).

// ErrTooLittleData is returned (wrapped, with the reason) when the samples
// cannot support a fit: too few of them, or too narrow a range of load.
var ErrTooLittleData = errors.New("too little data")

// Sample is one instance's load (requests per second) and latency
// (seconds) at one time.
type Sample struct {
	Load    float64 `json:"load"`
	Latency float64 `json:"latency"`
}

// Fit limits.
const (
	// MinSamples is the fewest samples a fit is made from.
	MinSamples = 12
	// MinReach is how far towards the estimated saturation the observed
	// load must reach, and MinSpan how wide a range of load it must cover,
	// both as fractions of the saturation point: a fit over a flat stretch
	// of the curve extrapolates noise.
	MinReach = 0.4
	MinSpan  = 0.2
	// bootstrapRounds resamplings give the interval.
	bootstrapRounds = 200
)

// Line is a fitted queueing curve.
type Line struct {
	// Base is the latency at no load, in seconds.
	Base float64 `json:"base_latency_seconds"`
	// Saturation is the load at which latency grows without bound.
	Saturation float64 `json:"saturation_per_instance"`
	// R2 is the coefficient of determination of 1/latency against load
	// (weighted as the fit is).
	R2 float64 `json:"r2"`
}

// line fits 1/latency = a + b·load; ok is false when there is no line
// (fewer than two distinct loads) or latency does not rise with load.
func line(s []Sample) (Line, bool) {
	var sw, sx, sy, sxx, sxy float64
	for _, p := range s {
		w := p.Latency * p.Latency
		y := 1 / p.Latency
		sw += w
		sx += w * p.Load
		sy += w * y
		sxx += w * p.Load * p.Load
		sxy += w * p.Load * y
	}
	den := sw*sxx - sx*sx
	if sw == 0 || den <= 0 {
		return Line{}, false
	}
	b := (sw*sxy - sx*sy) / den
	a := (sy - b*sx) / sw
	if b >= 0 || a <= 0 {
		return Line{}, false
	}
	mean := sy / sw
	var ssr, sst float64
	for _, p := range s {
		w := p.Latency * p.Latency
		y := 1 / p.Latency
		ssr += w * (y - a - b*p.Load) * (y - a - b*p.Load)
		sst += w * (y - mean) * (y - mean)
	}
	r2 := 0.0
	if sst > 0 {
		r2 = 1 - ssr/sst
	}
	return Line{Base: 1 / a, Saturation: -a / b, R2: r2}, true
}

// usable keeps the samples with a finite, positive latency and a finite,
// non-negative load.
func usable(s []Sample) []Sample {
	out := make([]Sample, 0, len(s))
	for _, p := range s {
		if p.Latency > 0 && !math.IsInf(p.Latency, 0) && !math.IsNaN(p.Latency) &&
			p.Load >= 0 && !math.IsInf(p.Load, 0) && !math.IsNaN(p.Load) {
			out = append(out, p)
		}
	}
	return out
}

// Range is the load the samples cover.
type Range struct {
	Min float64 `json:"load_min"`
	Max float64 `json:"load_max"`
}

func loadRange(s []Sample) Range {
	r := Range{Min: math.Inf(1), Max: math.Inf(-1)}
	for _, p := range s {
		r.Min = math.Min(r.Min, p.Load)
		r.Max = math.Max(r.Max, p.Load)
	}
	return r
}

// FitLine fits the queueing curve to s, or says why the data cannot
// support one (an error wrapping ErrTooLittleData).
func FitLine(s []Sample) (Line, error) {
	s = usable(s)
	if len(s) < MinSamples {
		return Line{}, fmt.Errorf("%w: %d samples of load and latency, at least %d are needed", ErrTooLittleData, len(s), MinSamples)
	}
	r := loadRange(s)
	l, ok := line(s)
	if !ok {
		return Line{}, fmt.Errorf("%w: latency does not rise with load between %.3g and %.3g requests/s per instance, so the data holds no sign of saturation; it needs a period of higher load", ErrTooLittleData, r.Min, r.Max)
	}
	if r.Max < MinReach*l.Saturation || r.Max-r.Min < MinSpan*l.Saturation {
		return Line{}, fmt.Errorf("%w: the load observed (%.3g to %.3g requests/s per instance) covers too little of the curve towards the estimated saturation (%.3g); the fit needs load reaching %.0f %% of it over a range of %.0f %%",
			ErrTooLittleData, r.Min, r.Max, l.Saturation, 100*MinReach, 100*MinSpan)
	}
	return l, nil
}

// ScaleFit is the base latency of a latency proportional to the fitted
// curve's, the saturation held fixed: the weighted least-squares a of
// 1/latency = a·(1 − load/saturation). ok is false without samples below
// the saturation.
func ScaleFit(s []Sample, saturation float64) (base float64, ok bool) {
	var num, den float64
	for _, p := range usable(s) {
		z := 1 - p.Load/saturation
		if z <= 0 {
			continue
		}
		w := p.Latency * p.Latency
		num += w * z / p.Latency
		den += w * z * z
	}
	if den == 0 || num <= 0 {
		return 0, false
	}
	return den / num, true
}

// Breaking is the load at which a curve with this saturation and base
// reaches threshold: saturation × (1 − base/threshold), 0 when the base is
// already over it.
func Breaking(saturation, base, threshold float64) float64 {
	return math.Max(0, saturation*(1-base/threshold))
}

// Interval is a bootstrap interval: the 5th and 95th percentiles over
// resamplings. High is nil when more than 5 % of the resamplings had no
// saturation (latency not rising): the upper end is unbounded.
type Interval struct {
	Low  float64  `json:"low"`
	High *float64 `json:"high"`
}

// percentiles gives the 5–95 % interval of vs, +Inf meaning unbounded.
func percentiles(vs []float64) Interval {
	slices.Sort(vs)
	at := func(q float64) float64 { return vs[min(len(vs)-1, int(q*float64(len(vs))))] }
	iv := Interval{Low: at(0.05)}
	if h := at(0.95); !math.IsInf(h, 1) {
		iv.High = &h
	}
	return iv
}

// Estimate is the capacity estimate of one latency objective.
type Estimate struct {
	Line
	Range
	Samples int `json:"samples"`
	// SaturationInterval is the bootstrap interval of the saturation point.
	SaturationInterval Interval `json:"saturation_interval"`
	// ObjectiveBase is the objective latency's base (its value at no load).
	ObjectiveBase float64 `json:"objective_base_latency_seconds"`
	// Threshold is the objective's latency; Breaking the per-instance load
	// at which the objective latency reaches it, with its interval.
	Threshold        float64  `json:"latency_threshold"`
	Breaking         float64  `json:"latency_breaking_per_instance"`
	BreakingInterval Interval `json:"latency_breaking_interval"`
	// Confidence is high when the interval is within ±10 % of the estimate
	// and R² ≥ 0.8, medium within ±25 %, low otherwise.
	Confidence string `json:"confidence"`
}

// Estimate fits the saturation point on fit (load against the mean or
// another latency proportional to the queue's) and the objective latency's
// base on objective, and gives the load at which the objective latency
// crosses threshold, with bootstrap intervals (deterministic: seed).
func EstimateCapacity(fit, objective []Sample, threshold float64, seed uint64) (Estimate, error) {
	fit, objective = usable(fit), usable(objective)
	l, err := FitLine(fit)
	if err != nil {
		return Estimate{}, err
	}
	base, ok := ScaleFit(objective, l.Saturation)
	if !ok {
		return Estimate{}, fmt.Errorf("%w: no sample of the objective's latency below the estimated saturation (%.3g requests/s per instance)", ErrTooLittleData, l.Saturation)
	}
	e := Estimate{Line: l, Range: loadRange(fit), Samples: len(fit), ObjectiveBase: base, Threshold: threshold,
		Breaking: Breaking(l.Saturation, base, threshold)}
	rnd := rand.New(rand.NewPCG(seed, 0x7469646577617463))
	sats := make([]float64, 0, bootstrapRounds)
	brks := make([]float64, 0, bootstrapRounds)
	rs := make([]Sample, len(fit))
	ro := make([]Sample, len(objective))
	for range bootstrapRounds {
		for i := range rs {
			rs[i] = fit[rnd.IntN(len(fit))]
		}
		for i := range ro {
			ro[i] = objective[rnd.IntN(len(objective))]
		}
		bl, ok := line(rs)
		if !ok {
			sats = append(sats, math.Inf(1))
			brks = append(brks, math.Inf(1))
			continue
		}
		sats = append(sats, bl.Saturation)
		b, ok := ScaleFit(ro, bl.Saturation)
		if !ok {
			brks = append(brks, math.Inf(1))
			continue
		}
		brks = append(brks, Breaking(bl.Saturation, b, threshold))
	}
	e.SaturationInterval = percentiles(sats)
	e.BreakingInterval = percentiles(brks)
	e.Confidence = confidence(e.Breaking, e.BreakingInterval, l.R2)
	return e, nil
}

func confidence(v float64, iv Interval, r2 float64) string {
	if iv.High == nil || v <= 0 {
		return "low"
	}
	half := (*iv.High - iv.Low) / 2 / v
	switch {
	case half <= 0.10 && r2 >= 0.8:
		return "high"
	case half <= 0.25:
		return "medium"
	default:
		return "low"
	}
}

// ErrorSample is one instance's load and error ratio at one time.
type ErrorSample struct {
	Load  float64
	Ratio float64
}

// ErrorBreaking finds the lowest load at which the error ratio breaks
// threshold: the samples are split by load into bins of at least
// errorBinSize samples, and the first bin whose mean ratio exceeds the
// threshold gives its lowest load. ok is false when no bin does.
func ErrorBreaking(s []ErrorSample, threshold float64) (load float64, ok bool) {
	s = slices.DeleteFunc(slices.Clone(s), func(p ErrorSample) bool {
		return math.IsNaN(p.Ratio) || math.IsNaN(p.Load) || math.IsInf(p.Load, 0)
	})
	slices.SortFunc(s, func(a, b ErrorSample) int { return cmpFloat(a.Load, b.Load) })
	size := max(errorBinSize, len(s)/20)
	for i := 0; i+size <= len(s); i += size {
		bin := s[i : i+size]
		sum := 0.0
		for _, p := range bin {
			sum += p.Ratio
		}
		if sum/float64(len(bin)) > threshold {
			return bin[0].Load, true
		}
	}
	return 0, false
}

const errorBinSize = 5

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
