// Package app assembles one Tidewatch process from its configuration: the
// store, the web server with every feature's routes, the receivers, the
// autoscaler, alerting, probes and the collector, run as one
// lifecycle.Group. The command line (cmd/tidewatch) only parses flags and
// calls New and Run.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
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
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	apiv1 "github.com/prometheus/prometheus/web/api/v1"

	"github.com/tidewatch/tidewatch/alerting"
	"github.com/tidewatch/tidewatch/autoscaler"
	"github.com/tidewatch/tidewatch/autoscaler/analysis"
	"github.com/tidewatch/tidewatch/collector"
	"github.com/tidewatch/tidewatch/collector/probe"
	"github.com/tidewatch/tidewatch/collector/receive"
	"github.com/tidewatch/tidewatch/config"
	"github.com/tidewatch/tidewatch/internal/lifecycle"
	"github.com/tidewatch/tidewatch/store"
	"github.com/tidewatch/tidewatch/web"
	"github.com/tidewatch/tidewatch/web/ui"
)

// Options are what the command line gives a process.
type Options struct {
	Logger *slog.Logger
	// File is the configuration file, re-read on reload.
	File string
	// ListenOverride (--web.listen-address) wins over web.listen_address.
	ListenOverride string
	// Flags are shown by /api/v1/status/flags.
	Flags map[string]string
}

// App is one running Tidewatch.
type App struct {
	o      Options
	logger *slog.Logger
	set    *metrics.Set

	mtx sync.Mutex // guards cfg
	cfg *config.Config

	store      store.Store
	collector  *collector.Collector
	probes     *probe.Manager
	alerting   *alerting.Alerting
	autoscaler *autoscaler.Manager
	web        *web.Server
	listener   net.Listener
	group      *lifecycle.Group[*config.Config]
	ready      atomic.Bool

	reloadOK      *metrics.Gauge
	reloadSuccess *metrics.Gauge
	lastReloadOK  atomic.Bool
	lastConfigAt  atomic.Int64 // unix ms of the last successful load
}

// New builds every component for cfg and applies it; it starts nothing but
// the listener. On error everything built so far is released.
func New(cfg *config.Config, o Options) (_ *App, err error) {
	if o.ListenOverride != "" {
		cfg.Web.ListenAddress = o.ListenOverride
	}
	set := metrics.NewSet()
	a := &App{
		o: o, logger: o.Logger, set: set, cfg: cfg,
		reloadOK:      set.NewGauge("tidewatch_config_last_reload_successful", nil),
		reloadSuccess: set.NewGauge("tidewatch_config_last_reload_success_timestamp_seconds", nil),
	}
	var comps []lifecycle.Component[*config.Config]
	// On a failure part-way, release what was built, newest first.
	defer func() {
		if err != nil {
			for i := len(comps) - 1; i >= 0; i-- {
				_ = comps[i].Close()
			}
		}
	}()
	reg := prometheus.NewRegistry()
	if err := a.build(cfg, reg, &comps); err != nil {
		return nil, err
	}
	a.group = lifecycle.New(o.Logger, comps)
	if err := a.group.Start(cfg); err != nil {
		comps = nil // Start closed them
		return nil, err
	}
	l, err := net.Listen("tcp", cfg.Web.ListenAddress)
	if err != nil {
		_ = a.group.Close()
		comps = nil
		return nil, fmt.Errorf("listen on %s: %w", cfg.Web.ListenAddress, err)
	}
	a.listener = l
	a.recordReload(true)
	return a, nil
}

// Autoscaler is the running autoscaler (the demo reports its decisions).
func (a *App) Autoscaler() *autoscaler.Manager { return a.autoscaler }

// Run serves until ctx ends or a component stops, reloading on SIGHUP. It
// then stops scraping and probing, rules, the autoscaler and the web server,
// and flushes and closes the store, in that order, so that no acknowledged
// sample is lost.
func (a *App) Run(ctx context.Context, stdout io.Writer) error {
	scheme := "http"
	if a.cfg.Web.TLSServerConfig.CertFile != "" {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "Tidewatch is serving on %s://%s (config %s)\n", scheme, displayAddr(a.listener.Addr()), a.o.File)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for {
			select {
			case <-runCtx.Done():
				return
			case <-hup:
				if err := a.Reload(); err != nil {
					a.logger.Error("reload failed; the previous configuration keeps running", "err", err)
				}
			}
		}
	}()
	err := a.group.Run(runCtx, func(up bool) {
		a.ready.Store(up)
		if up {
			a.logger.Info("tidewatch started", "listen", a.listener.Addr().String(), "storage", a.cfg.Storage.Type)
		} else {
			a.logger.Info("shutting down")
		}
	})
	a.logger.Info("tidewatch stopped")
	return err
}

// Reload re-reads the configuration file and applies it in two phases:
// every component checks the new configuration, and none applies it unless
// all pass, so a failed reload leaves the running configuration whole.
func (a *App) Reload() (err error) {
	defer func() { a.recordReload(err == nil) }()
	cfg, err := config.Load(a.o.File, a.logger)
	if err != nil {
		return err
	}
	if a.o.ListenOverride != "" {
		cfg.Web.ListenAddress = a.o.ListenOverride
	}
	a.mtx.Lock()
	old := a.cfg
	a.mtx.Unlock()
	for name, changed := range map[string]bool{
		"storage":                !reflect.DeepEqual(cfg.Storage, old.Storage),
		"query":                  !reflect.DeepEqual(cfg.Query, old.Query),
		"web.listen_address":     cfg.Web.ListenAddress != old.Web.ListenAddress,
		"web.tls_server_config":  cfg.Web.TLSServerConfig != old.Web.TLSServerConfig,
		"notifications.data_dir": NotificationsDir(cfg) != NotificationsDir(old),
	} {
		if changed {
			a.logger.Warn("configuration change needs a restart to take effect", "section", name)
		}
	}
	if err := a.group.Reload(cfg); err != nil {
		return err
	}
	a.mtx.Lock()
	a.cfg = cfg
	a.mtx.Unlock()
	a.logger.Info("configuration reloaded", "file", a.o.File)
	return nil
}

func (a *App) recordReload(ok bool) {
	a.lastReloadOK.Store(ok)
	if !ok {
		a.reloadOK.Set(0)
		return
	}
	now := time.Now()
	a.lastConfigAt.Store(now.UnixMilli())
	a.reloadOK.Set(1)
	a.reloadSuccess.Set(float64(now.Unix()))
}

func (a *App) reloadStatus() (bool, time.Time) {
	return a.lastReloadOK.Load(), time.UnixMilli(a.lastConfigAt.Load())
}

func (a *App) promConfig() promconfig.Config {
	a.mtx.Lock()
	defer a.mtx.Unlock()
	return *a.cfg.Prom
}

// readiness is nil while every component runs and the store takes writes.
func (a *App) readiness() error {
	if !a.ready.Load() {
		return errors.New("starting or stopping")
	}
	if err := a.store.Health(); err != nil {
		return fmt.Errorf("store degraded: %w", err)
	}
	return nil
}

// webOptions are the web server's dependencies, routes included.
func (a *App) webOptions(cfg *config.Config, reg *prometheus.Registry, engine *promql.Engine, st store.Store) (web.Options, error) {
	queryable, ok := st.(storage.SampleAndChunkQueryable)
	if !ok {
		return web.Options{}, fmt.Errorf("storage backend %T cannot serve chunk queries", st)
	}
	rw, err := receive.NewRemoteWrite(receive.Options{
		Logger: a.logger, Registerer: reg, Metrics: a.set,
		Appendable: store.Instrument(st, store.NewAppendMetrics(a.set, "remote_write")),
		Ready:      a.readiness,
	})
	if err != nil {
		return web.Options{}, err
	}
	limited := store.NewLimitedEngine(engine, cfg.Query.WithDefaults())
	capacity := analysis.NewService(analysis.Source{Engine: limited, Queryable: st}, func() analysis.Input {
		a.mtx.Lock()
		defer a.mtx.Unlock()
		return a.cfg.AnalysisInput()
	}, a.logger)
	statusUI, err := ui.New(ui.Options{
		Logger: a.logger, Engine: limited, Queryable: st, Targets: a.collector.Targets(),
		Probes: a.probes, Rules: a.alerting.Rules(), Autoscaler: a.autoscaler, Analysis: capacity,
	})
	if err != nil {
		return web.Options{}, err
	}
	wo := web.Options{
		Logger: a.logger, Config: cfg.Web, Metrics: a.set, Gatherer: reg, Registerer: reg,
		Engine: engine, Query: cfg.Query, Queryable: queryable, Targets: a.collector.Targets(),
		PromConfig: a.promConfig, Flags: a.o.Flags,
		LookbackDelta: time.Duration(cfg.Query.LookbackDelta), QueryTimeout: time.Duration(cfg.Query.Timeout),
		Reload: a.Reload, ReloadStatus: a.reloadStatus, Ready: a.readiness,
		Rules: a.alerting.Rules(), Alertmanagers: a.alerting.Alertmanagers(),
		Routes: []func(gin.IRouter){rw.Routes, a.alerting.Routes, a.probes.Routes, a.autoscaler.Routes, capacity.Routes, statusUI.Routes},
	}
	if eq, ok := st.(storage.ExemplarQueryable); ok {
		wo.Exemplars = eq
	}
	if ts, ok := st.(apiv1.TSDBAdminStats); ok {
		wo.TSDB = ts
	}
	if cfg.Storage.Type == store.TypeEmbedded {
		wo.RetentionDescription = cfg.Storage.Embedded.Retention.String()
	}
	return wo, nil
}

// displayAddr turns a wildcard listen address into one a user can open.
func displayAddr(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if host == "" || host == "::" || host == "0.0.0.0" || strings.HasPrefix(host, "[::]") {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
