package autoscaler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
)

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

func (r *runner) target() backend.Target { return r.policy.Config.Target.backendTarget() }

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
	}
	if d.Action != ActionNone {
		m.logger.Info("scaling decision", "policy", c.Name, "action", d.Action, "current", current, "desired", d.Desired, "reason", d.Reason())
	}
	if d.Action == ActionDryRun && d.Desired != current && r.tellDryRun(d.Desired) {
		r.notify(d, current, "")
	}
	// Recorded before the call starts, so that the decision log already
	// holds the decision a backend (or a webhook receiver) sees the call of.
	r.record(d)
	if d.Action == ActionScale {
		go r.act(ctx, d, current)
	}
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
	bc := r.m.backendConfig(r.backendName)
	timeout := bc.callTimeout()
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

// notify sends d's scale event to Options.Events when its policy asks for it.
func (r *runner) notify(d *Decision, current int, errText string) {
	if r.m.o.Events == nil || !r.policy.Config.Notify {
		return
	}
	e := ScaleEvent{
		DecisionID: d.ID, Policy: d.Policy, Backend: r.backendName, Target: targetString(d.Target),
		Action: d.Action, Current: current, Desired: d.Desired, Reason: d.Reason(), Error: errText, Time: d.Time,
	}
	r.m.o.Events.SendEvent(e.Event(r.m.o.ExternalURL))
}

// observe queries each metric at now, and its forecast when configured.
func (r *runner) observe(ctx context.Context, now time.Time) []Observation {
	c := r.policy.Config
	out := make([]Observation, len(c.Metrics))
	for i, mc := range c.Metrics {
		v, err := r.m.instant(ctx, mc.Query, now)
		out[i] = Observation{Value: v, Err: err}
		if err == nil && i == 0 && c.capacitySizing() {
			r.observeCapacity(ctx, now, &out[i])
		}
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

// observeCapacity adds capacity sizing's per-scrape value and the
// volatility of its rise (of the metric itself when there is no per-scrape
// query) to o. A failed query leaves them out: the decision then rests on
// the metric alone, and the explanation shows no headroom.
func (r *runner) observeCapacity(ctx context.Context, now time.Time, o *Observation) {
	c := r.policy.Config
	q := c.FastQuery()
	if q != "" {
		if v, err := r.m.instant(ctx, q, now); err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
			o.Fast, o.HasFast = v, true
		}
	} else {
		q = c.Metrics[0].Query
	}
	h := c.headroom()
	window := time.Duration(h.Window)
	step := max(r.policy.Interval, window/2000)
	if pts, err := r.m.rangeQuery(ctx, q, now.Add(-window), now, step); err == nil {
		o.Volatility, o.HasVolatility = Volatility(pts, time.Duration(h.Horizon))
	}
}

func newDecisionID(policy string, t time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", policy, t.UnixMilli(), hex.EncodeToString(b[:]))
}
