package app

import (
	"context"
	"errors"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql"

	"github.com/tidewatch/tidewatch/alerting"
	"github.com/tidewatch/tidewatch/autoscaler"
	"github.com/tidewatch/tidewatch/collector"
	"github.com/tidewatch/tidewatch/collector/probe"
	"github.com/tidewatch/tidewatch/config"
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
	add := func(c *component, err error) error {
		if err == nil {
			*comps = append(*comps, c)
		}
		return err
	}
	if err := add(a.buildStore(cfg, reg)); err != nil {
		return err
	}
	if err := add(a.buildCollector(reg)); err != nil {
		return err
	}
	if err := add(a.buildProbes(reg)); err != nil {
		return err
	}
	engine := store.NewEngine(cfg.Query, a.logger, reg)
	extURL, err := web.ExternalURL(cfg.Web)
	if err != nil {
		a.logger.Warn("web.external_url is not a URL; using the default", "err", err)
	}
	if err := add(a.buildAlerting(cfg, reg, engine, extURL)); err != nil {
		return err
	}
	if err := add(a.buildAutoscaler(engine, extURL)); err != nil {
		return err
	}
	if err := add(a.buildWeb(cfg, reg, engine)); err != nil {
		return err
	}
	byName := map[string]lifecycle.Component[*config.Config]{}
	for _, c := range *comps {
		byName[c.Name()] = c
	}
	*comps = nil
	for _, n := range []string{"storage", "web", "autoscaler", "alerting", "probes", "collector"} {
		*comps = append(*comps, byName[n])
	}
	return nil
}

func (a *App) buildStore(cfg *config.Config, reg *prometheus.Registry) (*component, error) {
	st, err := store.Open(cfg.Storage, a.logger, reg, a.set)
	if err != nil {
		return nil, err
	}
	a.store = st
	return &component{ID: "storage", CloseFunc: func() error {
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		defer cancel()
		return errors.Join(st.Flush(ctx), st.Close())
	}}, nil
}

func (a *App) buildCollector(reg *prometheus.Registry) (*component, error) {
	var err error
	if a.collector, err = collector.New(collector.Options{
		Logger: a.logger, Registerer: reg, Metrics: a.set,
		Appendable: store.Instrument(a.store, store.NewAppendMetrics(a.set, "scrape")),
	}); err != nil {
		return nil, err
	}
	return &component{ID: "collector",
		CheckFunc: func(c *config.Config) error {
			sharded, err := collector.ShardConfig(c.Prom, c.Collector.Shard)
			if err != nil {
				return err
			}
			return a.collector.Check(sharded)
		},
		ApplyFunc: func(c *config.Config) error {
			sharded, err := collector.ShardConfig(c.Prom, c.Collector.Shard)
			if err != nil {
				return err
			}
			return a.collector.Apply(sharded)
		},
		RunFunc:   a.collector.Run,
		CloseFunc: func() error { a.collector.Close(); return nil },
	}, nil
}

func (a *App) buildProbes(reg *prometheus.Registry) (*component, error) {
	var err error
	if a.probes, err = probe.New(probe.Options{
		Logger: a.logger, Registerer: reg, SDMetrics: a.collector.SDMetrics(), Metrics: a.set,
		Appendable: store.Instrument(a.store, store.NewAppendMetrics(a.set, "probe")),
	}); err != nil {
		return nil, err
	}
	return &component{ID: "probes",
		CheckFunc: func(c *config.Config) error { return a.probes.Check(c.ProbeConfigs, c.Collector.Shard) },
		ApplyFunc: func(c *config.Config) error { return a.probes.Apply(c.ProbeConfigs, c.Collector.Shard) },
		RunFunc:   a.probes.Run,
		CloseFunc: a.probes.Close,
	}, nil
}

func (a *App) buildAlerting(cfg *config.Config, reg *prometheus.Registry, engine *promql.Engine, extURL *url.URL) (*component, error) {
	notifyDir, err := prepareNotificationsDir(cfg, a.logger)
	if err != nil {
		return nil, err
	}
	if a.alerting, err = alerting.New(alerting.Options{
		Logger: a.logger, Registerer: reg, Metrics: a.set, Engine: engine, Queryable: a.store, Appendable: a.store,
		ExternalURL: extURL, DataDir: notifyDir, NotificationsRetention: time.Duration(cfg.Notifications.Retention),
	}); err != nil {
		return nil, err
	}
	return &component{ID: "alerting",
		CheckFunc: func(c *config.Config) error { return a.alerting.Check(c.Prom, c.Notifications) },
		ApplyFunc: func(c *config.Config) error { return a.alerting.Apply(c.Prom, c.Notifications) },
		RunFunc:   a.alerting.Run,
		CloseFunc: a.alerting.Close,
	}, nil
}

func (a *App) buildAutoscaler(engine *promql.Engine, extURL *url.URL) (*component, error) {
	var err error
	if a.autoscaler, err = autoscaler.New(autoscaler.Options{
		Logger: a.logger, Metrics: a.set, Engine: engine, Queryable: a.store,
		Appendable: store.Instrument(a.store, store.NewAppendMetrics(a.set, "autoscaler")),
		Events:     a.alerting, ExternalURL: extURL,
	}); err != nil {
		return nil, err
	}
	return &component{ID: "autoscaler",
		CheckFunc: func(c *config.Config) error { return a.autoscaler.Check(c.Autoscaling) },
		ApplyFunc: func(c *config.Config) error { return a.autoscaler.ApplyConfig(c.Autoscaling) },
		RunFunc:   a.autoscaler.Run,
		CloseFunc: a.autoscaler.Close,
	}, nil
}

func (a *App) buildWeb(cfg *config.Config, reg *prometheus.Registry, engine *promql.Engine) (*component, error) {
	wo, err := a.webOptions(cfg, reg, engine, a.store)
	if err != nil {
		return nil, err
	}
	if a.web, err = web.New(wo); err != nil {
		return nil, err
	}
	return &component{ID: "web",
		CheckFunc: func(c *config.Config) error { return web.CheckConfig(c.Web) },
		ApplyFunc: func(c *config.Config) error { return a.web.ApplyConfig(c.Web) },
		RunFunc:   func(ctx context.Context) error { return a.web.Run(ctx, a.listener) },
		CloseFunc: func() error {
			if a.listener != nil {
				_ = a.listener.Close() // already closed once Run has served
			}
			return nil
		},
	}, nil
}
