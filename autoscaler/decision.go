package autoscaler

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
)

// Actions a decision can end in.
const (
	ActionNone     = "none"      // desired equals current
	ActionScale    = "scale"     // the backend was called
	ActionDryRun   = "dry_run"   // the policy is dry-run: decided, not called
	ActionPaused   = "paused"    // the policy is paused
	ActionInFlight = "in_flight" // an earlier action on the target has not finished
	ActionError    = "error"     // the evaluation could not run
)

// Decision is the audit record of one evaluation.
type Decision struct {
	ID      string         `json:"id"`
	Seq     int            `json:"seq"`
	Policy  string         `json:"policy"`
	Backend string         `json:"backend"`
	Target  backend.Target `json:"target"`
	Evaluation
	// CurrentAssumed is set when the backend could not tell the current
	// count and the last known (or min) was used.
	CurrentAssumed bool          `json:"current_assumed"`
	DryRun         bool          `json:"dry_run"`
	Paused         bool          `json:"paused"`
	Action         string        `json:"action"`
	Result         *ActionResult `json:"result,omitempty"`
	Error          string        `json:"error,omitempty"`
}

// ActionResult is the backend's answer to a scale call.
type ActionResult struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	// Replicas is what the backend reported; -1 when it did not say.
	Replicas int    `json:"replicas"`
	Message  string `json:"message,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Explain describes d in plain words, one sentence per line.
func (d *Decision) Explain() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Policy %s (%s %s), evaluation %d at %s:\n", d.Policy, d.Backend, targetString(d.Target), d.Seq, d.Time.Format(time.RFC3339))
	if d.Action == ActionError {
		fmt.Fprintf(&b, "  The evaluation could not run: %s.\n", d.Error)
		return b.String()
	}
	if d.CurrentAssumed {
		fmt.Fprintf(&b, "  The backend cannot report the current count; assuming %d (the last count it was asked for, or min).\n", d.Current)
	} else {
		fmt.Fprintf(&b, "  The target had %d replicas.\n", d.Current)
	}
	for i, m := range d.Metrics {
		switch {
		case m.Value == nil:
			fmt.Fprintf(&b, "  Metric %d `%s` could not be read (%s): %s.\n", i, m.Query, m.Error, m.Note)
		default:
			fmt.Fprintf(&b, "  Metric %d `%s` is %.4g against a %s target of %.4g: it asks for %d.", i, m.Query, *m.Value, strings.ReplaceAll(m.Type, "_", " "), m.Target, m.Recommendation)
			if m.Forecast != nil {
				fmt.Fprintf(&b, " Its forecast is %.4g, which asks for %d.", *m.Forecast, m.ForecastRecommendation)
			}
			b.WriteString("\n")
		}
	}
	for _, s := range d.Steps {
		fmt.Fprintf(&b, "  - %s\n", s)
	}
	switch d.Action {
	case ActionNone:
		fmt.Fprintf(&b, "  Nothing to do: %d replicas is right.\n", d.Desired)
	case ActionDryRun:
		fmt.Fprintf(&b, "  Dry run: it would have scaled to %d, and called nothing.\n", d.Desired)
	case ActionPaused:
		fmt.Fprintf(&b, "  The policy is paused: it would have scaled to %d.\n", d.Desired)
	case ActionInFlight:
		fmt.Fprintf(&b, "  An earlier scale action on this target was still running, so it waited.\n")
	case ActionScale:
		fmt.Fprintf(&b, "  It asked %s to scale to %d", d.Backend, d.Desired)
		switch r := d.Result; {
		case r == nil || r.Finished.IsZero():
			b.WriteString("; the answer is pending.\n")
		case r.Error != "":
			fmt.Fprintf(&b, "; that failed: %s.\n", r.Error)
		case r.Replicas >= 0:
			fmt.Fprintf(&b, "; it reports %d replicas (%s).\n", r.Replicas, r.Message)
		default:
			fmt.Fprintf(&b, "; it accepted (%s).\n", r.Message)
		}
	}
	return b.String()
}

func targetString(t backend.Target) string {
	var parts []string
	for _, s := range []string{t.Kind, t.Namespace, t.Name, t.Group} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "/")
}

// decisionLog keeps the latest decisions of all policies.
type decisionLog struct {
	mtx  sync.Mutex
	max  int
	ring []*Decision
}

func (l *decisionLog) add(d *Decision) {
	l.mtx.Lock()
	defer l.mtx.Unlock()
	l.ring = append(l.ring, d)
	if len(l.ring) > l.max {
		l.ring = l.ring[len(l.ring)-l.max:]
	}
}

// update runs f, which changes a logged decision, under the log's lock.
func (l *decisionLog) update(f func()) {
	l.mtx.Lock()
	defer l.mtx.Unlock()
	f()
}

// list returns copies of the latest decisions of policy (all when empty),
// newest first, at most limit (all when ≤ 0).
func (l *decisionLog) list(policy string, limit int) []Decision {
	l.mtx.Lock()
	defer l.mtx.Unlock()
	var out []Decision
	for i := len(l.ring) - 1; i >= 0; i-- {
		d := l.ring[i]
		if policy != "" && d.Policy != policy {
			continue
		}
		c := *d
		if d.Result != nil {
			r := *d.Result
			c.Result = &r
		}
		out = append(out, c)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out
}

// Decisions returns the latest decisions, newest first.
func (m *Manager) Decisions(policy string, limit int) []Decision {
	return m.log.list(policy, limit)
}

// PolicyStatus is a policy as the API shows it.
type PolicyStatus struct {
	Name          string          `json:"name"`
	Backend       string          `json:"backend"`
	BackendType   string          `json:"backend_type"`
	Target        backend.Target  `json:"target"`
	Min           int             `json:"min"`
	Max           int             `json:"max"`
	Interval      string          `json:"interval"`
	Metrics       []MetricConfig  `json:"metrics"`
	Forecast      *ForecastConfig `json:"forecast,omitempty"`
	Tolerance     float64         `json:"tolerance"`
	OnMetricError string          `json:"on_metric_error"`
	DryRun        bool            `json:"dry_run"`
	Paused        bool            `json:"paused"`
	Evaluations   int             `json:"evaluations"`
	LastDecision  *Decision       `json:"last_decision,omitempty"`
}

// Policies returns the status of every policy, in configuration order.
func (m *Manager) Policies() []PolicyStatus {
	m.mtx.Lock()
	var rs []*runner
	for _, name := range m.order {
		rs = append(rs, m.runners[name])
	}
	types := map[string]string{}
	for name, e := range m.backends {
		types[name] = string(e.cfg.Type)
	}
	m.mtx.Unlock()
	out := make([]PolicyStatus, 0, len(rs))
	for _, r := range rs {
		c := r.policy.Config
		r.mtx.Lock()
		ps := PolicyStatus{
			Name: c.Name, Backend: r.backendName, BackendType: types[r.backendName], Target: r.target(),
			Min: c.Min, Max: c.Max, Interval: c.Interval.String(), Metrics: c.Metrics, Forecast: c.Forecast,
			Tolerance: c.Tolerance, OnMetricError: c.OnMetricError.String(), DryRun: c.DryRun,
			Paused: r.paused, Evaluations: r.seq,
		}
		last := r.last
		r.mtx.Unlock()
		if last != nil {
			m.log.update(func() {
				d := *last
				if last.Result != nil {
					res := *last.Result
					d.Result = &res
				}
				ps.LastDecision = &d
			})
		}
		out = append(out, ps)
	}
	return out
}
