package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/alertmanager/alert"
	"github.com/prometheus/client_golang/prometheus"
	config_util "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/notifier"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	apiv1 "github.com/prometheus/prometheus/web/api/v1"

	"github.com/tidewatch/tidewatch/alerting/notify"
	"github.com/tidewatch/tidewatch/store"
)

// Prometheus' command-line defaults for alert state and delivery.
const (
	// OutageTolerance is how long Tidewatch may have been down for pending
	// and firing alerts to be restored with their "for" progress.
	OutageTolerance = time.Hour
	// ForGracePeriod is the minimum "for" left to an alert after a restore.
	ForGracePeriod = 10 * time.Minute
	// ResendDelay is how often a firing alert is re-sent.
	ResendDelay = time.Minute
	// NotificationQueueCapacity is the queue of alerts towards Alertmanagers.
	NotificationQueueCapacity = 10000
)

// Options are the dependencies of the alerting component.
type Options struct {
	Logger *slog.Logger
	// Registerer receives the libraries' metrics: prometheus_rule_*,
	// prometheus_notifications_*, prometheus_sd_* (name="notify") and
	// alertmanager_*.
	Registerer prometheus.Registerer
	// Metrics receives Tidewatch's rule and notification metrics.
	Metrics *metrics.Set
	Engine  promql.QueryEngine
	// Queryable is read by rules and by the restore of alert state.
	Queryable storage.Queryable
	// Appendable receives recording rule results, ALERTS and
	// ALERTS_FOR_STATE; appends are counted as source="rules".
	Appendable storage.AppendableV2
	// ExternalURL is Tidewatch's URL: generator URLs, $externalURL in
	// templates, .ExternalURL in notification templates.
	ExternalURL *url.URL
	// DataDir holds the built-in notifier's silences and notification log.
	DataDir string
	// NotificationsRetention of expired silences and log entries; 0: default.
	NotificationsRetention time.Duration
}

// Alerting evaluates rule files, sends the alerts to the configured
// Alertmanagers and to the built-in notifier. New starts nothing; Run
// evaluates and delivers until its context ends.
type Alerting struct {
	logger  *slog.Logger
	o       Options
	metrics *ruleMetrics

	rules     *rules.Manager
	rulesCtx  context.Context
	stopRules context.CancelFunc
	notifier  *notifier.Manager
	discovery *discovery.Manager
	sdMetrics *discovery.SDMetrics
	stopDisc  context.CancelFunc
	builtin   *notify.Notifier

	extLabels atomic.Pointer[labels.Labels]

	mtx       sync.Mutex // serialises ApplyConfig
	closeOnce sync.Once
}

// New builds the rule manager, the Alertmanager notifier and the built-in
// notifier (loading its silences and notification log).
func New(o Options) (*Alerting, error) {
	if o.Logger == nil || o.Registerer == nil || o.Metrics == nil || o.Engine == nil || o.Queryable == nil || o.Appendable == nil || o.DataDir == "" || o.ExternalURL == nil {
		return nil, errors.New("alerting: logger, registerer, metrics, engine, queryable, appendable, data dir and external URL are required")
	}
	a := &Alerting{logger: o.Logger.With("component", "alerting"), o: o, metrics: newRuleMetrics(o.Metrics)}
	empty := labels.EmptyLabels()
	a.extLabels.Store(&empty)

	builtin, err := notify.New(notify.Options{
		Logger:      o.Logger,
		Registerer:  o.Registerer,
		Metrics:     o.Metrics,
		DataDir:     o.DataDir,
		Retention:   o.NotificationsRetention,
		ExternalURL: o.ExternalURL,
	})
	if err != nil {
		return nil, err
	}
	a.builtin = builtin

	a.notifier = notifier.NewManager(&notifier.Options{
		QueueCapacity:   NotificationQueueCapacity,
		DrainOnShutdown: true,
		Registerer:      o.Registerer,
	}, model.UTF8Validation, o.Logger.With("component", "notifier"))

	// The service-discovery mechanisms' own metrics are registered once, by
	// the collector; these go to a registry nobody reads.
	sdMetrics, err := discovery.CreateAndRegisterSDMetrics(prometheus.NewRegistry())
	if err != nil {
		builtin.Close()
		return nil, fmt.Errorf("create notify discovery metrics: %w", err)
	}
	discCtx, stopDisc := context.WithCancel(context.Background())
	a.sdMetrics = sdMetrics
	a.discovery = discovery.NewManager(discCtx, o.Logger.With("component", "discovery manager notify"), o.Registerer, sdMetrics, discovery.Name("notify"))
	if a.discovery == nil {
		stopDisc()
		builtin.Close()
		return nil, errors.New("create notify discovery manager")
	}
	a.stopDisc = stopDisc

	a.rulesCtx, a.stopRules = context.WithCancel(context.Background())
	a.rules = rules.NewManager(&rules.ManagerOptions{
		ExternalURL:     o.ExternalURL,
		QueryFunc:       rules.EngineQueryFunc(o.Engine, o.Queryable),
		NotifyFunc:      a.sendAlerts,
		Context:         a.rulesCtx,
		AppendableV2:    store.Instrument(o.Appendable, store.NewAppendMetrics(o.Metrics, "rules")),
		Queryable:       o.Queryable,
		Logger:          o.Logger.With("component", "rule manager"),
		Registerer:      o.Registerer,
		OutageTolerance: OutageTolerance,
		ForGracePeriod:  ForGracePeriod,
		ResendDelay:     ResendDelay,
		Parser:          store.NewParser(),
		GroupLoader:     RuleLoader{Parser: store.NewParser(), Logger: o.Logger.With("component", "rule manager")},
	})
	return a, nil
}

// Rules serves /api/v1/rules and /api/v1/alerts.
func (a *Alerting) Rules() apiv1.RulesRetriever { return a.rules }

// Alertmanagers serves /api/v1/alertmanagers.
func (a *Alerting) Alertmanagers() apiv1.AlertmanagerRetriever { return a.notifier }

// Routes mounts the built-in notifier's Alertmanager API v2
// (/api/v2/alerts, /api/v2/silences, /api/v2/status…), for amtool.
func (a *Alerting) Routes(r gin.IRouter) {
	h := gin.WrapH(a.builtin.Handler())
	r.Any("/api/v2/*path", h)
}

// ApplyConfig loads the rule files, the Alertmanagers of prom.alerting and
// the notifications section. Every rule file is checked before anything is
// applied; on error the running rules are kept.
func (a *Alerting) ApplyConfig(prom *promconfig.Config, n notify.Config) error {
	a.mtx.Lock()
	defer a.mtx.Unlock()
	if err := a.check(prom, n); err != nil {
		return err
	}
	return a.apply(prom, n)
}

// Apply installs prom and n, which Check has passed; it does not check again.
func (a *Alerting) Apply(prom *promconfig.Config, n notify.Config) error {
	a.mtx.Lock()
	defer a.mtx.Unlock()
	return a.apply(prom, n)
}

func (a *Alerting) apply(prom *promconfig.Config, n notify.Config) error {
	files, err := RuleFiles(prom.RuleFiles)
	if err != nil {
		return fmt.Errorf("load rule files: %w", err)
	}
	if err := a.builtin.ApplyConfig(n); err != nil {
		return fmt.Errorf("apply notifications: %w", err)
	}
	if err := a.notifier.ApplyConfig(prom); err != nil {
		return fmt.Errorf("apply alerting.alertmanagers: %w", err)
	}
	sd := map[string]discovery.Configs{}
	for k, v := range prom.AlertingConfig.AlertmanagerConfigs.ToMap() {
		sd[k] = v.ServiceDiscoveryConfigs
	}
	if err := a.discovery.ApplyConfig(sd); err != nil {
		return fmt.Errorf("apply alertmanager discovery: %w", err)
	}
	ext := prom.GlobalConfig.ExternalLabels
	a.extLabels.Store(&ext)
	interval := time.Duration(prom.GlobalConfig.EvaluationInterval)
	if err := a.rules.Update(interval, files, ext, a.o.ExternalURL.String(), a.metrics.evalIteration); err != nil {
		return fmt.Errorf("load rule files: %w", err)
	}
	return nil
}

// Check reports, without side effects, whether prom's rule files and
// Alertmanagers and the notifications section n would apply: every rule file
// loads, the built-in notifier builds its routes and receivers, and every
// Alertmanager's HTTP client and discoverers can be created.
func (a *Alerting) Check(prom *promconfig.Config, n notify.Config) error {
	a.mtx.Lock()
	defer a.mtx.Unlock()
	return a.check(prom, n)
}

func (a *Alerting) check(prom *promconfig.Config, n notify.Config) error {
	files, err := RuleFiles(prom.RuleFiles)
	if err != nil {
		return fmt.Errorf("load rule files: %w", err)
	}
	if probs := CheckRuleFiles(files, a.logger); len(probs) > 0 {
		return fmt.Errorf("load rule files: %w", probs)
	}
	if err := a.builtin.Check(n); err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	var errs []error
	for name, am := range prom.AlertingConfig.AlertmanagerConfigs.ToMap() {
		client, err := config_util.NewClientFromConfig(am.HTTPClientConfig, "alertmanager")
		if err != nil {
			errs = append(errs, fmt.Errorf("alerting.alertmanagers %s: %w", name, err))
		} else {
			client.CloseIdleConnections()
		}
		for _, sd := range am.ServiceDiscoveryConfigs {
			if _, err := sd.NewDiscoverer(discovery.DiscovererOptions{Logger: a.logger, Metrics: a.sdMetrics.MechanismMetrics[sd.Name()], SetName: name}); err != nil {
				errs = append(errs, fmt.Errorf("alerting.alertmanagers %s: %s service discovery: %w", name, sd.Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// RuleFiles expands the rule_files patterns into file names, in order and
// without repeats.
func RuleFiles(patterns []string) ([]string, error) {
	var files []string
	seen := map[string]bool{}
	for _, pat := range patterns {
		fs, err := filepath.Glob(pat)
		if err != nil {
			return nil, fmt.Errorf("rule_files pattern %q: %w", pat, err)
		}
		for _, f := range fs {
			if !seen[f] {
				seen[f] = true
				files = append(files, f)
			}
		}
	}
	return files, nil
}

// Run evaluates rules and delivers alerts until ctx ends, then stops the
// rules, drains the queue to the Alertmanagers and stops the built-in
// notifier, in that order.
func (a *Alerting) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := a.discovery.Run(); err != nil && !errors.Is(err, context.Canceled) {
			a.logger.Error("notify discovery stopped", "err", err)
		}
	})
	wg.Go(func() { a.notifier.Run(a.discovery.SyncCh()) })
	builtinCtx, stopBuiltin := context.WithCancel(context.Background())
	defer stopBuiltin()
	builtinErr := make(chan error, 1)
	go func() { builtinErr <- a.builtin.Run(builtinCtx) }()
	rulesDone := make(chan struct{})
	go func() {
		a.rules.Run()
		close(rulesDone)
	}()

	var err error
	select {
	case <-ctx.Done():
	case err = <-builtinErr:
		builtinErr <- nil
	}
	a.rules.Stop()
	<-rulesDone
	a.stopRules()
	a.notifier.Stop()
	a.stopDisc()
	wg.Wait()
	stopBuiltin()
	if e := <-builtinErr; e != nil && err == nil {
		err = e
	}
	return err
}

// Close releases what New acquired when Run was never called. It is
// idempotent.
func (a *Alerting) Close() error {
	a.closeOnce.Do(func() {
		a.stopRules()
		a.stopDisc()
		a.notifier.Stop()
		a.builtin.Close()
	})
	return nil
}

// sendAlerts is the rule manager's NotifyFunc: alerts go to the built-in
// notifier and to the configured Alertmanagers.
func (a *Alerting) sendAlerts(ctx context.Context, expr string, alerts ...*rules.Alert) {
	if len(alerts) == 0 {
		return
	}
	rules.SendAlerts(sendFunc(a.sendBuiltin), a.o.ExternalURL.String())(ctx, expr, alerts...)
	rules.SendAlerts(a.notifier, a.o.ExternalURL.String())(ctx, expr, alerts...)
}

type sendFunc func(alerts ...*notifier.Alert)

func (f sendFunc) Send(alerts ...*notifier.Alert) { f(alerts...) }

// sendBuiltin converts alerts for the built-in notifier, adding the
// external labels as the Alertmanager notifier does.
func (a *Alerting) sendBuiltin(alerts ...*notifier.Alert) {
	ext := *a.extLabels.Load()
	now := time.Now()
	out := make([]*alert.Alert, 0, len(alerts))
	for _, na := range alerts {
		ls := make(model.LabelSet, na.Labels.Len()+ext.Len())
		ext.Range(func(l labels.Label) { ls[model.LabelName(l.Name)] = model.LabelValue(l.Value) })
		na.Labels.Range(func(l labels.Label) {
			if l.Value != "" {
				ls[model.LabelName(l.Name)] = model.LabelValue(l.Value)
			}
		})
		ann := make(model.LabelSet, na.Annotations.Len())
		na.Annotations.Range(func(l labels.Label) { ann[model.LabelName(l.Name)] = model.LabelValue(l.Value) })
		ma := model.Alert{Labels: ls, Annotations: ann, StartsAt: na.StartsAt, EndsAt: na.EndsAt, GeneratorURL: na.GeneratorURL}
		if err := alert.Validate(&ma); err != nil {
			a.logger.Warn("invalid alert not sent to the built-in notifier", "alert", ls.String(), "err", err)
			continue
		}
		out = append(out, alert.New(ma, now, false))
	}
	if err := a.builtin.Send(out...); err != nil {
		a.logger.Error("hand alerts to the built-in notifier", "err", err)
	}
}
