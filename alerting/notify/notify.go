// Package notify is Tidewatch's built-in notifier: Alertmanager's own
// dispatcher, inhibitor, silences, notification log and receivers
// (webhook, Slack, e-mail, PagerDuty, Teams, Opsgenie, Telegram…) embedded
// in-process, configured by the notifications section, and fed the alerts of
// Tidewatch's rules directly instead of over HTTP.
//
// Its state (silences and the notification log) is snapshotted to DataDir
// every minute and on Close, so that a restart neither forgets a silence nor
// repeats a notification inside repeat_interval. Alertmanager's /api/v2 is
// served unchanged by Handler, so amtool works against Tidewatch.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/alertmanager/alert"
	apiv2 "github.com/prometheus/alertmanager/api/v2"
	amconfig "github.com/prometheus/alertmanager/config"
	"github.com/prometheus/alertmanager/config/receiver"
	"github.com/prometheus/alertmanager/dispatch"
	"github.com/prometheus/alertmanager/eventrecorder"
	"github.com/prometheus/alertmanager/featurecontrol"
	"github.com/prometheus/alertmanager/inhibit"
	"github.com/prometheus/alertmanager/labelset"
	"github.com/prometheus/alertmanager/nflog"
	amnotify "github.com/prometheus/alertmanager/notify"
	"github.com/prometheus/alertmanager/provider/mem"
	"github.com/prometheus/alertmanager/silence"
	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/alertmanager/timeinterval"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
)

const (
	// maintenanceInterval is how often silences and the notification log
	// are garbage-collected and snapshotted (Alertmanager: 15m). Short, so
	// that a crash loses little.
	maintenanceInterval = time.Minute
	// alertGCInterval is how often resolved alerts are dropped (Alertmanager's default).
	alertGCInterval = 30 * time.Minute
	// dispatchMaintenanceInterval is Alertmanager's default.
	dispatchMaintenanceInterval = 30 * time.Second
)

// Options are the notifier's dependencies.
type Options struct {
	Logger *slog.Logger
	// Registerer receives Alertmanager's own metrics (alertmanager_*).
	Registerer prometheus.Registerer
	// Metrics receives Tidewatch's notification metrics.
	Metrics *metrics.Set
	// DataDir holds silences and the notification log.
	DataDir string
	// Retention of expired silences and notification log entries.
	Retention time.Duration
	// ExternalURL is Tidewatch's URL, used as .ExternalURL in templates.
	ExternalURL *url.URL
}

// Notifier is the embedded Alertmanager. New loads its state, ApplyConfig
// sets routes and receivers, Run delivers until its context ends.
type Notifier struct {
	o       Options
	logger  *slog.Logger
	metrics *notifyMetrics

	alerts   *mem.Alerts
	silences *silence.Silences
	silencer *silence.Silencer
	nflog    *nflog.Log
	api      *apiv2.API
	pipeline *amnotify.PipelineBuilder
	dmetrics *dispatch.DispatcherMetrics
	start    time.Time

	mtx        sync.Mutex // guards the fields below; serialises ApplyConfig
	cfg        *amconfig.Config
	running    bool
	stopped    bool
	dispatcher *dispatch.Dispatcher
	inhibitor  *inhibit.Inhibitor

	closeOnce sync.Once
	stopMaint chan struct{}
	maintDone sync.WaitGroup
}

// New loads the silences and notification log from o.DataDir. It starts no
// delivery; the alert store's garbage collection runs until Close.
func New(o Options) (*Notifier, error) {
	if o.Logger == nil || o.Registerer == nil || o.Metrics == nil || o.DataDir == "" || o.ExternalURL == nil {
		return nil, errors.New("notify: logger, registerer, metrics, data dir and external URL are required")
	}
	if o.Retention <= 0 {
		o.Retention = time.Duration(DefaultRetention)
	}
	logger := o.Logger.With("component", "notify")
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create notifications data dir: %w", err)
	}
	n := &Notifier{o: o, logger: logger, metrics: newNotifyMetrics(o.Metrics), start: time.Now(), stopMaint: make(chan struct{})}
	ff, err := featurecontrol.NewFlags(logger, featurecontrol.FeatureReceiverNameInMetrics)
	if err != nil {
		return nil, fmt.Errorf("alertmanager feature flags: %w", err)
	}
	var rec eventrecorder.Recorder // zero value records nothing

	n.nflog, err = nflog.New(nflog.Options{
		SnapshotFile: filepath.Join(o.DataDir, "nflog"),
		Retention:    o.Retention,
		Logger:       logger.With("part", "nflog"),
		Metrics:      o.Registerer,
	})
	if err != nil {
		return nil, fmt.Errorf("load notification log: %w", err)
	}
	n.silences, err = silence.New(silence.Options{
		SnapshotFile:  filepath.Join(o.DataDir, "silences"),
		Retention:     o.Retention,
		Logger:        logger.With("part", "silences"),
		Metrics:       o.Registerer,
		EventRecorder: rec,
	})
	if err != nil {
		return nil, fmt.Errorf("load silences: %w", err)
	}
	n.silencer = silence.NewSilencer(n.silences, logger, rec)
	n.alerts, err = mem.NewAlerts(context.Background(), alertGCInterval, 0, n.silencer, logger, rec, o.Registerer, ff)
	if err != nil {
		return nil, fmt.Errorf("create alert store: %w", err)
	}
	n.api, err = apiv2.NewAPI(n.alerts, n.groups, n.silences, nil, logger.With("part", "api"), o.Registerer)
	if err != nil {
		n.alerts.Close()
		return nil, fmt.Errorf("create alertmanager api: %w", err)
	}
	n.pipeline = amnotify.NewPipelineBuilder(o.Registerer, ff, rec)
	n.dmetrics = dispatch.NewDispatcherMetrics(false, o.Registerer, ff)
	return n, nil
}

// Handler serves Alertmanager's API v2 (paths starting /api/v2/).
func (n *Notifier) Handler() http.Handler { return n.api.Handler }

func (n *Notifier) groups(ctx context.Context, routeFilter func(*dispatch.Route) bool, alertFilter dispatch.AlertFilter) (dispatch.AlertGroups, map[model.Fingerprint][]string, error) {
	n.mtx.Lock()
	d := n.dispatcher
	n.mtx.Unlock()
	if d == nil {
		return dispatch.AlertGroups{}, map[model.Fingerprint][]string{}, nil
	}
	return d.Groups(ctx, routeFilter, alertFilter)
}

// Check reports, without side effects, whether c would apply: it loads and
// builds everything a reload builds.
func (n *Notifier) Check(c Config) error {
	conf, err := c.alertmanagerConfig()
	if err != nil {
		return fmt.Errorf("load notifications: %w", err)
	}
	_, err = n.build(conf)
	return err
}

// ApplyConfig builds the routes, receivers and inhibition rules of c and
// swaps them in. On error the running configuration is kept.
func (n *Notifier) ApplyConfig(c Config) error {
	conf, err := c.alertmanagerConfig()
	if err != nil {
		return fmt.Errorf("load notifications: %w", err)
	}
	n.mtx.Lock()
	defer n.mtx.Unlock()
	if n.stopped {
		return errors.New("notify: closed")
	}
	if !n.running {
		// Check now, build when Run starts.
		if _, err := n.build(conf); err != nil {
			return err
		}
		n.cfg = conf
		return nil
	}
	if err := n.swap(conf); err != nil {
		return err
	}
	n.cfg = conf
	return nil
}

// built is the configuration-scoped part of the notifier.
type built struct {
	routes     *dispatch.Route
	receivers  map[string][]amnotify.Integration
	intervener *timeinterval.Intervener
	tmpl       *template.Template
}

// build does everything of a reload that can fail, with no side effect.
func (n *Notifier) build(conf *amconfig.Config) (*built, error) {
	tmpl, err := template.FromGlobs(conf.Templates)
	if err != nil {
		return nil, fmt.Errorf("parse notification templates: %w", err)
	}
	tmpl.ExternalURL = n.o.ExternalURL
	b := &built{routes: dispatch.NewRoute(conf.Route, nil), tmpl: tmpl, receivers: map[string][]amnotify.Integration{}}
	active := map[string]bool{}
	b.routes.Walk(func(r *dispatch.Route) { active[r.RouteOpts.Receiver] = true })
	for _, rcv := range conf.Receivers {
		if !active[rcv.Name] {
			continue
		}
		ints, err := receiver.BuildReceiverIntegrations(rcv, tmpl, n.logger)
		if err != nil {
			return nil, fmt.Errorf("build receiver %q: %w", rcv.Name, err)
		}
		for i := range ints {
			ints[i] = n.metrics.wrap(ints[i], rcv.Name)
		}
		b.receivers[rcv.Name] = ints
	}
	intervals := make(map[string][]timeinterval.TimeInterval, len(conf.MuteTimeIntervals)+len(conf.TimeIntervals))
	for _, ti := range conf.MuteTimeIntervals {
		intervals[ti.Name] = ti.TimeIntervals
	}
	for _, ti := range conf.TimeIntervals {
		intervals[ti.Name] = ti.TimeIntervals
	}
	b.intervener = timeinterval.NewIntervener(intervals)
	return b, nil
}

// swap builds conf and replaces the running dispatcher and inhibitor, as
// Alertmanager's own reload does. n.mtx is held.
func (n *Notifier) swap(conf *amconfig.Config) error {
	b, err := n.build(conf)
	if err != nil {
		return err
	}
	if n.inhibitor != nil {
		n.inhibitor.Stop()
	}
	if n.dispatcher != nil {
		n.dispatcher.Stop()
	}
	inhibitor := inhibit.NewInhibitor(n.alerts, conf.InhibitRules, n.logger, eventrecorder.Recorder{})
	pipeline := n.pipeline.New(b.receivers, func() time.Duration { return 0 }, inhibitor, n.silencer, b.intervener, n.nflog, nil)
	stage := n.metrics.wrapRouting(pipeline)
	n.api.Update(conf, func(ctx context.Context, ls labelset.LabelSet) {
		inhibitor.Mutes(ctx, ls)
		n.silencer.Mutes(ctx, ls)
	})
	timeout := func(d time.Duration) time.Duration { return max(d, amnotify.MinTimeout) }
	dispatcher := dispatch.NewDispatcher(n.alerts, b.routes, stage, b.intervener, timeout,
		dispatchMaintenanceInterval, nil, n.logger, eventrecorder.Recorder{}, n.dmetrics, b.tmpl)
	go inhibitor.Run()
	inhibitor.WaitForLoading()
	go dispatcher.Run(n.start)
	dispatcher.WaitForLoading()
	n.inhibitor, n.dispatcher = inhibitor, dispatcher
	return nil
}

// Run starts delivery with the configuration last applied, and blocks until
// ctx ends; then it stops delivery and snapshots silences and the
// notification log.
func (n *Notifier) Run(ctx context.Context) error {
	n.mtx.Lock()
	if n.running || n.stopped {
		n.mtx.Unlock()
		return errors.New("notify: Run called twice or after Close")
	}
	conf := n.cfg
	if conf == nil {
		var err error
		if conf, err = (&Config{}).alertmanagerConfig(); err != nil {
			n.mtx.Unlock()
			return err
		}
	}
	if err := n.swap(conf); err != nil {
		n.mtx.Unlock()
		return err
	}
	n.running = true
	n.maintDone.Add(2)
	go func() {
		defer n.maintDone.Done()
		n.nflog.Maintenance(maintenanceInterval, filepath.Join(n.o.DataDir, "nflog"), n.stopMaint, nil)
	}()
	go func() {
		defer n.maintDone.Done()
		n.silences.Maintenance(maintenanceInterval, filepath.Join(n.o.DataDir, "silences"), n.stopMaint, nil)
	}()
	n.mtx.Unlock()
	<-ctx.Done()
	return n.Close()
}

// Send hands alerts to the dispatcher, as a POST to /api/v2/alerts would.
func (n *Notifier) Send(alerts ...*alert.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	return n.alerts.Put(context.Background(), alerts...)
}

// Close stops delivery, snapshots the state and releases the alert store.
// It is idempotent.
func (n *Notifier) Close() error {
	n.closeOnce.Do(func() {
		n.mtx.Lock()
		n.stopped = true
		if n.inhibitor != nil {
			n.inhibitor.Stop()
		}
		if n.dispatcher != nil {
			n.dispatcher.Stop()
		}
		n.mtx.Unlock()
		close(n.stopMaint) // the maintenance goroutines take a final snapshot
		n.maintDone.Wait()
		n.alerts.Close()
	})
	return nil
}
