package autoscaler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"reflect"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
)

// Options are a Manager's dependencies.
type Options struct {
	Logger  *slog.Logger
	Metrics *metrics.Set
	// Engine and Queryable answer the policies' queries.
	Engine    *promql.Engine
	Queryable storage.Queryable
	// Appendable receives the tidewatch_autoscaler_* series; nil means none.
	Appendable storage.AppendableV2
	// Now and After are the clock every evaluation, schedule and duration
	// goes through; nil means time.Now and time.After. Under testing/synctest
	// the defaults are the bubble's fake clock, so tests of the policy loops
	// need not inject anything.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// NewBackend builds backends; nil means the registry (NewBackend).
	NewBackend func(BackendConfig, *slog.Logger) (backend.Backend, error)
	// DecisionLog is how many decisions are kept for the API (default 1000).
	DecisionLog int
	// Events, when set, receives the scale events of policies with
	// notify: true (see ScaleEvent.Event): each scale action once the
	// backend answered, and each dry-run decision that would change the
	// count. ExternalURL is where their links point.
	Events      EventSink
	ExternalURL *url.URL
}

// Manager evaluates the configured policies and drives their backends.
// New starts nothing; ApplyConfig installs a configuration; Run evaluates
// until its context ends; Close releases the backends.
type Manager struct {
	o       Options
	logger  *slog.Logger
	metrics *managerMetrics

	mtx      sync.Mutex
	cfg      Config
	backends map[string]*backendEntry
	runners  map[string]*runner
	order    []string // policy names in configuration order
	inflight map[string]bool
	running  context.Context // nil until Run
	wg       sync.WaitGroup  // policy loops
	actions  sync.WaitGroup  // scale calls in flight
	closed   bool

	log decisionLog
}

type backendEntry struct {
	cfg BackendConfig
	b   backend.Backend
}

// New returns a manager without policies.
func New(o Options) (*Manager, error) {
	if o.Logger == nil || o.Metrics == nil || o.Engine == nil || o.Queryable == nil {
		return nil, errors.New("autoscaler: logger, metrics, engine and queryable are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
	if o.NewBackend == nil {
		o.NewBackend = NewBackend
	}
	if o.DecisionLog <= 0 {
		o.DecisionLog = 1000
	}
	return &Manager{
		o: o, logger: o.Logger.With("component", "autoscaler"), metrics: newManagerMetrics(o.Metrics),
		backends: map[string]*backendEntry{}, runners: map[string]*runner{}, inflight: map[string]bool{},
		log: decisionLog{max: o.DecisionLog},
	}, nil
}

// ApplyConfig installs c. Backends whose configuration is unchanged are
// kept (a process fleet keeps running); policies keep their state and pause
// flag by name. On error nothing changes.
func (m *Manager) ApplyConfig(c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	m.mtx.Lock()
	defer m.mtx.Unlock()
	if m.closed {
		return errors.New("autoscaler: closed")
	}
	newBackends := map[string]*backendEntry{}
	var created []backend.Backend
	fail := func(err error) error {
		for _, b := range created {
			closeBackend(b)
		}
		return err
	}
	for _, bc := range c.Backends {
		if old, ok := m.backends[bc.Name]; ok && reflect.DeepEqual(old.cfg, bc) {
			newBackends[bc.Name] = old
			continue
		}
		b, err := m.o.NewBackend(bc, m.logger)
		if err != nil {
			return fail(fmt.Errorf("autoscaling.backends %s: %w", bc.Name, err))
		}
		created = append(created, b)
		newBackends[bc.Name] = &backendEntry{cfg: bc, b: b}
	}
	newRunners := map[string]*runner{}
	var order []string
	for _, pc := range c.Policies {
		p, err := NewPolicy(pc)
		if err != nil {
			return fail(err)
		}
		r := &runner{m: m, policy: p, backendName: pc.Target.Backend, backend: newBackends[pc.Target.Backend].b, lastKnown: -1}
		if old, ok := m.runners[pc.Name]; ok {
			old.mtx.Lock()
			if old.backend == r.backend && reflect.DeepEqual(old.policy.Config.Target, pc.Target) {
				r.state, r.lastKnown, r.seq, r.last = old.state, old.lastKnown, old.seq, old.last
			}
			r.paused = old.paused
			old.mtx.Unlock()
		}
		newRunners[pc.Name] = r
		order = append(order, pc.Name)
	}
	// Commit: stop the old loops, close the replaced backends, start anew.
	for _, r := range m.runners {
		r.stop()
	}
	for name, old := range m.backends {
		if nb, ok := newBackends[name]; !ok || nb != old {
			closeBackend(old.b)
		}
	}
	m.cfg, m.backends, m.runners, m.order = c, newBackends, newRunners, order
	if m.running != nil {
		for _, r := range m.runners {
			m.startLocked(r)
		}
	}
	return nil
}

func closeBackend(b backend.Backend) {
	if c, ok := b.(io.Closer); ok {
		_ = c.Close()
	}
}

// Backend returns the backend named name (for wiring a process backend's
// targets into discovery).
func (m *Manager) Backend(name string) (backend.Backend, bool) {
	m.mtx.Lock()
	defer m.mtx.Unlock()
	e, ok := m.backends[name]
	if !ok {
		return nil, false
	}
	return e.b, true
}

// Run evaluates every policy on its interval until ctx ends, then waits for
// the loops and the scale calls in flight.
func (m *Manager) Run(ctx context.Context) error {
	m.mtx.Lock()
	if m.running != nil {
		m.mtx.Unlock()
		return errors.New("autoscaler: already running")
	}
	m.running = ctx
	for _, name := range m.order {
		m.startLocked(m.runners[name])
	}
	m.mtx.Unlock()
	<-ctx.Done()
	m.mtx.Lock()
	for _, r := range m.runners {
		r.stop()
	}
	m.mtx.Unlock()
	m.wg.Wait()
	m.actions.Wait()
	return nil
}

// Close closes the backends (stopping process fleets). Call it after Run
// returned; it is safe to call more than once.
func (m *Manager) Close() error {
	m.mtx.Lock()
	defer m.mtx.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	for _, e := range m.backends {
		closeBackend(e.b)
	}
	return nil
}

func (m *Manager) startLocked(r *runner) {
	ctx, cancel := context.WithCancel(m.running)
	r.cancel = cancel
	m.wg.Go(func() { r.loop(ctx) })
}

// Pause stops a policy from acting (it keeps evaluating and explaining).
func (m *Manager) Pause(name string) error { return m.setPaused(name, true) }

// Resume lets a paused policy act again.
func (m *Manager) Resume(name string) error { return m.setPaused(name, false) }

// ErrNoPolicy is returned for an unknown policy name.
var ErrNoPolicy = errors.New("no such policy")

func (m *Manager) setPaused(name string, paused bool) error {
	m.mtx.Lock()
	r, ok := m.runners[name]
	m.mtx.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrNoPolicy, name)
	}
	r.mtx.Lock()
	r.paused = paused
	r.mtx.Unlock()
	m.logger.Info("policy paused state changed", "policy", name, "paused", paused)
	return nil
}

func (m *Manager) backendConfig(name string) BackendConfig {
	m.mtx.Lock()
	defer m.mtx.Unlock()
	if e, ok := m.backends[name]; ok {
		return e.cfg
	}
	return BackendConfig{}
}

// EvaluateNow runs one evaluation of the named policy outside its schedule
// and returns its decision (for tests and tools).
func (m *Manager) EvaluateNow(ctx context.Context, name string) (*Decision, error) {
	m.mtx.Lock()
	r, ok := m.runners[name]
	m.mtx.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoPolicy, name)
	}
	return r.Evaluate(ctx), nil
}
