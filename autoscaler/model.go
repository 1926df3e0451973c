package autoscaler

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sort"
	"time"
)

// Model is the system a per-second load is replayed through: the reference
// model policies are judged with (../shared/reference/hpa_reference.py).
// Each ready replica serves up to Capacity rps; replicas added at t are ready
// from t+Startup; removed ones stop at once, pending ones first. The policy
// sees what its live query would: the mean load of the last MetricWindow,
// sampled every ScrapeInterval, and it decides every policy interval.
type Model struct {
	Capacity       float64
	Startup        time.Duration
	MetricWindow   time.Duration
	ScrapeInterval time.Duration
	// Observe, when set, is called each second with the ready and the
	// decided replicas (for tests and plots).
	Observe func(second, ready, replicas int)
}

// DefaultModel is the reference model's defaults but for Capacity.
var DefaultModel = Model{Startup: 30 * time.Second, MetricWindow: time.Minute, ScrapeInterval: 15 * time.Second}

// ModelRun is one contender's figures in the model.
type ModelRun struct {
	Name string `json:"name"`
	// OverloadedMinutes counts the seconds whose load exceeded what the ready
	// replicas serve (ready × capacity), in minutes.
	OverloadedMinutes float64 `json:"overloaded_minutes"`
	// AboveTargetMinutes counts the seconds whose load exceeded the ready
	// replicas' target (ready × per_instance), in minutes.
	AboveTargetMinutes float64 `json:"above_target_minutes"`
	// ReplicaHours counts replicas from the decision, ready or not.
	ReplicaHours float64 `json:"replica_hours"`
	ScaleEvents  int     `json:"scale_events"`
	ScaleUps     int     `json:"scale_ups"`
	ScaleDowns   int     `json:"scale_downs"`
	// PeakUtilization is the highest load per ready replica ÷ the target,
	// P99Utilization its 99th percentile over the seconds (to 0.001).
	PeakUtilization float64 `json:"peak_utilization"`
	P99Utilization  float64 `json:"p99_utilization"`
	MinReplicas     int     `json:"min_replicas"`
	MaxReplicas     int     `json:"max_replicas"`
	// Days are the figures per day (86,400 s) of the load.
	Days []DayFigures `json:"days"`
	// Timeline is every scale event, complete.
	Timeline []TimelinePoint `json:"timeline,omitempty"`
}

// DayFigures are one day's figures of a run.
type DayFigures struct {
	Day                int     `json:"day"`
	OverloadedMinutes  float64 `json:"overloaded_minutes"`
	AboveTargetMinutes float64 `json:"above_target_minutes"`
	ReplicaHours       float64 `json:"replica_hours"`
	ScaleEvents        int     `json:"scale_events"`
}

// figures accumulates a run's per-second figures: totals, per day, and the
// utilization distribution (a histogram in steps of 0.001 of the target).
// Seconds are counted as integers and turned into minutes and hours once,
// so that the figures are exact.
type figures struct {
	run      *ModelRun
	capacity float64
	target   float64
	days     []dayCount
	hist     []int       // seconds by util×1000, for util < histMax
	tail     map[int]int // the rest
	seconds  int
}

// dayCount is one day's counts in seconds (replica-seconds).
type dayCount struct{ over, above, replicaSeconds int }

const histMax = 20

func newFigures(run *ModelRun, capacity, target float64) *figures {
	return &figures{run: run, capacity: capacity, target: target, hist: make([]int, histMax*1000), tail: map[int]int{}}
}

func (f *figures) day(t int) *DayFigures {
	d := t / 86400
	for len(f.run.Days) <= d {
		f.run.Days = append(f.run.Days, DayFigures{Day: len(f.run.Days)})
		f.days = append(f.days, dayCount{})
	}
	return &f.run.Days[d]
}

// second records second t with load l, ready and decided replicas.
func (f *figures) second(t int, l float64, ready, replicas int) {
	f.day(t)
	d := &f.days[t/86400]
	d.replicaSeconds += replicas
	if l > float64(ready)*f.capacity {
		d.over++
	}
	if l > float64(ready)*f.target {
		d.above++
	}
	util := math.Inf(1)
	if ready > 0 {
		util = l / (float64(ready) * f.target)
	} else if l == 0 {
		util = 0
	}
	f.run.PeakUtilization = max(f.run.PeakUtilization, util)
	if k := int(math.Min(util, 1e6) * 1000); k < len(f.hist) {
		f.hist[k]++
	} else {
		f.tail[k]++
	}
	f.seconds++
}

// finish totals the days and takes the 99th percentile.
func (f *figures) finish() {
	r := f.run
	var total dayCount
	for i, c := range f.days {
		d := &r.Days[i]
		d.OverloadedMinutes, d.AboveTargetMinutes, d.ReplicaHours = float64(c.over)/60, float64(c.above)/60, float64(c.replicaSeconds)/3600
		total.over += c.over
		total.above += c.above
		total.replicaSeconds += c.replicaSeconds
	}
	r.OverloadedMinutes, r.AboveTargetMinutes, r.ReplicaHours = float64(total.over)/60, float64(total.above)/60, float64(total.replicaSeconds)/3600
	rank, seen := int(math.Ceil(0.99*float64(f.seconds))), 0
	for k, n := range f.hist {
		if seen += n; seen >= rank {
			r.P99Utilization = float64(k) / 1000
			return
		}
	}
	keys := slices.Sorted(maps.Keys(f.tail))
	for _, k := range keys {
		if seen += f.tail[k]; seen >= rank {
			r.P99Utilization = float64(k) / 1000
			return
		}
	}
}

// SimulateLoad replays load (one value per second from start) through the
// policy c, starting with initial replicas (ready), in model m. The
// decisions are the live autoscaler's own (Policy.Decide).
func SimulateLoad(c PolicyConfig, load []float64, start time.Time, initial int, m Model) (ModelRun, error) {
	if m.Capacity <= 0 {
		return ModelRun{}, errors.New("model: capacity must be positive")
	}
	if len(c.Metrics) == 0 || c.Metrics[0].PerInstance <= 0 {
		return ModelRun{}, errors.New("model: the policy's first metric must be per_instance (it is the load)")
	}
	if len(load) == 0 {
		return ModelRun{}, errors.New("model: the load is empty")
	}
	p, err := NewPolicy(c)
	if err != nil {
		return ModelRun{}, err
	}
	// Evaluations run terse; one that scales is replayed, from a copy of the
	// state before it, by the explaining policy for its reason.
	terse := *p
	terse.terse = true
	var before State
	window := max(int(m.MetricWindow/time.Second), 1)
	scrape := max(int(m.ScrapeInterval/time.Second), 1)
	interval := max(int(p.Interval/time.Second), 1)
	startup := int(m.Startup / time.Second)
	target := c.Metrics[0].PerInstance

	type batch struct{ readyAt, n int }
	var (
		run      = ModelRun{Name: c.Name}
		st       State
		pending  []batch
		replicas = max(initial, 1)
		ready    = replicas
		sum      float64 // of the last window seconds
		metric   = math.NaN()
		samples  []Point
		// Capacity sizing's per-scrape metric: the mean of the last scrape
		// interval (what irate() of a counter scraped then reads).
		fast     = c.FastQuery() != ""
		fastSum  float64
		fastPts  []Point
		headroom = c.headroom()
	)
	fig := newFigures(&run, m.Capacity, target)
	for t, l := range load {
		sum += l
		if t >= window {
			sum -= load[t-window]
		}
		fastSum += l
		if t >= scrape {
			fastSum -= load[t-scrape]
		}
		for len(pending) > 0 && pending[0].readyAt <= t {
			ready += pending[0].n
			pending = pending[1:]
		}
		now := start.Add(time.Duration(t) * time.Second)
		if t%scrape == 0 && t+1 >= window {
			metric = sum / float64(window)
			samples = append(samples, Point{T: now, V: metric})
			if fast {
				fastPts = append(fastPts, Point{T: now, V: fastSum / float64(scrape)})
			}
		}
		if t%interval == 0 && !math.IsNaN(metric) {
			o := Observation{Value: metric}
			if c.capacitySizing() {
				vol := samples
				if fast {
					last := fastPts[len(fastPts)-1]
					o.Fast, o.HasFast = last.V, true
					vol = fastPts
				}
				o.Volatility, o.HasVolatility = Volatility(modelWindow(vol, now, time.Duration(headroom.Window)), time.Duration(headroom.Horizon))
			}
			if c.Forecast != nil {
				if f, err := Forecast(*c.Forecast, modelWindow(samples, now, time.Duration(c.Forecast.Window))); err == nil {
					o.Forecast, o.HasForecast = f, true
				}
			}
			in := Input{Now: now, Current: replicas, Metrics: []Observation{o}}
			before.copyFrom(&st)
			ev := terse.Decide(&st, in)
			if want := ev.Desired; want != replicas {
				if ev = p.Decide(&before, in); ev.Desired != want {
					return ModelRun{}, fmt.Errorf("model: at %s the explained decision (%d) differs from the terse one (%d)", now, ev.Desired, want)
				}
				run.ScaleEvents++
				fig.day(t).ScaleEvents++
				if want > replicas {
					run.ScaleUps++
					pending = append(pending, batch{readyAt: t + startup, n: want - replicas})
				} else {
					run.ScaleDowns++
					drop := replicas - want
					for drop > 0 && len(pending) > 0 {
						last := &pending[len(pending)-1]
						k := min(last.n, drop)
						last.n -= k
						drop -= k
						if last.n == 0 {
							pending = pending[:len(pending)-1]
						}
					}
					ready -= drop
				}
				run.Timeline = append(run.Timeline, TimelinePoint{Time: now, Replicas: want, Reason: ev.Reason()})
				st.RecordScale(now, replicas, want)
				replicas = want
			}
		}
		if t == 0 || replicas < run.MinReplicas {
			run.MinReplicas = replicas
		}
		run.MaxReplicas = max(run.MaxReplicas, replicas)
		fig.second(t, l, ready, replicas)
		if m.Observe != nil {
			m.Observe(t, ready, replicas)
		}
	}
	fig.finish()
	return run, nil
}

// modelWindow is the samples in (t-w, t]; samples are in time order and the
// last one is at t.
func modelWindow(samples []Point, t time.Time, w time.Duration) []Point {
	from := t.Add(-w)
	i := sort.Search(len(samples), func(i int) bool { return samples[i].T.After(from) })
	return samples[i:]
}

// PerSecond turns per-minute request counts into a per-second load, each
// minute's rate held for its 60 seconds, scaled by scale.
func PerSecond(perMinute []float64, scale float64) []float64 {
	out := make([]float64, 0, len(perMinute)*60)
	for _, v := range perMinute {
		r := v / 60 * scale
		for range 60 {
			out = append(out, r)
		}
	}
	return out
}

// StaticLoad is the static baseline in model m: n replicas, ready from the
// start, over load.
func StaticLoad(n int, load []float64, target float64, m Model) ModelRun {
	run := ModelRun{Name: "static", MinReplicas: n, MaxReplicas: n}
	fig := newFigures(&run, m.Capacity, target)
	for t, l := range load {
		fig.second(t, l, n, n)
	}
	fig.finish()
	return run
}

// ModelBacktest replays the policy c, its HPA defaults and a static capacity
// (static replicas; 0 means enough for the peak load at the target) over a
// per-second load in model m, starting from initial replicas (0: the
// policy's min).
func ModelBacktest(c PolicyConfig, load []float64, start time.Time, initial, static int, m Model) ([]ModelRun, error) {
	if initial <= 0 {
		initial = max(c.Min, 1)
	}
	pol, err := SimulateLoad(c, load, start, initial, m)
	if err != nil {
		return nil, err
	}
	pol.Name = "policy"
	hpa, err := SimulateLoad(HPADefaults(c), load, start, initial, m)
	if err != nil {
		return nil, err
	}
	hpa.Name = "hpa_default"
	target := c.Metrics[0].PerInstance
	if static <= 0 {
		peak := 0.0
		for _, l := range load {
			peak = max(peak, l)
		}
		static = max(c.Min, int(math.Ceil(peak/target)), 1)
	}
	return []ModelRun{pol, hpa, StaticLoad(static, load, target, m)}, nil
}

// ReadLoadTrace reads a recorded load as ReadLoadCSV does and turns it into
// one value per second: a trace with a "minute" column holds requests per
// minute, replayed as value/60 rps for each of the minute's 60 seconds;
// otherwise each row's value (rps) holds until the next row's time (a NaN
// is no load), and the last row for one second. Rows must be in time
// order. It returns the load and the time of its first second. The rows
// are read one at a time into the load, so a per-second trace costs its
// 8 bytes a second and no more.
func ReadLoadTrace(r io.Reader) ([]float64, time.Time, error) {
	const maxSeconds = 400 * 86400
	var (
		load         []float64
		first, prevT time.Time
		prevV        float64
		rows         int
	)
	minuteTrace, err := scanLoadCSV(bufio.NewReader(r), func(at time.Time, v float64, line int, minutes bool) error {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			v = 0
		}
		rows++
		if minutes {
			if rows == 1 {
				first = at
			}
			if len(load) >= maxSeconds {
				return fmt.Errorf("csv line %d: the trace lasts more than 400 days; at most 400 days replay second by second", line)
			}
			for range 60 {
				load = append(load, v/60)
			}
			return nil
		}
		switch {
		case rows == 1:
			first = at
		case at.Before(prevT):
			return fmt.Errorf("csv line %d: %s is before the row above (%s): rows must be in time order", line, at.Format(time.RFC3339), prevT.Format(time.RFC3339))
		case at.Sub(first) > maxSeconds*time.Second:
			return fmt.Errorf("csv line %d: the trace spans more than 400 days; at most 400 days replay second by second", line)
		default:
			for end := int(at.Sub(first) / time.Second); len(load) < end; {
				load = append(load, prevV)
			}
		}
		prevT, prevV = at, v
		return nil
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	if !minuteTrace {
		load = append(load, prevV) // the last row holds for its second
	}
	return load, first, nil
}

// HoldPerSecond is pts (in time order) as one value per second of [from,
// to): each point's value holds until the next point; seconds before the
// first point hold the first value.
func HoldPerSecond(pts []Point, from, to time.Time) []float64 {
	n := max(int(to.Sub(from)/time.Second), 0)
	load := make([]float64, n)
	if len(pts) == 0 {
		return load
	}
	j := 0
	for s := range load {
		at := from.Add(time.Duration(s) * time.Second)
		for j+1 < len(pts) && !pts[j+1].T.After(at) {
			j++
		}
		if v := pts[j].V; !math.IsNaN(v) && !math.IsInf(v, 0) {
			load[s] = v
		}
	}
	return load
}
