package probe

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	bbprober "github.com/prometheus/blackbox_exporter/prober"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/prometheus/prometheus/storage"

	twdiscovery "github.com/tidewatch/tidewatch/collector/discovery"
)

// DefaultConcurrency is how many probes may run at once when
// Options.Concurrency is zero.
const DefaultConcurrency = 64

// reloadInterval bounds how long a discovered target change takes to reach
// the probe loops (as for scrapes).
const reloadInterval = time.Second

// paramTargetLabel, when a target has it after relabeling, is what is probed
// instead of __address__: relabeling written for blackbox_exporter (which
// moves the target into __param_target) keeps working.
const paramTargetLabel = model.ParamLabelPrefix + "target"

// Options are a Manager's dependencies.
type Options struct {
	Logger *slog.Logger
	// Registerer receives the probe discovery manager's metrics
	// (prometheus_sd_*{name="probe"}).
	Registerer prometheus.Registerer
	// SDMetrics are the discovery mechanisms' metrics, created once per
	// registerer and shared with the scrape discovery (Collector.SDMetrics).
	SDMetrics *discovery.SDMetrics
	// Metrics receives Tidewatch's probe metrics.
	Metrics *metrics.Set
	// Appendable is where probe results go.
	Appendable storage.AppendableV2
	// Concurrency bounds the probes in flight over all jobs; 0 means
	// DefaultConcurrency. A probe that finds no free slot within its interval
	// is skipped and counted.
	Concurrency int
}

// Manager discovers probe targets and probes each on its job's interval,
// appending blackbox_exporter's series for every result. New starts nothing;
// ApplyConfig sets (and later swaps) the configuration; Run probes until its
// context ends.
type Manager struct {
	logger    *slog.Logger
	app       storage.AppendableV2
	set       *metrics.Set
	sem       chan struct{}
	discovery *discovery.Manager
	sdMetrics *discovery.SDMetrics
	cancel    context.CancelFunc // stops the discovery manager

	mtx     sync.Mutex
	jobs    map[string]*job
	sets    map[string][]*targetgroup.Group // the last discovery state
	active  map[string]*target
	dropped map[string][]labels.Labels // discovered labels of dropped targets, by job
	loopCtx context.Context            // nil until Run, and after Run ends
	loops   sync.WaitGroup
	running bool
}

// New creates a probe manager; it starts nothing.
func New(o Options) (*Manager, error) {
	if o.Logger == nil || o.Registerer == nil || o.SDMetrics == nil || o.Metrics == nil || o.Appendable == nil {
		return nil, errors.New("probe manager: logger, registerer, discovery metrics, metrics and appendable are required")
	}
	if o.Concurrency < 0 {
		return nil, fmt.Errorf("probe manager: negative concurrency %d", o.Concurrency)
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	twdiscovery.Register()
	ctx, cancel := context.WithCancel(context.Background())
	dm := discovery.NewManager(ctx, o.Logger.With("component", "discovery", "manager", "probe"), o.Registerer, o.SDMetrics,
		discovery.Name("probe"), discovery.Updatert(reloadInterval))
	if dm == nil {
		cancel()
		return nil, errors.New("create probe discovery manager")
	}
	m := &Manager{
		logger:    o.Logger.With("component", "probe"),
		app:       o.Appendable,
		set:       o.Metrics,
		sem:       make(chan struct{}, o.Concurrency),
		discovery: dm,
		sdMetrics: o.SDMetrics,
		cancel:    cancel,
		jobs:      map[string]*job{},
		active:    map[string]*target{},
		dropped:   map[string][]labels.Labels{},
	}
	o.Metrics.NewGauge("tidewatch_probes_in_flight", func() float64 { return float64(len(m.sem)) })
	o.Metrics.NewGauge("tidewatch_probe_concurrency_limit", func() float64 { return float64(cap(m.sem)) })
	return m, nil
}

// job is one probe config ready to run.
type job struct {
	name     string
	cfg      *Config
	probe    bbprober.ProbeFn
	relabel  []*relabel.Config // the config's, then the shard's
	interval time.Duration
	timeout  time.Duration
	metrics  *jobMetrics
}

// Check reports, without side effects, whether cfgs and shard would apply:
// they validate and every job's service discovery creates its discoverer.
func (m *Manager) Check(cfgs Configs, shard twdiscovery.Shard) error {
	if err := errors.Join(cfgs.Validate(), shard.Validate("collector.shard")); err != nil {
		return fmt.Errorf("probe config: %w", err)
	}
	var errs []error
	for _, c := range cfgs {
		for _, sd := range c.ServiceDiscoveryConfigs {
			if _, err := sd.NewDiscoverer(discovery.DiscovererOptions{Logger: m.logger, Metrics: m.sdMetrics.MechanismMetrics[sd.Name()], SetName: c.JobName}); err != nil {
				errs = append(errs, fmt.Errorf("probe job %q: %s service discovery: %w", c.JobName, sd.Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// Close releases what New acquired (the discovery manager's context); Run
// returns once its context ends. It is idempotent.
func (m *Manager) Close() error {
	m.cancel()
	return nil
}

// ApplyConfig swaps the probe configuration and the shard this instance
// probes. It checks everything first: on error nothing changes. Targets whose
// job config changed keep their identity (and series) and probe with the new
// settings from their next probe on.
func (m *Manager) ApplyConfig(cfgs Configs, shard twdiscovery.Shard) error {
	if err := m.Check(cfgs, shard); err != nil {
		return err
	}
	return m.Apply(cfgs, shard)
}

// Apply swaps in cfgs and shard, which Check has passed; it does not check
// again.
func (m *Manager) Apply(cfgs Configs, shard twdiscovery.Shard) error {
	jobs := make(map[string]*job, len(cfgs))
	sd := make(map[string]discovery.Configs, len(cfgs))
	for _, c := range cfgs {
		jobs[c.JobName] = &job{
			name:     c.JobName,
			cfg:      c,
			probe:    probers[c.Module.Prober],
			relabel:  shard.ApplyProbe(c.RelabelConfigs),
			interval: time.Duration(c.Interval),
			timeout:  c.timeout(),
			metrics:  newJobMetrics(m.set, c.JobName),
		}
		sd[c.JobName] = c.ServiceDiscoveryConfigs
	}
	if err := m.discovery.ApplyConfig(sd); err != nil {
		return fmt.Errorf("apply probe discovery config: %w", err)
	}
	m.mtx.Lock()
	defer m.mtx.Unlock()
	for name, j := range m.jobs {
		if _, ok := jobs[name]; !ok {
			j.metrics.targets.Set(0)
		}
	}
	m.jobs = jobs
	m.reconcile()
	return nil
}

// Run probes until ctx ends, then stops every probe loop and the discovery.
// When Run returns no further sample is appended. Targets are not marked
// stale on shutdown (a restart should not punch holes in their series).
func (m *Manager) Run(ctx context.Context) error {
	m.mtx.Lock()
	if m.running {
		m.mtx.Unlock()
		return errors.New("probe manager: already running")
	}
	m.running = true
	loopCtx, stopLoops := context.WithCancel(context.Background())
	m.loopCtx = loopCtx
	m.reconcile()
	m.mtx.Unlock()

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := m.discovery.Run(); err != nil && !errors.Is(err, context.Canceled) {
			m.logger.Error("probe discovery manager stopped", "err", err)
		}
	})
	syncCh := m.discovery.SyncCh()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case sets, ok := <-syncCh:
			if !ok {
				break loop
			}
			m.mtx.Lock()
			m.sets = sets
			m.reconcile()
			m.mtx.Unlock()
		}
	}
	m.mtx.Lock()
	m.loopCtx = nil
	m.mtx.Unlock()
	stopLoops()
	m.loops.Wait()
	m.cancel()
	wg.Wait()
	return nil
}

// reconcile makes the running probe loops those of the targets that the last
// discovery state and the current jobs give. mtx must be held.
func (m *Manager) reconcile() {
	if m.loopCtx == nil {
		return
	}
	desired := map[string]*target{}
	dropped := map[string][]labels.Labels{}
	counts := map[string]int{}
	for name, groups := range m.sets {
		j, ok := m.jobs[name]
		if !ok {
			continue
		}
		for _, tg := range groups {
			if tg == nil {
				continue
			}
			for _, tl := range tg.Targets {
				discovered, final, addr, keep := j.targetLabels(tl, tg.Labels)
				if !keep {
					dropped[name] = append(dropped[name], discovered)
					continue
				}
				key := name + "\xff" + addr + "\xff" + final.String()
				if _, dup := desired[key]; dup {
					continue
				}
				desired[key] = newTarget(key, name, addr, final, discovered)
				counts[name]++
			}
		}
	}
	for key, t := range m.active {
		if _, ok := desired[key]; !ok {
			t.stop(true)
			delete(m.active, key)
		}
	}
	for key, d := range desired {
		j := m.jobs[d.jobName]
		if t, ok := m.active[key]; ok {
			t.update(j, d.discoveredLabels())
			continue
		}
		d.update(j, d.discovered)
		m.active[key] = d
		m.start(d)
	}
	m.dropped = dropped
	for name, j := range m.jobs {
		j.metrics.targets.Set(float64(counts[name]))
	}
}

// targetLabels merges a discovered target's labels with its group's, adds
// job, relabels, and returns the labels before relabeling, the target's
// labels (instance defaulting to what is probed, "__" labels removed), what
// to probe (__param_target, else __address__) and whether to keep it.
func (j *job) targetLabels(tl, gl model.LabelSet) (discovered, final labels.Labels, addr string, keep bool) {
	lb := labels.NewBuilder(labels.EmptyLabels())
	for n, v := range gl {
		lb.Set(string(n), string(v))
	}
	for n, v := range tl {
		lb.Set(string(n), string(v))
	}
	if lb.Get(model.JobLabel) == "" {
		lb.Set(model.JobLabel, j.name)
	}
	discovered = lb.Labels()
	if !relabel.ProcessBuilder(lb, j.relabel...) {
		return discovered, labels.EmptyLabels(), "", false
	}
	addr = lb.Get(paramTargetLabel)
	if addr == "" {
		addr = lb.Get(model.AddressLabel)
	}
	if addr == "" {
		return discovered, labels.EmptyLabels(), "", false
	}
	if lb.Get(model.InstanceLabel) == "" {
		lb.Set(model.InstanceLabel, addr)
	}
	lb.Range(func(l labels.Label) {
		if strings.HasPrefix(l.Name, model.ReservedLabelPrefix) {
			lb.Del(l.Name)
		}
	})
	return discovered, lb.Labels(), addr, true
}

// start runs t's probe loop. mtx must be held and loopCtx set.
func (m *Manager) start(t *target) {
	ctx, cancel := context.WithCancel(m.loopCtx)
	t.cancel = cancel
	m.loops.Add(1)
	go func() {
		defer m.loops.Done()
		m.loop(ctx, t)
	}()
}

// loop probes t right away (spread over the first second), then every interval.
func (m *Manager) loop(ctx context.Context, t *target) {
	defer close(t.done)
	interval := t.job().interval
	h := fnv.New64a()
	h.Write([]byte(t.key))
	timer := time.NewTimer(time.Duration(h.Sum64() % uint64(min(interval, time.Second))))
	defer timer.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			if t.markStale.Load() {
				m.writeStale(t)
			}
			return
		case <-t.changed:
			if iv := t.job().interval; iv != interval {
				interval = iv
				timer.Reset(max(time.Until(last.Add(interval)), 0))
			}
			continue
		case <-timer.C:
		}
		last = time.Now()
		m.probeSafely(ctx, t, last)
		timer.Reset(max(time.Until(last.Add(interval)), 0))
	}
}

// probeSafely probes t, turning a panic anywhere in the probe (recording or
// appending its results included) into a failed probe that is logged, so that
// the loop and the process go on.
func (m *Manager) probeSafely(ctx context.Context, t *target, start time.Time) {
	defer func() {
		if p := recover(); p != nil {
			err := fmt.Errorf("probe %s panicked: %v", t.addr, p)
			m.logger.Error("probe panicked", "job", t.jobName, "target", t.addr, "err", err, "stack", string(debug.Stack()))
			t.record(healthDown, start, time.Since(start), err)
		}
	}()
	m.probe(ctx, t, start)
}
