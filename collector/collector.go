// Package collector finds targets and scrapes them into the store.
//
// It is Prometheus' own discovery and scrape managers wired to a Tidewatch
// store: target discovery (static, and every mechanism collector/discovery
// registers: file, DNS, Consul, etcd, …), relabeling, content negotiation
// between Prometheus text, OpenMetrics and protobuf, limits, staleness
// markers and the per-scrape series (up, scrape_duration_seconds, …) all
// behave exactly as in Prometheus.
package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/client_golang/prometheus"
	config_util "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"

	// Imports (and registers) every service discovery mechanism Tidewatch
	// supports; never discovery/install (it pulls in every cloud SDK).
	twdiscovery "github.com/tidewatch/tidewatch/collector/discovery"
)

// reloadInterval bounds how long a discovered target change takes to reach
// the scrape loops (Prometheus uses 5 s; a fleet that scales wants faster).
const reloadInterval = time.Second

// Options are a Collector's dependencies.
type Options struct {
	Logger *slog.Logger
	// Registerer receives the Prometheus libraries' own metrics
	// (prometheus_target_*, prometheus_sd_*).
	Registerer prometheus.Registerer
	// Metrics receives Tidewatch's scrape metrics.
	Metrics *metrics.Set
	// Appendable is where scraped samples go.
	Appendable storage.AppendableV2
}

// Collector discovers targets and scrapes them. Create it with New, give it a
// configuration with ApplyConfig (after Check, to know it will take), run it
// with Run, and release it with Close, whether or not it ran.
type Collector struct {
	logger    *slog.Logger
	discovery *discovery.Manager
	scrape    *scrape.Manager
	sdMetrics *discovery.SDMetrics
	cancel    context.CancelFunc // ends the discovery manager's context

	mtx      sync.Mutex
	running  bool
	stopOnce sync.Once
}

// New creates a collector; it starts nothing.
func New(o Options) (*Collector, error) {
	if o.Logger == nil || o.Registerer == nil || o.Metrics == nil || o.Appendable == nil {
		return nil, errors.New("collector: logger, registerer, metrics and appendable are required")
	}
	twdiscovery.Register()
	ctx, cancel := context.WithCancel(context.Background())
	sdMetrics, err := discovery.CreateAndRegisterSDMetrics(o.Registerer)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("register service discovery metrics: %w", err)
	}
	dm := discovery.NewManager(ctx, o.Logger.With("component", "discovery"), o.Registerer, sdMetrics,
		discovery.Name("scrape"), discovery.Updatert(reloadInterval))
	if dm == nil {
		cancel()
		return nil, errors.New("create discovery manager")
	}
	app := &jobCounter{next: o.Appendable, set: o.Metrics}
	sm, err := scrape.NewManager(&scrape.Options{
		DiscoveryReloadInterval: model.Duration(reloadInterval),
		// Puts the target into the appender's context, so that scrapes are
		// counted under the configured job name (see jobCounter).
		PassMetadataInContext: true,
	}, o.Logger.With("component", "scrape"), nil, nil, app, o.Registerer)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("create scrape manager: %w", err)
	}
	return &Collector{logger: o.Logger, discovery: dm, scrape: sm, sdMetrics: sdMetrics, cancel: cancel}, nil
}

// SDMetrics returns the service discovery mechanisms' metrics, registered
// once in Options.Registerer; other discovery managers (probes,
// Alertmanagers) sharing that registerer must use these.
func (c *Collector) SDMetrics() *discovery.SDMetrics { return c.sdMetrics }

// Check reports, without side effects, whether cfg would apply: its scrape
// configs (scrape_config_files included) read, every job's HTTP client (TLS
// files, credentials) builds, and every service discovery configuration
// creates its discoverer. Prometheus only logs a discoverer that cannot be
// created and runs the job without it; Tidewatch refuses the configuration,
// so that a reload keeps the running one whole.
func (c *Collector) Check(cfg *promconfig.Config) error {
	return checkConfig(cfg, c.logger, c.sdMetrics)
}

// JobError is a problem of one scrape job found by Check.
type JobError struct {
	Job string
	Err error
}

func (e *JobError) Error() string { return fmt.Sprintf("scrape job %q: %v", e.Job, e.Err) }
func (e *JobError) Unwrap() error { return e.Err }

// CheckConfig is Check without a collector, for `tidewatch check config`:
// the discoverers' metrics go to a registry nobody reads.
func CheckConfig(cfg *promconfig.Config, logger *slog.Logger) error {
	twdiscovery.Register()
	sdMetrics, err := discovery.CreateAndRegisterSDMetrics(prometheus.NewRegistry())
	if err != nil {
		return fmt.Errorf("register service discovery metrics: %w", err)
	}
	return checkConfig(cfg, logger, sdMetrics)
}

func checkConfig(cfg *promconfig.Config, logger *slog.Logger, sdMetrics *discovery.SDMetrics) error {
	scfgs, err := cfg.GetScrapeConfigs()
	if err != nil {
		return fmt.Errorf("read scrape configs: %w", err)
	}
	var errs []error
	for _, sc := range scfgs {
		client, err := config_util.NewClientFromConfig(sc.HTTPClientConfig, sc.JobName)
		if err != nil {
			errs = append(errs, &JobError{Job: sc.JobName, Err: err})
		} else {
			client.CloseIdleConnections()
		}
		for _, sd := range sc.ServiceDiscoveryConfigs {
			// Built as the discovery manager builds it, never run: creating a
			// discoverer starts nothing (clients dial lazily).
			_, err := sd.NewDiscoverer(discovery.DiscovererOptions{
				Logger:  logger,
				Metrics: sdMetrics.MechanismMetrics[sd.Name()],
				SetName: sc.JobName,
			})
			if err != nil {
				errs = append(errs, &JobError{Job: sc.JobName, Err: fmt.Errorf("%s service discovery: %w", sd.Name(), err)})
			}
		}
	}
	return errors.Join(errs...)
}

// ApplyConfig checks cfg (see Check) and, when it passes, swaps the scrape
// and discovery configurations. On error nothing changes. cfg must come from
// promconfig.Load.
func (c *Collector) ApplyConfig(cfg *promconfig.Config) error {
	if err := c.Check(cfg); err != nil {
		return err
	}
	return c.Apply(cfg)
}

// Apply swaps in cfg, which Check has passed (the lifecycle checks every
// component before it applies any, so this does not check again).
func (c *Collector) Apply(cfg *promconfig.Config) error {
	scfgs, err := cfg.GetScrapeConfigs()
	if err != nil {
		return fmt.Errorf("read scrape configs: %w", err)
	}
	if err := c.scrape.ApplyConfig(cfg); err != nil {
		// Only a file changed since Check can get here.
		return fmt.Errorf("apply scrape config: %w", err)
	}
	sd := make(map[string]discovery.Configs, len(scfgs))
	for _, sc := range scfgs {
		sd[sc.JobName] = sc.ServiceDiscoveryConfigs
	}
	// Never fails: the manager logs and counts a discoverer it cannot create,
	// and Check has built each of them already.
	return c.discovery.ApplyConfig(sd)
}

// Run discovers and scrapes until ctx ends, then stops every scrape loop.
// When Run returns no further sample is appended.
func (c *Collector) Run(ctx context.Context) error {
	c.mtx.Lock()
	if c.running {
		c.mtx.Unlock()
		return errors.New("collector: already running")
	}
	c.running = true
	c.mtx.Unlock()

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := c.discovery.Run(); err != nil && !errors.Is(err, context.Canceled) {
			c.logger.Error("discovery manager stopped", "err", err)
		}
	})
	done := make(chan error, 1)
	wg.Go(func() { done <- c.scrape.Run(c.discovery.SyncCh()) })
	var err error
	select {
	case <-ctx.Done():
	case err = <-done:
	}
	c.stop()
	wg.Wait()
	return err
}

// Close releases the collector: it stops the scrape and discovery managers
// (Run, if running, returns) and is safe to call more than once, and on a
// collector that never ran.
func (c *Collector) Close() { c.stop() }

func (c *Collector) stop() {
	c.stopOnce.Do(func() {
		c.scrape.Stop()
		c.cancel()
	})
}

// Targets gives the scrape manager's view of targets, for the HTTP API.
func (c *Collector) Targets() *scrape.Manager { return c.scrape }

// jobCounter counts scrapes and failed scrapes per job from the "up" sample
// that every scrape appends exactly once. The job is the scrape config's
// job_name (the target's job label before relabeling, which may rewrite or
// drop it), taken from the target the scrape loop puts in the context.
type jobCounter struct {
	next storage.AppendableV2
	set  *metrics.Set
	jobs sync.Map // job name -> *jobMetrics
}

type jobMetrics struct {
	scrapes, failures *metrics.Counter
}

func (j *jobCounter) forJob(job string) *jobMetrics {
	if m, ok := j.jobs.Load(job); ok {
		return m.(*jobMetrics)
	}
	m := &jobMetrics{
		scrapes:  j.set.GetOrCreateCounter(fmt.Sprintf(`tidewatch_scrapes_total{job=%q}`, job)),
		failures: j.set.GetOrCreateCounter(fmt.Sprintf(`tidewatch_scrape_failures_total{job=%q}`, job)),
	}
	actual, _ := j.jobs.LoadOrStore(job, m)
	return actual.(*jobMetrics)
}

func (j *jobCounter) AppenderV2(ctx context.Context) storage.AppenderV2 {
	a := &upCountingAppender{AppenderV2: j.next.AppenderV2(ctx), jc: j}
	if t, ok := scrape.TargetFromContext(ctx); ok {
		a.job, a.haveJob = t.DiscoveredLabels(labels.NewBuilder(labels.EmptyLabels())).Get(model.JobLabel), true
	}
	return a
}

type upCountingAppender struct {
	storage.AppenderV2
	jc      *jobCounter
	job     string
	haveJob bool
	upV     float64
	seen    bool
}

func (a *upCountingAppender) Append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AppendV2Options) (storage.SeriesRef, error) {
	if a.haveJob && h == nil && fh == nil && !value.IsStaleNaN(v) && ls.Get(labels.MetricName) == "up" {
		a.upV, a.seen = v, true
	}
	return a.AppenderV2.Append(ref, ls, st, t, v, h, fh, opts)
}

// GetRef forwards the store's series-reference lookup (the scrape loop's
// fast path for known series).
func (a *upCountingAppender) GetRef(ls labels.Labels, hash uint64) (storage.SeriesRef, labels.Labels) {
	if g, ok := a.AppenderV2.(storage.GetRef); ok {
		return g.GetRef(ls, hash)
	}
	return 0, labels.EmptyLabels()
}

func (a *upCountingAppender) Commit() error {
	err := a.AppenderV2.Commit()
	if a.seen {
		m := a.jc.forJob(a.job)
		m.scrapes.Inc()
		if a.upV != 1 {
			m.failures.Inc()
		}
	}
	return err
}
