package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/storage"
	apiv1 "github.com/prometheus/prometheus/web/api/v1"

	"github.com/tidewatch/tidewatch/alerting"
	"github.com/tidewatch/tidewatch/autoscaler"
	"github.com/tidewatch/tidewatch/collector"
	"github.com/tidewatch/tidewatch/collector/probe"
	"github.com/tidewatch/tidewatch/internal/config"
	"github.com/tidewatch/tidewatch/store"
	"github.com/tidewatch/tidewatch/web"
	"github.com/tidewatch/tidewatch/web/ui"
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
	flags := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { flags[f.Name] = f.Value.String() })

	cfg, err := config.Load(*configFile, logger)
	if err != nil {
		fmt.Fprintf(stderr, "serve: invalid configuration:\n%v\n", err)
		return 1
	}
	if *listen != "" {
		cfg.Web.ListenAddress = *listen
	}
	s, err := newServer(cfg, *configFile, *listen, flags, logger)
	if err != nil {
		logger.Error("start", "err", err)
		return 1
	}
	if err := s.run(ctx, stdout); err != nil {
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

// server is one running Tidewatch: the store, the collector and the web
// server, with configuration reload.
type server struct {
	logger         *slog.Logger
	file           string
	listenOverride string
	set            *metrics.Set

	mtx sync.Mutex // serialises reloads and guards cfg
	cfg *config.Config

	store     store.Store
	collector *collector.Collector
	probes    *probe.Manager
	alerting  *alerting.Alerting
	web       *web.Server
	ready     atomic.Bool

	// autoscaler evaluates the scaling policies (autoscaling section).
	autoscaler *autoscaler.Manager

	reloadOK      *metrics.Gauge
	reloadSuccess *metrics.Gauge
	lastReloadOK  atomic.Bool
	lastConfigAt  atomic.Int64 // unix ms of the last successful load
}

func newServer(cfg *config.Config, file, listenOverride string, flags map[string]string, logger *slog.Logger) (*server, error) {
	set := metrics.NewSet()
	reg := prometheus.NewRegistry()
	s := &server{
		logger: logger, file: file, listenOverride: listenOverride, set: set, cfg: cfg,
		reloadOK:      set.NewGauge("tidewatch_config_last_reload_successful", nil),
		reloadSuccess: set.NewGauge("tidewatch_config_last_reload_success_timestamp_seconds", nil),
	}
	st, err := store.Open(cfg.Storage, logger, reg, set)
	if err != nil {
		return nil, err
	}
	s.store = st
	queryable, ok := st.(storage.SampleAndChunkQueryable)
	if !ok {
		st.Close()
		return nil, fmt.Errorf("storage backend %T cannot serve chunk queries", st)
	}

	s.collector, err = collector.New(collector.Options{
		Logger:     logger,
		Registerer: reg,
		Metrics:    set,
		Appendable: store.Instrument(st, store.NewAppendMetrics(set, "scrape")),
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	if err := s.collector.ApplyShardedConfig(cfg.Prom, cfg.Collector.Shard); err != nil {
		st.Close()
		return nil, err
	}
	s.probes, err = probe.New(probe.Options{
		Logger:     logger,
		Registerer: reg,
		SDMetrics:  s.collector.SDMetrics(),
		Metrics:    set,
		Appendable: store.Instrument(st, store.NewAppendMetrics(set, "probe")),
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	if err := s.probes.ApplyConfig(cfg.ProbeConfigs, cfg.Collector.Shard); err != nil {
		st.Close()
		return nil, err
	}

	engine := store.NewEngine(cfg.Query, logger, reg)
	extURL, err := web.ExternalURL(cfg.Web)
	if err != nil {
		logger.Warn("web.external_url is not a URL; using the default", "err", err)
	}
	s.alerting, err = alerting.New(alerting.Options{
		Logger:                 logger,
		Registerer:             reg,
		Metrics:                set,
		Engine:                 engine,
		Queryable:              st,
		Appendable:             st,
		ExternalURL:            extURL,
		DataDir:                notificationsDir(cfg),
		NotificationsRetention: time.Duration(cfg.Notifications.Retention),
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	if err := s.alerting.ApplyConfig(cfg.Prom, cfg.Notifications); err != nil {
		s.alerting.Close()
		st.Close()
		return nil, err
	}
	s.autoscaler, err = autoscaler.New(autoscaler.Options{
		Logger:      logger,
		Metrics:     set,
		Engine:      engine,
		Queryable:   st,
		Appendable:  store.Instrument(st, store.NewAppendMetrics(set, "autoscaler")),
		Events:      s.alerting,
		ExternalURL: extURL,
	})
	if err == nil {
		err = s.autoscaler.ApplyConfig(cfg.Autoscaling)
	}
	if err != nil {
		s.alerting.Close()
		st.Close()
		return nil, err
	}

	wo := web.Options{
		Logger:        logger,
		Config:        cfg.Web,
		Metrics:       set,
		Gatherer:      reg,
		Registerer:    reg,
		Engine:        engine,
		Queryable:     queryable,
		RemoteWrite:   store.Instrument(st, store.NewAppendMetrics(set, "remote_write")),
		Targets:       s.collector.Targets(),
		PromConfig:    s.promConfig,
		Flags:         flags,
		LookbackDelta: time.Duration(cfg.Query.LookbackDelta),
		QueryTimeout:  time.Duration(cfg.Query.Timeout),
		Reload:        s.reload,
		ReloadStatus:  s.reloadStatus,
		Ready:         s.readiness,
		Rules:         s.alerting.Rules(),
		Alertmanagers: s.alerting.Alertmanagers(),
		Routes:        []func(gin.IRouter){s.alerting.Routes, s.probes.Routes, s.autoscaler.Routes},
	}
	statusUI, err := ui.New(ui.Options{
		Logger: logger, Engine: engine, Queryable: st, Targets: s.collector.Targets(),
		Probes: s.probes, Rules: s.alerting.Rules(), Autoscaler: s.autoscaler,
	})
	if err != nil {
		s.autoscaler.Close()
		s.alerting.Close()
		st.Close()
		return nil, err
	}
	wo.Routes = append(wo.Routes, statusUI.Routes)
	if eq, ok := st.(storage.ExemplarQueryable); ok {
		wo.Exemplars = eq
	}
	if ts, ok := st.(apiv1.TSDBAdminStats); ok {
		wo.TSDB = ts
	}
	if cfg.Storage.Type == store.TypeEmbedded {
		wo.RetentionDescription = cfg.Storage.Embedded.Retention.String()
	}
	s.web, err = web.New(wo)
	if err != nil {
		s.autoscaler.Close()
		s.alerting.Close()
		st.Close()
		return nil, err
	}
	s.recordReload(true)
	return s, nil
}

func (s *server) recordReload(ok bool) {
	s.lastReloadOK.Store(ok)
	if !ok {
		s.reloadOK.Set(0)
		return
	}
	now := time.Now()
	s.lastConfigAt.Store(now.UnixMilli())
	s.reloadOK.Set(1)
	s.reloadSuccess.Set(float64(now.Unix()))
}

func (s *server) reloadStatus() (bool, time.Time) {
	return s.lastReloadOK.Load(), time.UnixMilli(s.lastConfigAt.Load())
}

func (s *server) promConfig() promconfig.Config {
	s.mtx.Lock()
	defer s.mtx.Unlock()
	return *s.cfg.Prom
}

func (s *server) readiness() error {
	if !s.ready.Load() {
		return errors.New("starting or stopping")
	}
	if err := s.store.Health(); err != nil {
		return fmt.Errorf("store degraded: %w", err)
	}
	return nil
}

// run serves until ctx ends, then stops scraping, stops serving, flushes and
// closes the store, in that order, so that no acknowledged sample is lost.
func (s *server) run(ctx context.Context, stdout io.Writer) error {
	addr := s.cfg.Web.ListenAddress
	l, err := net.Listen("tcp", addr)
	if err != nil {
		s.store.Close()
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	scheme := "http"
	if s.cfg.Web.TLSServerConfig.CertFile != "" {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "Tidewatch is serving on %s://%s (config %s)\n", scheme, displayAddr(l.Addr()), s.file)

	webCtx, stopWeb := context.WithCancel(context.Background())
	defer stopWeb()
	webErr := make(chan error, 1)
	go func() { webErr <- s.web.Run(webCtx, l) }()

	collectCtx, stopCollect := context.WithCancel(context.Background())
	defer stopCollect()
	collectDone := make(chan error, 1)
	go func() { collectDone <- s.collector.Run(collectCtx) }()
	probeDone := make(chan error, 1)
	go func() { probeDone <- s.probes.Run(collectCtx) }()

	alertCtx, stopAlerting := context.WithCancel(context.Background())
	defer stopAlerting()
	alertDone := make(chan error, 1)
	go func() { alertDone <- s.alerting.Run(alertCtx) }()

	scaleCtx, stopScaling := context.WithCancel(context.Background())
	defer stopScaling()
	scaleDone := make(chan error, 1)
	go func() { scaleDone <- s.autoscaler.Run(scaleCtx) }()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	s.ready.Store(true)
	s.logger.Info("tidewatch started", "listen", l.Addr().String(), "storage", s.cfg.Storage.Type)

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			s.logger.Info("shutting down")
			break loop
		case <-hup:
			if err := s.reload(); err != nil {
				s.logger.Error("reload failed; the previous configuration keeps running", "err", err)
			}
		case err := <-webErr:
			runErr = fmt.Errorf("web server: %w", err)
			webErr <- nil
			break loop
		case err := <-collectDone:
			runErr = fmt.Errorf("collector stopped: %w", err)
			collectDone <- nil
			break loop
		case err := <-alertDone:
			runErr = fmt.Errorf("alerting stopped: %w", err)
			alertDone <- nil
			break loop
		}
	}
	s.ready.Store(false)
	stopCollect()
	if err := <-collectDone; err != nil && runErr == nil {
		runErr = err
	}
	if err := <-probeDone; err != nil && runErr == nil {
		runErr = err
	}
	// Rules write to the store: stop them before it is flushed.
	stopAlerting()
	if err := <-alertDone; err != nil && runErr == nil {
		runErr = err
	}
	// The autoscaler writes its series to the store too; Close stops the
	// process backend's instances.
	stopScaling()
	if err := <-scaleDone; err != nil && runErr == nil {
		runErr = err
	}
	s.autoscaler.Close()
	stopWeb()
	if err := <-webErr; err != nil && runErr == nil {
		runErr = err
	}
	flushCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.store.Flush(flushCtx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("flush store: %w", err))
	}
	if err := s.store.Close(); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("close store: %w", err))
	}
	s.logger.Info("tidewatch stopped")
	return runErr
}

// reload re-reads the configuration file and applies it. On error the
// running configuration is kept.
func (s *server) reload() (err error) {
	s.mtx.Lock()
	defer s.mtx.Unlock()
	defer func() { s.recordReload(err == nil) }()
	cfg, err := config.Load(s.file, s.logger)
	if err != nil {
		return err
	}
	if s.listenOverride != "" {
		cfg.Web.ListenAddress = s.listenOverride
	}
	for name, changed := range map[string]bool{
		"storage":                !reflect.DeepEqual(cfg.Storage, s.cfg.Storage),
		"query":                  !reflect.DeepEqual(cfg.Query, s.cfg.Query),
		"web.listen_address":     cfg.Web.ListenAddress != s.cfg.Web.ListenAddress,
		"web.tls_server_config":  cfg.Web.TLSServerConfig != s.cfg.Web.TLSServerConfig,
		"notifications.data_dir": notificationsDir(cfg) != notificationsDir(s.cfg),
	} {
		if changed {
			s.logger.Warn("configuration change needs a restart to take effect", "section", name)
		}
	}
	// Check every part before applying any, so that a failed reload leaves
	// the running configuration whole.
	if err := web.CheckConfig(cfg.Web); err != nil {
		return err
	}
	if err := s.alerting.ApplyConfig(cfg.Prom, cfg.Notifications); err != nil {
		return err
	}
	if err := s.collector.ApplyShardedConfig(cfg.Prom, cfg.Collector.Shard); err != nil {
		return err
	}
	if err := s.probes.ApplyConfig(cfg.ProbeConfigs, cfg.Collector.Shard); err != nil {
		return err
	}
	if err := s.autoscaler.ApplyConfig(cfg.Autoscaling); err != nil {
		return err
	}
	if err := s.web.ApplyConfig(cfg.Web); err != nil {
		return err
	}
	s.cfg = cfg
	s.logger.Info("configuration reloaded", "file", s.file)
	return nil
}

// displayAddr turns a wildcard listen address into one a user can open.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if host == "" || host == "::" || host == "0.0.0.0" || strings.HasPrefix(host, "[::]") {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// notificationsDir is where the built-in notifier keeps silences and its
// notification log: notifications.data_dir, else "alerting" in the embedded
// store's directory, else data/alerting.
func notificationsDir(cfg *config.Config) string {
	if cfg.Notifications.DataDir != "" {
		return cfg.Notifications.DataDir
	}
	if cfg.Storage.Type == store.TypeEmbedded && cfg.Storage.Embedded.Path != "" {
		return filepath.Join(cfg.Storage.Embedded.Path, "alerting")
	}
	return filepath.Join("data", "alerting")
}
