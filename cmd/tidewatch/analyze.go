package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/tidewatch/tidewatch/autoscaler/analysis"
	"github.com/tidewatch/tidewatch/config"
)

// analyzeCommand reports capacity per instance, recommended settings and
// their cost from stored history (package analysis).
func analyzeCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("analyze", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "tidewatch.yml", "configuration file")
	from := fs.String("from", "", "start: RFC 3339, Unix seconds, or a duration before now (default 24h before --to)")
	to := fs.String("to", "", "end: as --from (default now)")
	output := fs.String("output", "table", "table, json or html")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || (*output != "table" && *output != "json" && *output != "html") {
		fmt.Fprintln(stderr, "usage: tidewatch analyze --config FILE [--from T --to T] [--output table|json|html]")
		return 2
	}
	logger := slog.New(slog.DiscardHandler)
	cfg, err := config.Load(*configFile, logger)
	if err != nil {
		fmt.Fprintf(stderr, "analyze: invalid configuration:\n%v\n", err)
		return 1
	}
	now := time.Now()
	end, err := analysis.ParseTime(*to, now, now)
	if err != nil {
		fmt.Fprintf(stderr, "analyze: --to: %v\n", err)
		return 2
	}
	start, err := analysis.ParseTime(*from, end.Add(-analysis.DefaultSpan), now)
	if err != nil {
		fmt.Fprintf(stderr, "analyze: --from: %v\n", err)
		return 2
	}
	src, closeStore, err := analysis.Open(cfg.Storage, cfg.Query, logger)
	if err != nil {
		fmt.Fprintf(stderr, "analyze: %v\n", err)
		return 1
	}
	defer closeStore()
	rep, err := analysis.Analyze(ctx, cfg.AnalysisInput(), src, start, end, logger)
	if err != nil {
		fmt.Fprintf(stderr, "analyze: %v\n", err)
		return 1
	}
	switch *output {
	case "json":
		err = rep.WriteJSON(stdout)
	case "html":
		err = rep.WriteHTML(stdout)
	default:
		err = rep.WriteTable(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "analyze: %v\n", err)
		return 1
	}
	return 0
}
