package autoscaler

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Backtest is the stored history a backtest replays: each metric's
// history between From and To, read by LoadHistory. The first metric is
// per_instance: its history is the load the reference model (SimulateLoad)
// replays, held for each Step.
type Backtest struct {
	Policy PolicyConfig
	// Metrics holds each metric's history (oldest first), one slice per
	// policy metric.
	Metrics [][]Point
	From    time.Time
	To      time.Time
	// Step is the resolution of the history read (default: the policy's
	// interval; the backtest uses the scrape interval).
	Step time.Duration
}

// Load is the first metric's history as a per-second load from From to
// To, each point held until the next (HoldPerSecond), and its start.
func (b *Backtest) Load() ([]float64, time.Time, error) {
	if len(b.Metrics) == 0 || len(b.Metrics[0]) == 0 {
		return nil, time.Time{}, errors.New("backtest: no history loaded")
	}
	return HoldPerSecond(b.Metrics[0], b.From, b.To), b.From, nil
}

// TimelinePoint is a scale event of a run.
type TimelinePoint struct {
	Time     time.Time `json:"time"`
	Replicas int       `json:"replicas"`
	Reason   string    `json:"reason"`
}

// HPADefaults returns c as a plain Kubernetes HPA would run it: the same
// targets, limits and metrics, with the HPA's default behavior, tolerance and
// 15 s sync period, and no forecast, schedule or fallback.
func HPADefaults(c PolicyConfig) PolicyConfig {
	h := c
	h.Behavior = DefaultBehavior
	h.Tolerance = DefaultPolicyConfig.Tolerance
	h.Interval = DefaultPolicyConfig.Interval
	h.Forecast = nil
	h.Schedule = nil
	h.OnMetricError = OnMetricError{}
	h.CapacityPerInstance, h.Headroom, h.ScaleUpQuery = 0, nil, ""
	return h
}

// ReadLoadCSV reads a recorded load: a header row, then rows of a time
// column and a value column. The time column is a minute index (as in the
// NASA trace: "minute"), Unix seconds, or RFC 3339. Row i happens at start +
// offset/speedup, where offset is its time since the first row.
func ReadLoadCSV(r io.Reader, start time.Time, speedup float64) ([]Point, error) {
	if speedup <= 0 {
		return nil, errors.New("speedup must be positive")
	}
	var pts []Point
	var first time.Time
	_, err := scanLoadCSV(r, func(at time.Time, v float64, _ int, _ bool) error {
		if len(pts) == 0 {
			first = at
		}
		pts = append(pts, Point{T: start.Add(time.Duration(float64(at.Sub(first)) / speedup)), V: v})
		return nil
	})
	return pts, err
}

// scanLoadCSV reads a load CSV (see ReadLoadCSV) row by row, calling fn
// with each row's time (a minute index counts from the Unix epoch), value,
// line and whether the time column is a minute index, which it also
// reports.
func scanLoadCSV(r io.Reader, fn func(at time.Time, v float64, line int, minutes bool) error) (minutes bool, err error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return false, fmt.Errorf("read csv header: %w", err)
	}
	if len(header) < 2 {
		return false, fmt.Errorf("csv header %q: want a time column and a value column", strings.Join(header, ","))
	}
	minutes = strings.EqualFold(strings.TrimSpace(header[0]), "minute")
	line, rows := 1, 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line++
		if err != nil {
			return minutes, fmt.Errorf("read csv line %d: %w", line, err)
		}
		if len(rec) < 2 {
			return minutes, fmt.Errorf("csv line %d: want 2 columns", line)
		}
		var at time.Time
		ts := strings.TrimSpace(rec[0])
		switch f, err := strconv.ParseFloat(ts, 64); {
		case err == nil && minutes:
			at = time.Unix(0, 0).Add(time.Duration(f * float64(time.Minute)))
		case err == nil:
			at = time.Unix(0, int64(f*1e9))
		default:
			if at, err = time.Parse(time.RFC3339, ts); err != nil {
				return minutes, fmt.Errorf("csv line %d: time %q is neither a number nor RFC 3339", line, ts)
			}
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rec[1]), 64)
		if err != nil {
			return minutes, fmt.Errorf("csv line %d: value %q: %w", line, rec[1], err)
		}
		if err := fn(at, v, line, minutes); err != nil {
			return minutes, err
		}
		rows++
	}
	if rows == 0 {
		return minutes, errors.New("csv has no rows")
	}
	return minutes, nil
}
