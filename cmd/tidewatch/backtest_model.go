package main

import (
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/tidewatch/tidewatch/autoscaler"
)

// modelOptions are the reference model's flags: with --capacity the
// backtest replays a recorded load second by second through
// autoscaler.SimulateLoad (readiness delay, windowed metric at the scrape
// interval) instead of sampling it at the policy interval.
type modelOptions struct {
	capacity, scale        float64
	startup, window, every time.Duration
	initial                int
}

func (o *modelOptions) flags(fs *flag.FlagSet) {
	fs.Float64Var(&o.capacity, "capacity", 0, "what one replica serves before it is overloaded, in the first metric's unit (default: the policy's capacity_per_instance, else per_instance / 0.7)")
	fs.DurationVar(&o.startup, "startup", autoscaler.DefaultModel.Startup, "model: the readiness delay of an added replica")
	fs.DurationVar(&o.window, "metric-window", autoscaler.DefaultModel.MetricWindow, "model: the window of the mean load the policy sees")
	fs.DurationVar(&o.every, "scrape-interval", autoscaler.DefaultModel.ScrapeInterval, "model: how often that metric is sampled")
	fs.IntVar(&o.initial, "initial", 0, "model: replicas at the start (default: the policy's min)")
	fs.Float64Var(&o.scale, "scale", 1, "model: multiply the recorded load by this")
}

// modelReport is the model backtest's JSON: runs named policy, hpa_default
// and static, each with overloaded_minutes, above_target_minutes,
// replica_hours and scale_events.
type modelReport struct {
	Policy   string                `json:"policy"`
	Seconds  int                   `json:"seconds"`
	Capacity float64               `json:"capacity_per_instance"`
	Target   float64               `json:"target_per_instance"`
	Startup  string                `json:"startup"`
	Runs     []autoscaler.ModelRun `json:"runs"`
}

// backtestModel replays secs (one load value per second from start)
// through the model and writes the report.
func backtestModel(pc autoscaler.PolicyConfig, secs []float64, start time.Time, static int, output string, timeline bool, o modelOptions, stdout, stderr io.Writer) int {
	o.capacity = modelCapacity(pc, o.capacity)
	m := autoscaler.Model{Capacity: o.capacity, Startup: o.startup, MetricWindow: o.window, ScrapeInterval: o.every}
	runs, err := autoscaler.ModelBacktest(pc, secs, start, o.initial, static, m)
	if err != nil {
		fmt.Fprintf(stderr, "backtest: %v\n", err)
		return 1
	}
	rep := modelReport{Policy: pc.Name, Seconds: len(secs), Capacity: o.capacity, Target: pc.Metrics[0].PerInstance, Startup: o.startup.String(), Runs: runs}
	if output == "json" {
		if !timeline {
			for i := range rep.Runs {
				rep.Runs[i].Timeline = nil
			}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "backtest: %v\n", err)
			return 1
		}
		return 0
	}
	if output == "csv" {
		rep.csv(stdout, timeline)
		return 0
	}
	rep.table(stdout)
	return 0
}

// modelCapacity is --capacity, else the policy's capacity_per_instance,
// else per_instance / 0.7 (the HPA's usual 70 % target).
func modelCapacity(pc autoscaler.PolicyConfig, flag float64) float64 {
	switch {
	case flag > 0:
		return flag
	case pc.CapacityPerInstance > 0:
		return pc.CapacityPerInstance
	}
	return pc.Metrics[0].PerInstance / 0.7
}

// readModelLoad reads the trace second by second and cuts it to [from, to),
// durations into the trace; a bound outside it is an error.
func readModelLoad(file, from, to string, scale float64) ([]float64, time.Time, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	secs, start, err := autoscaler.ReadLoadTrace(f)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read %s: %w", file, err)
	}
	bound := func(s string, def int) (int, error) {
		if s == "" {
			return def, nil
		}
		d, err := parseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("with --load, --from and --to are durations into the trace: %w", err)
		}
		if n := int(d / time.Second); n >= 0 && n <= len(secs) {
			return n, nil
		}
		return 0, fmt.Errorf("%s is outside the trace, which lasts %s", s, time.Duration(len(secs))*time.Second)
	}
	lo, err := bound(from, 0)
	if err != nil {
		return nil, time.Time{}, err
	}
	hi, err := bound(to, len(secs))
	if err != nil {
		return nil, time.Time{}, err
	}
	if hi <= lo {
		return nil, time.Time{}, fmt.Errorf("--to (%s) must be after --from (%s)", to, from)
	}
	out := secs[lo:hi]
	for i := range out {
		out[i] *= scale
	}
	return out, start.Add(time.Duration(lo) * time.Second), nil
}

func (r modelReport) table(w io.Writer) {
	fmt.Fprintf(w, "Backtest of policy %s in the reference model: %s of load second by second, %.4g rps per replica (target %.4g), ready after %s.\n\n",
		r.Policy, time.Duration(r.Seconds)*time.Second, r.Capacity, r.Target, r.Startup)
	fmt.Fprintf(w, "%-12s %14s %14s %14s %12s %10s %11s %10s %10s\n", "run", "overloaded min", "above target", "replica-hours", "scale events", "ups/downs", "peak util.", "p99 util.", "replicas")
	for _, run := range r.Runs {
		fmt.Fprintf(w, "%-12s %14.1f %14.1f %14.1f %12d %10s %11.2f %10.3f %10s\n", run.Name, run.OverloadedMinutes, run.AboveTargetMinutes, run.ReplicaHours,
			run.ScaleEvents, fmt.Sprintf("%d/%d", run.ScaleUps, run.ScaleDowns), run.PeakUtilization, run.P99Utilization, fmt.Sprintf("%d–%d", run.MinReplicas, run.MaxReplicas))
	}
	fmt.Fprintf(w, "\nPer day: overloaded minutes / replica-hours / scale events\n%-5s", "day")
	for _, run := range r.Runs {
		fmt.Fprintf(w, " %26s", run.Name)
	}
	fmt.Fprintln(w)
	for d := range r.Runs[0].Days {
		fmt.Fprintf(w, "%-5d", d)
		for _, run := range r.Runs {
			if d < len(run.Days) {
				x := run.Days[d]
				fmt.Fprintf(w, " %26s", fmt.Sprintf("%.1f / %.1f / %d", x.OverloadedMinutes, x.ReplicaHours, x.ScaleEvents))
			}
		}
		fmt.Fprintln(w)
	}
}

// csv writes one row per run and day (day "all" for the totals), and with
// timeline the scale events after them.
func (r modelReport) csv(w io.Writer, timeline bool) {
	cw := csv.NewWriter(w)
	defer cw.Flush()
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	_ = cw.Write([]string{"run", "day", "overloaded_minutes", "above_target_minutes", "replica_hours", "scale_events", "peak_utilization", "p99_utilization"})
	for _, run := range r.Runs {
		_ = cw.Write([]string{run.Name, "all", f(run.OverloadedMinutes), f(run.AboveTargetMinutes), f(run.ReplicaHours), strconv.Itoa(run.ScaleEvents), f(run.PeakUtilization), f(run.P99Utilization)})
		for _, d := range run.Days {
			_ = cw.Write([]string{run.Name, strconv.Itoa(d.Day), f(d.OverloadedMinutes), f(d.AboveTargetMinutes), f(d.ReplicaHours), strconv.Itoa(d.ScaleEvents), "", ""})
		}
	}
	if !timeline {
		return
	}
	_ = cw.Write([]string{"run", "time", "replicas", "reason"})
	for _, run := range r.Runs {
		for _, e := range run.Timeline {
			_ = cw.Write([]string{run.Name, e.Time.UTC().Format(time.RFC3339), strconv.Itoa(e.Replicas), e.Reason})
		}
	}
}
