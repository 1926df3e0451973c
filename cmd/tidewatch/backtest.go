package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/tidewatch/tidewatch/autoscaler"
	"github.com/tidewatch/tidewatch/config"
)

// backtestCommand replays a scaling policy over stored history or a
// recorded load and reports what it would have done and cost.
func backtestCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "tidewatch.yml", "configuration file")
	policyName := fs.String("policy", "", "policy to replay (required)")
	from := fs.String("from", "", "start: RFC 3339, Unix seconds, or a duration before now (2h); with --load, a duration into the trace (default its start)")
	to := fs.String("to", "", "end: as --from (default now; with --load, the trace's end)")
	load := fs.String("load", "", "CSV of a recorded load (time or minute column, value column) to use instead of stored history")
	speedup := fs.Float64("speedup", 1, "with --load: replay the trace this many times faster")
	static := fs.Int("static", 0, "replicas of the static baseline (default: enough for the peak load)")
	output := fs.String("output", "table", "table or json")
	timeline := fs.Bool("timeline", false, "with --output json: include every scale event")
	var mo modelOptions
	mo.flags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *policyName == "" || fs.NArg() > 0 || (*output != "table" && *output != "json" && *output != "csv") || (mo.capacity > 0 && *load == "") {
		fmt.Fprintln(stderr, "usage: tidewatch backtest --config FILE --policy NAME [--from T --to T | --load FILE.csv [--speedup N] | --load FILE.csv --capacity RPS [model flags]] [--output table|json|csv]")
		return 2
	}
	logger := slog.New(slog.DiscardHandler)
	cfg, pc, ok := loadPolicy(*configFile, *policyName, logger, stderr)
	if !ok {
		return 1
	}
	if *load != "" && (mo.capacity > 0 || pc.CapacityPerInstance > 0) {
		return backtestModel(pc, *load, *from, *to, *static, *output, *timeline, mo, stdout, stderr)
	}
	if *output == "csv" {
		fmt.Fprintln(stderr, "backtest: --output csv needs the reference model (--load with --capacity or capacity_per_instance)")
		return 2
	}
	bt := autoscaler.Backtest{Policy: pc, Static: *static, Initial: mo.initial}
	var err error
	if *load != "" {
		err = loadTrace(&bt, *load, *speedup, *from, *to)
	} else {
		err = loadHistory(ctx, &bt, cfg, *from, *to, logger)
	}
	if err != nil {
		fmt.Fprintf(stderr, "backtest: %v\n", err)
		return 1
	}
	rep, err := bt.Run()
	if err != nil {
		fmt.Fprintf(stderr, "backtest: %v\n", err)
		return 1
	}
	if *output == "json" {
		if err := writeBacktestJSON(stdout, rep, *timeline); err != nil {
			fmt.Fprintf(stderr, "backtest: %v\n", err)
			return 1
		}
		return 0
	}
	rep.Table(stdout)
	return 0
}

// loadPolicy loads the configuration and finds the policy to replay,
// reporting what is wrong on stderr.
func loadPolicy(file, name string, logger *slog.Logger, stderr io.Writer) (*config.Config, autoscaler.PolicyConfig, bool) {
	cfg, err := config.Load(file, logger)
	if err != nil {
		fmt.Fprintf(stderr, "backtest: invalid configuration:\n%v\n", err)
		return nil, autoscaler.PolicyConfig{}, false
	}
	pc, ok := cfg.Autoscaling.Policy(name)
	if !ok {
		fmt.Fprintf(stderr, "backtest: no policy %q in %s\n", name, file)
	}
	return cfg, pc, ok
}

// writeBacktestJSON writes rep indented, without the scale-event timelines
// unless asked for.
func writeBacktestJSON(w io.Writer, rep *autoscaler.BacktestReport, timeline bool) error {
	if !timeline {
		for i := range rep.Runs {
			rep.Runs[i].Timeline = nil
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// traceEpoch is where a replayed trace starts on the simulated clock (a
// Monday, so that weekday schedules behave).
var traceEpoch = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)

func loadTrace(bt *autoscaler.Backtest, file string, speedup float64, from, to string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	pts, err := autoscaler.ReadLoadCSV(f, traceEpoch, speedup)
	if err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	offset := func(s string, def time.Time) (time.Time, error) {
		if s == "" {
			return def, nil
		}
		d, err := parseDuration(s)
		if err != nil {
			return time.Time{}, fmt.Errorf("with --load, --from and --to are durations into the trace: %w", err)
		}
		return traceEpoch.Add(time.Duration(float64(d) / speedup)), nil
	}
	if bt.From, err = offset(from, pts[0].T); err != nil {
		return err
	}
	if bt.To, err = offset(to, pts[len(pts)-1].T.Add(time.Minute/time.Duration(max(speedup, 1)))); err != nil {
		return err
	}
	// Only the first (per_instance) metric has a recorded load; the others
	// are left empty, which the engine treats as unreadable (never scaling down).
	bt.Metrics = make([][]autoscaler.Point, len(bt.Policy.Metrics))
	bt.Metrics[0] = pts
	return nil
}

// loadHistory reads the policy's metrics from the configured store
// between --from and --to (see autoscaler.Backtest.LoadHistory).
func loadHistory(ctx context.Context, bt *autoscaler.Backtest, cfg *config.Config, from, to string, logger *slog.Logger) error {
	now := time.Now()
	var err error
	if bt.From, err = parseTime(from, now.Add(-time.Hour), now); err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	if bt.To, err = parseTime(to, now, now); err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	return bt.LoadHistory(ctx, cfg.Storage, cfg.Query, logger)
}

// parseTime reads RFC 3339, Unix seconds, "now", or a duration before now.
func parseTime(s string, def, now time.Time) (time.Time, error) {
	switch s {
	case "":
		return def, nil
	case "now":
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Unix(0, int64(f*1e9)), nil
	}
	if d, err := parseDuration(strings.TrimPrefix(s, "-")); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not RFC 3339, Unix seconds, now, or a duration", s)
}

// parseDuration accepts Go and Prometheus durations (90m, 1h30m, 2d).
func parseDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	d, err := model.ParseDuration(s)
	if err != nil {
		return 0, errors.New("not a duration: " + s)
	}
	return time.Duration(d), nil
}
