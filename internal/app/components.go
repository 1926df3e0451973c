package app

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidewatch/tidewatch/alerting"
	"github.com/tidewatch/tidewatch/autoscaler"
	"github.com/tidewatch/tidewatch/collector"
	"github.com/tidewatch/tidewatch/collector/probe"
	"github.com/tidewatch/tidewatch/internal/config"
	"github.com/tidewatch/tidewatch/internal/lifecycle"
	"github.com/tidewatch/tidewatch/store"
	"github.com/tidewatch/tidewatch/web"
)

type component = lifecycle.Func[*config.Config]

// flushTimeout bounds how long closing waits for the store to flush.
const flushTimeout = time.Minute

// build creates every component, appending each to comps as soon as it
// exists (so that a later failure releases it), and finally orders comps for
// the lifecycle: store, web, autoscaler, alerting, probes, collector. They
// stop in reverse: scraping and probing first, the store last.
func (a *App) build(cfg *config.Config, reg *prometheus.Registry, comps *[]lifecycle.Component[*config.Config]) error {
	logger := a.logger
	st, err := store.Open(cfg.Storage, logger, reg, a.set)
	if err != nil {
		return err
	}
	a.store = st
	storeC := &component{ID: "storage", CloseFunc: func() error {
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		defer cancel()
		return errors.Join(st.Flush(ctx), st.Close())
	}}
	*comps = append(*comps, storeC)

	if a.collector, err = collector.New(collector.Options{
		Logger: logger, Registerer: reg, Metrics: a.set,
		Appendable: store.Instrument(st, store.NewAppendMetrics(a.set, "scrape")),
	}); err != nil {
		return err
	}
	collectorC := &component{ID: "collector",
		CheckFunc: func(c *config.Config) error {
			sharded, err := collector.ShardConfig(c.Prom, c.Collector.Shard)
			if err != nil {
				return err
			}
			return a.collector.Check(sharded)
		},
		ApplyFunc: func(c *config.Config) error { return a.collector.ApplyShardedConfig(c.Prom, c.Collector.Shard) },
		RunFunc:   a.collector.Run,
		CloseFunc: func() error { a.collector.Close(); return nil },
	}
	*comps = append(*comps, collectorC)

	if a.probes, err = probe.New(probe.Options{
		Logger: logger, Registerer: reg, SDMetrics: a.collector.SDMetrics(), Metrics: a.set,
		Appendable: store.Instrument(st, store.NewAppendMetrics(a.set, "probe")),
	}); err != nil {
		return err
	}
	probesC := &component{ID: "probes",
		CheckFunc: func(c *config.Config) error { return a.probes.Check(c.ProbeConfigs, c.Collector.Shard) },
		ApplyFunc: func(c *config.Config) error { return a.probes.ApplyConfig(c.ProbeConfigs, c.Collector.Shard) },
		RunFunc:   a.probes.Run,
		CloseFunc: a.probes.Close,
	}
	*comps = append(*comps, probesC)

	engine := store.NewEngine(cfg.Query, logger, reg)
	extURL, err := web.ExternalURL(cfg.Web)
	if err != nil {
		logger.Warn("web.external_url is not a URL; using the default", "err", err)
	}
	notifyDir, err := prepareNotificationsDir(cfg, logger)
	if err != nil {
		return err
	}
	if a.alerting, err = alerting.New(alerting.Options{
		Logger: logger, Registerer: reg, Metrics: a.set, Engine: engine, Queryable: st, Appendable: st,
		ExternalURL: extURL, DataDir: notifyDir, NotificationsRetention: time.Duration(cfg.Notifications.Retention),
	}); err != nil {
		return err
	}
	alertingC := &component{ID: "alerting",
		CheckFunc: func(c *config.Config) error { return a.alerting.Check(c.Prom, c.Notifications) },
		ApplyFunc: func(c *config.Config) error { return a.alerting.ApplyConfig(c.Prom, c.Notifications) },
		RunFunc:   a.alerting.Run,
		CloseFunc: a.alerting.Close,
	}
	*comps = append(*comps, alertingC)

	if a.autoscaler, err = autoscaler.New(autoscaler.Options{
		Logger: logger, Metrics: a.set, Engine: engine, Queryable: st,
		Appendable:   store.Instrument(st, store.NewAppendMetrics(a.set, "autoscaler")),
		OnScaleEvent: func(e autoscaler.ScaleEvent) { a.alerting.SendEvent(scaleEvent(e, extURL)) },
	}); err != nil {
		return err
	}
	autoscalerC := &component{ID: "autoscaler",
		CheckFunc: func(c *config.Config) error { return c.Autoscaling.Validate() },
		ApplyFunc: func(c *config.Config) error { return a.autoscaler.ApplyConfig(c.Autoscaling) },
		RunFunc:   a.autoscaler.Run,
		CloseFunc: a.autoscaler.Close,
	}
	*comps = append(*comps, autoscalerC)

	wo, err := a.webOptions(cfg, reg, engine, st)
	if err != nil {
		return err
	}
	if a.web, err = web.New(wo); err != nil {
		return err
	}
	webC := &component{ID: "web",
		CheckFunc: func(c *config.Config) error { return web.CheckConfig(c.Web) },
		ApplyFunc: func(c *config.Config) error { return a.web.ApplyConfig(c.Web) },
		RunFunc:   func(ctx context.Context) error { return a.web.Run(ctx, a.listener) },
		CloseFunc: func() error {
			if a.listener != nil {
				_ = a.listener.Close() // already closed once Run has served
			}
			return nil
		},
	}
	*comps = []lifecycle.Component[*config.Config]{storeC, webC, autoscalerC, alertingC, probesC, collectorC}
	return nil
}
