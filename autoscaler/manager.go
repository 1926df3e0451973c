package autoscaler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"reflect"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/prometheus/model/labels"
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
	// OnScaleEvent, when set, receives the scale events of policies with
	// notify: true: each scale action once the backend answered, and each
	// dry-run decision that would change the count.
	OnScaleEvent func(ScaleEvent)
}

// ScaleEvent is a scale action or dry-run decision told to the
// notification receivers.
type ScaleEvent struct {
	DecisionID string
	Policy     string
	Backend    string
	Target     string
	// Action is ActionScale or ActionDryRun.
	Action           string
	Current, Desired int
	Reason           string
	// Error is the backend's error, if the scale call failed.
	Error string
	Time  time.Time
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

// runner evaluates one policy.
type runner struct {
	m           *Manager
	policy      *Policy
	backendName string
	backend     backend.Backend
	cancel      context.CancelFunc

	mtx       sync.Mutex
	state     State
	paused    bool
	lastKnown int // last count the backend reported or was scaled to; -1 unknown
	// dryRunTold is the desired count of the last dry-run event sent, so
	// that a dry-run policy tells the receivers once per new recommendation,
	// not at every evaluation. Guarded by mtx: EvaluateNow may run Evaluate
	// while the loop does.
	dryRunTold int
	seq        int
	last       *Decision
}

func (r *runner) stop() {
	if r.cancel != nil {
		r.cancel()
	}
}

// loop evaluates at once, then every interval on the manager's clock. Like
// a ticker it keeps the schedule (an evaluation that overruns its interval
// is followed by the next at once, not by a pile of them).
func (r *runner) loop(ctx context.Context) {
	clock := r.m.o
	next := clock.Now()
	for {
		r.Evaluate(ctx)
		next = next.Add(r.policy.Interval)
		if now := clock.Now(); next.Before(now) {
			next = now
		}
		select {
		case <-ctx.Done():
			return
		case <-clock.After(next.Sub(clock.Now())):
		}
	}
}

func (r *runner) target() backend.Target {
	t := r.policy.Config.Target
	return backend.Target{Kind: t.Kind, APIVersion: t.APIVersion, Resource: t.Resource, Namespace: t.Namespace, Name: t.Name, Group: t.Group}
}

func (r *runner) key() string { return r.backendName + "/" + r.policy.Config.Target.String() }

// Evaluate runs one evaluation: read the current count, observe the
// metrics, decide, and act (unless dry-run, paused, or an action is in flight).
func (r *runner) Evaluate(ctx context.Context) *Decision {
	m := r.m
	c := r.policy.Config
	now := m.o.Now()
	defer func() { m.metrics.evalDuration(c.Name).Update(m.o.Now().Sub(now).Seconds()) }()
	m.metrics.evaluations(c.Name).Inc()

	d := &Decision{ID: newDecisionID(c.Name, now), Policy: c.Name, Backend: r.backendName, Target: r.target(), DryRun: c.DryRun}
	qctx, cancel := context.WithTimeout(ctx, max(r.policy.Interval, 10*time.Second))
	defer cancel()
	current, err := r.backend.Current(qctx, d.Target)
	r.mtx.Lock()
	r.seq++
	d.Seq = r.seq
	lastKnown := r.lastKnown
	paused := r.paused
	r.mtx.Unlock()
	d.Paused = paused
	switch {
	case errors.Is(err, backend.ErrUnknown):
		current, d.CurrentAssumed = lastKnown, true
		if current < 0 {
			current = c.Min
		}
	case err != nil:
		d.Time, d.Action, d.Error = now, ActionError, fmt.Sprintf("read current replicas: %v", err)
		m.metrics.failures(c.Name).Inc()
		m.logger.Warn("evaluate policy", "policy", c.Name, "err", err)
		r.record(d)
		return d
	}
	in := Input{Now: now, Current: current, Metrics: r.observe(qctx, now)}
	r.mtx.Lock()
	d.Evaluation = r.policy.Decide(&r.state, in)
	r.mtx.Unlock()

	switch {
	case d.Desired == current:
		d.Action = ActionNone
	case paused:
		d.Action = ActionPaused
	case c.DryRun:
		d.Action = ActionDryRun
	default:
		m.mtx.Lock()
		busy := m.inflight[r.key()]
		if !busy {
			m.inflight[r.key()] = true
			m.actions.Add(1)
		}
		m.mtx.Unlock()
		if busy {
			d.Action = ActionInFlight
			break
		}
		d.Action = ActionScale
		d.Result = &ActionResult{Started: m.o.Now()}
		go r.act(ctx, d, current)
	}
	if d.Action != ActionNone {
		m.logger.Info("scaling decision", "policy", c.Name, "action", d.Action, "current", current, "desired", d.Desired, "reason", d.Reason())
	}
	if d.Action == ActionDryRun && d.Desired != current && r.tellDryRun(d.Desired) {
		r.notify(d, current, "")
	}
	r.record(d)
	return d
}

// tellDryRun reports whether a dry-run recommendation of desired replicas
// is new, and remembers it: the check and the update are one step, so two
// concurrent evaluations tell the receivers once.
func (r *runner) tellDryRun(desired int) bool {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	if desired == r.dryRunTold {
		return false
	}
	r.dryRunTold = desired
	return true
}

// act calls the backend for d and records the answer.
func (r *runner) act(ctx context.Context, d *Decision, current int) {
	m := r.m
	defer m.actions.Done()
	defer func() {
		m.mtx.Lock()
		delete(m.inflight, r.key())
		m.mtx.Unlock()
	}()
	req := backend.Request{DecisionID: d.ID, Policy: d.Policy, Current: current, Desired: d.Desired, Reason: d.Reason(), Time: d.Time}
	for _, me := range d.Metrics {
		req.Metrics = append(req.Metrics, backend.Metric{Query: me.Query, Type: me.Type, Target: me.Target, Value: me.Value, Forecast: me.Forecast, Recommendation: max(me.Recommendation, me.ForecastRecommendation)})
	}
	timeout := time.Duration(r.m.backendConfig(r.backendName).Timeout)
	if timeout <= 0 {
		timeout = DefaultBackendTimeout
	}
	// The scale call outlives the evaluation's context but not Run's.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*timeout)
	defer cancel()
	start := m.o.Now()
	res, err := r.backend.Scale(actx, d.Target, req)
	finished := m.o.Now()
	m.metrics.scaleDuration(r.backendName).Update(finished.Sub(start).Seconds())
	replicas := d.Desired
	if err == nil && res.Replicas >= 0 {
		replicas = res.Replicas
	}
	m.log.update(func() {
		d.Result.Finished = finished
		d.Result.Replicas = res.Replicas
		d.Result.Message = res.Message
		if err != nil {
			d.Result.Error = err.Error()
		}
	})
	if err != nil {
		m.metrics.actions(d.Policy, "error").Inc()
		m.logger.Error("scale", "policy", d.Policy, "backend", r.backendName, "err", err)
		r.notify(d, current, err.Error())
		return
	}
	r.notify(d, current, "")
	m.metrics.actions(d.Policy, "success").Inc()
	r.mtx.Lock()
	r.state.RecordScale(d.Time, current, replicas)
	r.lastKnown = replicas
	r.mtx.Unlock()
}

// notify hands d to Options.OnScaleEvent when its policy asks for it.
func (r *runner) notify(d *Decision, current int, errText string) {
	if r.m.o.OnScaleEvent == nil || !r.policy.Config.Notify {
		return
	}
	r.m.o.OnScaleEvent(ScaleEvent{
		DecisionID: d.ID, Policy: d.Policy, Backend: r.backendName, Target: targetString(d.Target),
		Action: d.Action, Current: current, Desired: d.Desired, Reason: d.Reason(), Error: errText, Time: d.Time,
	})
}

func (m *Manager) backendConfig(name string) BackendConfig {
	m.mtx.Lock()
	defer m.mtx.Unlock()
	if e, ok := m.backends[name]; ok {
		return e.cfg
	}
	return BackendConfig{}
}

// observe queries each metric at now, and its forecast when configured.
func (r *runner) observe(ctx context.Context, now time.Time) []Observation {
	c := r.policy.Config
	out := make([]Observation, len(c.Metrics))
	for i, mc := range c.Metrics {
		v, err := r.m.instant(ctx, mc.Query, now)
		out[i] = Observation{Value: v, Err: err}
		if err != nil || c.Forecast == nil {
			continue
		}
		window := time.Duration(c.Forecast.Window)
		step := max(r.policy.Interval, window/300)
		pts, err := r.m.rangeQuery(ctx, mc.Query, now.Add(-window), now, step)
		if err != nil {
			continue
		}
		if f, err := Forecast(*c.Forecast, pts); err == nil {
			out[i].Forecast, out[i].HasForecast = f, true
		}
	}
	return out
}

func (m *Manager) instant(ctx context.Context, q string, t time.Time) (float64, error) {
	qry, err := m.o.Engine.NewInstantQuery(ctx, m.o.Queryable, nil, q, t)
	if err != nil {
		return 0, err
	}
	defer qry.Close()
	res := qry.Exec(ctx)
	if res.Err != nil {
		return 0, res.Err
	}
	return singleValue(res.Value)
}

// singleValue extracts the one number a policy query must return.
func singleValue(v any) (float64, error) {
	switch v := v.(type) {
	case promql.Scalar:
		return v.V, nil
	case promql.Vector:
		switch len(v) {
		case 0:
			return 0, ErrEmpty
		case 1:
			if v[0].H != nil {
				return 0, errors.New("query returned a histogram")
			}
			return v[0].F, nil
		default:
			return 0, fmt.Errorf("query returned %d series; aggregate them (sum, avg, max)", len(v))
		}
	default:
		return 0, fmt.Errorf("query returned a %T, not a number", v)
	}
}

func (m *Manager) rangeQuery(ctx context.Context, q string, start, end time.Time, step time.Duration) ([]Point, error) {
	pts, err := RangePoints(ctx, m.o.Engine, m.o.Queryable, q, start, end, step)
	if err == nil && len(pts) == 0 {
		err = errors.New("range query returned no series")
	}
	return pts, err
}

// RangePoints runs a range query that must return at most one series and
// gives its points (none when the query returns nothing).
func RangePoints(ctx context.Context, engine *promql.Engine, q storage.Queryable, query string, start, end time.Time, step time.Duration) ([]Point, error) {
	qry, err := engine.NewRangeQuery(ctx, q, nil, query, start, end, step)
	if err != nil {
		return nil, err
	}
	defer qry.Close()
	res := qry.Exec(ctx)
	if res.Err != nil {
		return nil, res.Err
	}
	mat, ok := res.Value.(promql.Matrix)
	if !ok {
		return nil, fmt.Errorf("not a matrix: %T", res.Value)
	}
	switch len(mat) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("returns %d series; aggregate them (sum, avg, max)", len(mat))
	}
	pts := make([]Point, 0, len(mat[0].Floats))
	for _, p := range mat[0].Floats {
		pts = append(pts, Point{T: time.UnixMilli(p.T), V: p.F})
	}
	return pts, nil
}

// record keeps d for the API and writes its series.
func (r *runner) record(d *Decision) {
	if d.Time.IsZero() {
		d.Time = d.Evaluation.Time
	}
	r.mtx.Lock()
	r.last = d
	r.mtx.Unlock()
	r.m.log.add(d)
	if r.m.o.Appendable != nil && d.Action != ActionError {
		if err := r.appendSeries(d); err != nil {
			r.m.logger.Warn("append autoscaler series", "policy", d.Policy, "err", err)
		}
	}
}

func (r *runner) appendSeries(d *Decision) error {
	app := r.m.o.Appendable.AppenderV2(context.Background())
	ts := d.Time.UnixMilli()
	base := []string{"policy", d.Policy, "backend", d.Backend, "target", r.policy.Config.Target.String()}
	add := func(name string, v float64, extra ...string) error {
		ls := labels.FromStrings(append(append([]string{labels.MetricName, name}, base...), extra...)...)
		_, err := app.Append(0, ls, 0, ts, v, nil, nil, storage.AppendV2Options{})
		return err
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	ev := d.Evaluation
	errs := []error{
		add("tidewatch_autoscaler_current_replicas", float64(ev.Current)),
		add("tidewatch_autoscaler_desired_replicas", float64(ev.Desired)),
		add("tidewatch_autoscaler_recommended_replicas", float64(ev.Raw)),
		add("tidewatch_autoscaler_stabilized_replicas", float64(ev.Stabilized)),
		add("tidewatch_autoscaler_min_replicas", float64(ev.Floor)),
		add("tidewatch_autoscaler_max_replicas", float64(ev.Max)),
		add("tidewatch_autoscaler_paused", b2f(d.Paused)),
		add("tidewatch_autoscaler_dry_run", b2f(d.DryRun)),
	}
	for i, me := range ev.Metrics {
		idx := fmt.Sprint(i)
		errs = append(errs, add("tidewatch_autoscaler_metric_target", me.Target, "metric", idx))
		if me.Value != nil {
			errs = append(errs, add("tidewatch_autoscaler_metric_value", *me.Value, "metric", idx))
		}
		if me.Forecast != nil && !math.IsNaN(*me.Forecast) {
			errs = append(errs, add("tidewatch_autoscaler_forecast", *me.Forecast, "metric", idx))
		}
	}
	if err := errors.Join(errs...); err != nil {
		_ = app.Rollback()
		return err
	}
	return app.Commit()
}

func newDecisionID(policy string, t time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", policy, t.UnixMilli(), hex.EncodeToString(b[:]))
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
