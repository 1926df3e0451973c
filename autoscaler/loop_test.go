package autoscaler_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/storage"

	"github.com/tidewatch/tidewatch/autoscaler"
	"github.com/tidewatch/tidewatch/autoscaler/backend"
	"github.com/tidewatch/tidewatch/autoscaler/backend/webhook"
	"github.com/tidewatch/tidewatch/internal/event"
	"github.com/tidewatch/tidewatch/store"
)

// fakeBackend keeps a replica count in memory and counts its scale calls.
type fakeBackend struct {
	mtx      sync.Mutex
	replicas int
	scales   []int // desired counts asked for, in order
}

func (f *fakeBackend) Current(context.Context, backend.Target) (int, error) {
	f.mtx.Lock()
	defer f.mtx.Unlock()
	return f.replicas, nil
}

func (f *fakeBackend) Scale(_ context.Context, _ backend.Target, req backend.Request) (backend.Result, error) {
	f.mtx.Lock()
	defer f.mtx.Unlock()
	f.scales = append(f.scales, req.Desired)
	f.replicas = req.Desired
	return backend.Result{Replicas: req.Desired}, nil
}

func (f *fakeBackend) set(n int) {
	f.mtx.Lock()
	defer f.mtx.Unlock()
	f.replicas = n
}

func (f *fakeBackend) calls() []int {
	f.mtx.Lock()
	defer f.mtx.Unlock()
	return append([]int(nil), f.scales...)
}

var _ backend.Backend = (*fakeBackend)(nil)

// eventRecorder is an autoscaler.EventSink that keeps what it receives.
type eventRecorder struct {
	mtx    sync.Mutex
	events []event.Event
}

func (r *eventRecorder) SendEvent(e event.Event) {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	r.events = append(r.events, e)
}

func (r *eventRecorder) all() []event.Event {
	r.mtx.Lock()
	defer r.mtx.Unlock()
	return append([]event.Event(nil), r.events...)
}

var _ autoscaler.EventSink = (*eventRecorder)(nil)

// noStorage answers every select with nothing: the policies below query
// only constants.
var noStorage = storage.QueryableFunc(func(int64, int64) (storage.Querier, error) {
	return storage.NoopQuerier(), nil
})

// fakeManager is a manager whose one policy "api" asks for 5 replicas
// (vector(10) at 2 per instance) of a fakeBackend starting at 1, every 30 s.
func fakeManager(t *testing.T, dryRun bool, o autoscaler.Options) (*autoscaler.Manager, *fakeBackend) {
	return fakeManagerQuery(t, "vector(10)", 2, dryRun, o)
}

// fakeManagerQuery is fakeManager with another query and per-instance target.
func fakeManagerQuery(t *testing.T, query string, perInstance float64, dryRun bool, o autoscaler.Options) (*autoscaler.Manager, *fakeBackend) {
	t.Helper()
	fb := &fakeBackend{replicas: 1}
	logger := slog.New(slog.DiscardHandler)
	o.Logger, o.Metrics, o.Queryable = logger, metrics.NewSet(), noStorage
	o.Engine = store.NewEngine(store.DefaultQueryConfig, logger, nil)
	o.NewBackend = func(autoscaler.BackendConfig, *slog.Logger) (backend.Backend, error) { return fb, nil }
	m, err := autoscaler.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	p := autoscaler.DefaultPolicyConfig
	p.Name = "api"
	p.Target = autoscaler.TargetConfig{Backend: "fake", Name: "api"}
	p.Min, p.Max = 1, 10
	p.Interval = model.Duration(30 * time.Second)
	p.Metrics = []autoscaler.MetricConfig{{Query: query, PerInstance: perInstance}}
	p.DryRun = dryRun
	p.Notify = true
	cfg := autoscaler.Config{
		Backends: []autoscaler.BackendConfig{{Name: "fake", Type: autoscaler.TypeWebhook, Config: &webhook.Config{URL: "http://127.0.0.1:1/unused"}}},
		Policies: []autoscaler.PolicyConfig{p},
	}
	if err := m.ApplyConfig(cfg); err != nil {
		t.Fatal(err)
	}
	return m, fb
}

// history is the policy's decisions, oldest first.
func history(m *autoscaler.Manager) []autoscaler.Decision {
	ds := m.Decisions("api", 0)
	slices.Reverse(ds)
	return ds
}

// actions is the actions of the policy's decisions, oldest first.
func actions(m *autoscaler.Manager) []string {
	var out []string
	for _, d := range history(m) {
		out = append(out, d.Action)
	}
	return out
}

// TestLoopEvaluatesEveryInterval runs the policy loop on synctest's clock:
// it evaluates at once and then once per interval, acts once, holds while
// paused, and acts again after resume.
func TestLoopEvaluatesEveryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, fb := fakeManager(t, false, autoscaler.Options{})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		interval := 30 * time.Second

		synctest.Wait()
		if got := actions(m); len(got) != 1 || got[0] != autoscaler.ActionScale {
			t.Fatalf("after start: decisions %v, want [scale]", got)
		}
		if got := fb.calls(); len(got) != 1 || got[0] != 5 {
			t.Fatalf("after start: scale calls %v, want [5]", got)
		}

		// Just short of an interval: no new evaluation.
		time.Sleep(interval - time.Second)
		synctest.Wait()
		if n := len(m.Decisions("api", 0)); n != 1 {
			t.Fatalf("before the first interval: %d decisions, want 1", n)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got := actions(m); len(got) != 2 || got[1] != autoscaler.ActionNone {
			t.Fatalf("after one interval: decisions %v, want [scale none]", got)
		}

		// Someone scales the target down while the policy is paused: the
		// loop keeps evaluating but does not act.
		if err := m.Pause("api"); err != nil {
			t.Fatal(err)
		}
		fb.set(2)
		time.Sleep(3 * interval)
		synctest.Wait()
		if got := actions(m); len(got) != 5 || got[2] != autoscaler.ActionPaused || got[4] != autoscaler.ActionPaused {
			t.Fatalf("paused for three intervals: decisions %v, want 5 ending in three paused", got)
		}
		if got := fb.calls(); len(got) != 1 {
			t.Fatalf("paused: scale calls %v, want still one", got)
		}

		if err := m.Resume("api"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(interval)
		synctest.Wait()
		if got := actions(m); len(got) != 6 || got[5] != autoscaler.ActionScale {
			t.Fatalf("after resume: decisions %v, want the sixth to scale", got)
		}
		if got := fb.calls(); len(got) != 2 || got[1] != 5 {
			t.Fatalf("after resume: scale calls %v, want [5 5]", got)
		}
		for i, d := range history(m) {
			if d.Seq != i+1 {
				t.Errorf("decision %d has seq %d", i, d.Seq)
			}
		}

		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// TestConcurrentEvaluateRace runs the loop and many EvaluateNow calls at
// once on a dry-run policy whose recommendation changes at every
// evaluation (each sees a clock an hour and a second later: time() % 4
// cycles), so that the remembered dry-run recommendation is read and
// written all the time: -race must find nothing, and every evaluation is
// a dry run between 2 and 5 replicas told at most once.
func TestConcurrentEvaluateRace(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ticks atomic.Int64
	now := func() time.Time { return base.Add(time.Duration(ticks.Add(1)) * (time.Hour + time.Second)) }
	sink := &eventRecorder{}
	m, _ := fakeManagerQuery(t, "vector(2 + time() % 4)", 1, true, autoscaler.Options{Events: sink, Now: now})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	const workers, each = 8, 25
	var wg sync.WaitGroup
	desired := map[int]bool{}
	var mtx sync.Mutex
	for range workers {
		wg.Go(func() {
			for range each {
				d, err := m.EvaluateNow(t.Context(), "api")
				if err != nil {
					t.Error(err)
					return
				}
				if d.Action != autoscaler.ActionDryRun || d.Desired < 2 || d.Desired > 5 {
					t.Errorf("decision: %s %d, want dry_run 2..5", d.Action, d.Desired)
				}
				mtx.Lock()
				desired[d.Desired] = true
				mtx.Unlock()
			}
		})
	}
	wg.Wait()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(desired) < 2 {
		t.Errorf("recommendations %v, want them to change", desired)
	}
	if n := len(sink.all()); n < 2 || n > workers*each+len(m.Decisions("api", 0)) {
		t.Errorf("%d dry-run events, want at least 2 and at most one per evaluation", n)
	}
}

// TestConcurrentEvaluateDryRunTellsOnce runs the loop and many EvaluateNow
// calls at once on a dry-run policy (run it with -race): every evaluation
// recommends the same count, so the receivers hear of it exactly once.
func TestConcurrentEvaluateDryRunTellsOnce(t *testing.T) {
	sink := &eventRecorder{}
	m, fb := fakeManager(t, true, autoscaler.Options{Events: sink})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	const workers, each = 8, 25
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				d, err := m.EvaluateNow(t.Context(), "api")
				if err != nil {
					t.Error(err)
					return
				}
				if d.Action != autoscaler.ActionDryRun || d.Desired != 5 {
					t.Errorf("decision: %s %d, want dry_run 5", d.Action, d.Desired)
				}
			}
		})
	}
	wg.Wait()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(m.Decisions("api", 0)); n < workers*each {
		t.Errorf("%d decisions recorded, want at least %d", n, workers*each)
	}
	told := sink.all()
	if len(told) != 1 || told[0].Labels["action"] != autoscaler.ActionDryRun || told[0].Annotations["desired_replicas"] != "5" {
		t.Errorf("dry-run events %+v, want one for 5", told)
	}
	if got := fb.calls(); len(got) != 0 {
		t.Errorf("dry run called Scale %v", got)
	}
}
