package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
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
	speedup := fs.Float64("speedup", 1, "ignored: the model replays in simulated time, as fast as it can (kept for old scripts)")
	static := fs.Int("static", 0, "replicas of the static baseline (default: enough for the peak load at the target)")
	output := fs.String("output", "table", "table, json or csv")
	timeline := fs.Bool("timeline", false, "include every scale event (json and csv; never truncated)")
	var mo modelOptions
	mo.flags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *policyName == "" || fs.NArg() > 0 || (*output != "table" && *output != "json" && *output != "csv") || *speedup <= 0 {
		fmt.Fprintln(stderr, "usage: tidewatch backtest --config FILE --policy NAME [--from T --to T | --load FILE.csv] [--capacity RPS] [--startup D] [--initial N] [--metric-window D] [--scrape-interval D] [--scale X] [--static N] [--output table|json|csv] [--timeline]")
		return 2
	}
	if *speedup != 1 {
		fmt.Fprintln(stderr, "backtest: --speedup no longer changes anything: the model replays the load in simulated time")
	}
	pc, secs, start, ok := loadModelInput(ctx, "backtest", *configFile, *policyName, *load, *from, *to, mo.scale, stderr)
	if !ok {
		return 1
	}
	return backtestModel(pc, secs, start, *static, *output, *timeline, mo, stdout, stderr)
}

// loadModelInput loads the configuration, finds the policy and reads the
// load the model replays (--load, or the first metric's stored history),
// reporting what is wrong on stderr as cmd.
func loadModelInput(ctx context.Context, cmd, configFile, policy, load, from, to string, scale float64, stderr io.Writer) (autoscaler.PolicyConfig, []float64, time.Time, bool) {
	logger := slog.New(slog.DiscardHandler)
	cfg, pc, ok := loadPolicy(configFile, policy, logger, stderr)
	if !ok {
		return pc, nil, time.Time{}, false
	}
	if len(pc.Metrics) == 0 || pc.Metrics[0].PerInstance <= 0 {
		fmt.Fprintf(stderr, "%s: policy %s: the first metric must be per_instance (it is the load)\n", cmd, pc.Name)
		return pc, nil, time.Time{}, false
	}
	var (
		secs  []float64
		start time.Time
		err   error
	)
	if load != "" {
		secs, start, err = readModelLoad(load, from, to, scale)
	} else {
		secs, start, err = storedLoad(ctx, cfg, pc, from, to, scale, logger)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return pc, nil, time.Time{}, false
	}
	return pc, secs, start, true
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

// storedLoad reads the policy's first metric from the configured store
// between --from and --to at the scrape interval (autoscaler.Backtest.
// LoadHistory) and holds each value for its step: the load the model
// replays is what the metric's query returned.
func storedLoad(ctx context.Context, cfg *config.Config, pc autoscaler.PolicyConfig, from, to string, scale float64, logger *slog.Logger) ([]float64, time.Time, error) {
	now := time.Now()
	bt := autoscaler.Backtest{Policy: pc, Step: time.Duration(cfg.Global.ScrapeInterval)}
	bt.Policy.Metrics = pc.Metrics[:1]
	var err error
	if bt.From, err = parseTime(from, now.Add(-time.Hour), now); err != nil {
		return nil, time.Time{}, fmt.Errorf("--from: %w", err)
	}
	if bt.To, err = parseTime(to, now, now); err != nil {
		return nil, time.Time{}, fmt.Errorf("--to: %w", err)
	}
	if !bt.To.After(bt.From) {
		return nil, time.Time{}, fmt.Errorf("--to (%s) must be after --from (%s)", bt.To.Format(time.RFC3339), bt.From.Format(time.RFC3339))
	}
	if bt.To.After(now) {
		return nil, time.Time{}, fmt.Errorf("--to (%s) is in the future: there is no history after now", bt.To.Format(time.RFC3339))
	}
	if err := bt.LoadHistory(ctx, cfg.Storage, cfg.Query, logger); err != nil {
		return nil, time.Time{}, err
	}
	pts, slack := bt.Metrics[0], 2*time.Duration(cfg.Global.ScrapeInterval)
	if first := pts[0].T; first.Sub(bt.From) > slack {
		return nil, time.Time{}, fmt.Errorf("--from (%s) is before the stored data, which starts at %s", bt.From.Format(time.RFC3339), first.Format(time.RFC3339))
	}
	if last := pts[len(pts)-1].T; bt.To.Sub(last) > slack {
		return nil, time.Time{}, fmt.Errorf("--to (%s) is after the stored data, which ends at %s", bt.To.Format(time.RFC3339), last.Format(time.RFC3339))
	}
	secs, at, err := bt.Load()
	for i := range secs {
		secs[i] *= scale
	}
	return secs, at, err
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
