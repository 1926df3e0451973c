package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/tidewatch/tidewatch/autoscaler"
	"github.com/tidewatch/tidewatch/autoscaler/tune"
)

// tuneCommand searches a policy's parameters by backtest (autoscaler/tune)
// over a recorded load or stored history.
func tuneCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tune", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "tidewatch.yml", "configuration file")
	policyName := fs.String("policy", "", "policy to tune (required)")
	from := fs.String("from", "", "start: RFC 3339, Unix seconds, or a duration before now (2h); with --load, a duration into the trace")
	to := fs.String("to", "", "end: as --from (default now; with --load, the trace's end)")
	load := fs.String("load", "", "CSV of a recorded load (time or minute column, value column) to use instead of stored history")
	maxOver := fs.Float64("max-overloaded-minutes", 0, "the objective: fewest replica-hours with at most this many overloaded minutes (default: half the HPA defaults' on this load)")
	budget := fs.Duration("budget", time.Minute, "wall-time bound of the search")
	candidates := fs.Int("candidates", 300, "candidates to evaluate (the search stops at this or at the budget)")
	seed := fs.Uint64("seed", 1, "seed of the search: the same seed and candidate count give the same result")
	output := fs.String("output", "table", "table or json")
	var mo modelOptions
	mo.flags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *policyName == "" || fs.NArg() > 0 || (*output != "table" && *output != "json") || *budget <= 0 || *candidates <= 0 {
		fmt.Fprintln(stderr, "usage: tidewatch tune --config FILE --policy NAME (--load FILE.csv | --from T --to T) [--capacity RPS] [--startup D] [--max-overloaded-minutes X] [--budget 60s] [--candidates N] [--seed N] [--output table|json]")
		return 2
	}
	pc, secs, start, ok := loadModelInput(ctx, "tune", *configFile, *policyName, *load, *from, *to, mo.scale, stderr)
	if !ok {
		return 1
	}
	m := autoscaler.Model{Capacity: modelCapacity(pc, mo.capacity), Startup: mo.startup, MetricWindow: mo.window, ScrapeInterval: mo.every}
	res, err := tune.Run(ctx, tune.Options{Policy: pc, Load: secs, Start: start, Model: m, Initial: mo.initial,
		MaxOverloadedMinutes: *maxOver, Candidates: *candidates, Budget: *budget, Seed: *seed})
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "tune: %v\n", err)
			return 1
		}
		return 0
	}
	tuneTable(stdout, res)
	return 0
}

func tuneTable(w io.Writer, r *tune.Result) {
	fmt.Fprintf(w, "Tuning policy %s over %s of load in the reference model (%.4g per replica): %d candidates in %d rounds, %s (stopped by %s), seed %d.\n\n",
		r.Policy, time.Duration(r.Seconds)*time.Second, r.Capacity, r.Evaluated, r.Rounds, r.Elapsed, r.Stopped, r.Seed)
	row := func(mark string, c tune.Candidate) {
		fmt.Fprintf(w, "%-2s%-12s %14.1f %14.1f %12d  %s\n", mark, c.Name, c.OverloadedMinutes, c.ReplicaHours, c.ScaleEvents, describe(c.Params))
	}
	fmt.Fprintf(w, "  %-12s %14s %14s %12s  %s\n", "candidate", "overloaded min", "replica-hours", "scale events", "parameters")
	row("", r.HPA)
	row("", r.Configured)
	fmt.Fprintf(w, "\nPareto front (%d), by replica-hours; * is the recommendation:\n", len(r.Front))
	for _, c := range r.Front {
		mark := ""
		if c.Name == r.Recommended.Name {
			mark = "*"
		}
		row(mark, c)
	}
	if r.Feasible {
		fmt.Fprintf(w, "\nRecommended: the fewest replica-hours with at most %.1f overloaded minutes:\n", r.MaxOverloadedMinutes)
	} else {
		fmt.Fprintf(w, "\nNo candidate stays within %.1f overloaded minutes; the least overloaded:\n", r.MaxOverloadedMinutes)
	}
	fmt.Fprintf(w, "  %.1f overloaded minutes, %.1f replica-hours, %d scale events (HPA defaults: %.1f, %.1f, %d)\n\n%s",
		r.Recommended.OverloadedMinutes, r.Recommended.ReplicaHours, r.Recommended.ScaleEvents, r.HPA.OverloadedMinutes, r.HPA.ReplicaHours, r.HPA.ScaleEvents, r.YAML)
}

// describe is p in a line.
func describe(p tune.Params) string {
	s := "target sizing"
	if p.CapacitySizing {
		s = fmt.Sprintf("capacity sizing, headroom %g σ over %s", p.Deviations, p.HeadroomWindow)
	}
	if p.Forecast != "" {
		s += fmt.Sprintf(", %s forecast %s/%s", p.Forecast, p.ForecastWindow, p.ForecastHorizon)
	}
	return s + fmt.Sprintf(", tolerance %g, up %s +%d%%/+%d, down %s −%d%%", p.Tolerance, p.UpStabilization, p.UpPercent, p.UpPods, p.DownStabilization, p.DownPercent)
}
