package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/tidewatch/tidewatch/app"
	"github.com/tidewatch/tidewatch/config"
	"github.com/tidewatch/tidewatch/internal/version"
)

func serveCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "tidewatch.yml", "configuration file")
	listen := fs.String("web.listen-address", "", "listen address; overrides web.listen_address")
	logLevel := fs.String("log.level", "info", "log level: debug, info, warn, error")
	logFormat := fs.String("log.format", "logfmt", "log format: logfmt or json")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "serve: unexpected arguments %q\n", fs.Args())
		return 2
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		fmt.Fprintf(stderr, "serve: %v\n", err)
		return 2
	}
	if !version.LabelsSafe() {
		logger.Warn("built without -tags slicelabels: a scrape target exposing a label over 16 MiB will crash the process; build with the Makefile", "labels", version.Labels)
	}
	flags := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { flags[f.Name] = f.Value.String() })

	cfg, err := config.Load(*configFile, logger)
	if err != nil {
		fmt.Fprintf(stderr, "serve: invalid configuration:\n%v\n", err)
		return 1
	}
	a, err := app.New(cfg, app.Options{Logger: logger, File: *configFile, ListenOverride: *listen, Flags: flags})
	if err != nil {
		logger.Error("start", "err", err)
		return 1
	}
	if err := a.Run(ctx, stdout); err != nil {
		logger.Error("tidewatch stopped with an error", "err", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log.level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "logfmt":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log.format: %q is neither logfmt nor json", format)
	}
}
