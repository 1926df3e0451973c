package autoscaler_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"

	"github.com/tidewatch/tidewatch/autoscaler"
	"github.com/tidewatch/tidewatch/autoscaler/backend"
	"github.com/tidewatch/tidewatch/autoscaler/backend/webhook"
	"github.com/tidewatch/tidewatch/store"
	"github.com/tidewatch/tidewatch/store/embedded"
)

type env struct {
	db     *embedded.DB
	engine *promql.Engine
	set    *metrics.Set
}

func newEnv(t *testing.T) *env {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	cfg := embedded.DefaultConfig
	cfg.Path = t.TempDir()
	db, err := embedded.Open(cfg, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &env{db: db, engine: store.NewEngine(store.DefaultQueryConfig, logger, nil), set: metrics.NewSet()}
}

func (e *env) appendSample(t *testing.T, name string, v float64, at time.Time) {
	t.Helper()
	app := e.db.AppenderV2(context.Background())
	if _, err := app.Append(0, labels.FromStrings("__name__", name), 0, at.UnixMilli(), v, nil, nil, storage.AppendV2Options{}); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
}

func (e *env) manager(t *testing.T) *autoscaler.Manager {
	t.Helper()
	m, err := autoscaler.New(autoscaler.Options{
		Logger: slog.New(slog.DiscardHandler), Metrics: e.set, Engine: e.engine, Queryable: e.db,
		Appendable: store.Instrument(e.db, store.NewAppendMetrics(e.set, "autoscaler")),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// hook is a webhook receiver that checks signatures.
type hook struct {
	srv    *httptest.Server
	secret []byte
	mtx    sync.Mutex
	bodies []webhook.Body
	bad    int
	got    chan webhook.Body
}

func newHook(t *testing.T, secret string) *hook {
	h := &hook{secret: []byte(secret), got: make(chan webhook.Body, 100)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !webhook.Verify(h.secret, body, r.Header.Get(webhook.SignatureHeader)) {
			h.mtx.Lock()
			h.bad++
			h.mtx.Unlock()
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var b webhook.Body
		if err := json.Unmarshal(body, &b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mtx.Lock()
		h.bodies = append(h.bodies, b)
		h.mtx.Unlock()
		h.got <- b
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) count() int {
	h.mtx.Lock()
	defer h.mtx.Unlock()
	return len(h.bodies)
}

func acceptanceConfig(t *testing.T, url string, dryRun bool) autoscaler.Config {
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := autoscaler.DefaultPolicyConfig
	p.Name = "api"
	p.Target = autoscaler.TargetConfig{Backend: "hook", Kind: "Deployment", Namespace: "shop", Name: "api"}
	p.Min, p.Max = 1, 10
	p.Interval = model.Duration(200 * time.Millisecond)
	p.Metrics = []autoscaler.MetricConfig{{Query: "sum(api_load)", PerInstance: 2}}
	p.DryRun = dryRun
	return autoscaler.Config{
		Backends: []autoscaler.BackendConfig{{Name: "hook", Type: autoscaler.TypeWebhook, Config: &webhook.Config{URL: url, SecretFile: secretFile, RetryBackoff: model.Duration(10 * time.Millisecond)}}},
		Policies: []autoscaler.PolicyConfig{p},
	}
}

func run(t *testing.T, m *autoscaler.Manager) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// waitUntil polls cond until it holds or 20 s pass.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAcceptanceWebhook is the acceptance: a query returning 10 with
// per_instance 2, min 1, max 10 produces a signed webhook asking for 5
// replicas within two evaluations.
func TestAcceptanceWebhook(t *testing.T) {
	e := newEnv(t)
	e.appendSample(t, "api_load", 10, time.Now())
	h := newHook(t, "hunter2")
	m := e.manager(t)
	if err := m.ApplyConfig(acceptanceConfig(t, h.srv.URL, false)); err != nil {
		t.Fatal(err)
	}
	run(t, m)
	var b webhook.Body
	select {
	case b = <-h.got:
	case <-time.After(20 * time.Second):
		t.Fatal("no webhook")
	}
	if b.Desired != 5 || b.Current != 1 || b.Policy != "api" || b.Target.Name != "api" || len(b.Metrics) != 1 || *b.Metrics[0].Value != 10 {
		t.Errorf("webhook body = %+v", b)
	}
	var seq int
	for _, d := range m.Decisions("api", 0) {
		if d.ID == b.DecisionID {
			seq = d.Seq
		}
	}
	if seq < 1 || seq > 2 {
		t.Errorf("webhook came from evaluation %d, want the first or second", seq)
	}
	waitUntil(t, "the answer is recorded", func() bool {
		for _, d := range m.Decisions("api", 0) {
			if d.ID == b.DecisionID && d.Result != nil && !d.Result.Finished.IsZero() {
				return true
			}
		}
		return false
	})
	// Later evaluations see 5 replicas (remembered from the call) and keep them.
	waitUntil(t, "a steady decision", func() bool {
		ds := m.Decisions("api", 1)
		return len(ds) == 1 && ds[0].Current == 5 && ds[0].Action == autoscaler.ActionNone
	})
	if h.bad != 0 || h.count() != 1 {
		t.Errorf("%d calls, %d with a bad signature; want 1 and 0", h.count(), h.bad)
	}

	// The decision is in the store as series.
	q, err := e.engine.NewInstantQuery(t.Context(), e.db, nil, `tidewatch_autoscaler_desired_replicas{policy="api"}`, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	res := q.Exec(t.Context())
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if v, ok := res.Value.(promql.Vector); !ok || len(v) != 1 || v[0].F != 5 {
		t.Errorf("tidewatch_autoscaler_desired_replicas = %v", res.Value)
	}
}

func TestAcceptanceDryRun(t *testing.T) {
	e := newEnv(t)
	e.appendSample(t, "api_load", 10, time.Now())
	h := newHook(t, "hunter2")
	m := e.manager(t)
	if err := m.ApplyConfig(acceptanceConfig(t, h.srv.URL, true)); err != nil {
		t.Fatal(err)
	}
	run(t, m)
	waitUntil(t, "three evaluations", func() bool { return len(m.Decisions("api", 0)) >= 3 })
	for _, d := range m.Decisions("api", 0) {
		if d.Action != autoscaler.ActionDryRun || d.Desired != 5 {
			t.Errorf("decision %d: action %s desired %d, want dry_run 5", d.Seq, d.Action, d.Desired)
		}
	}
	if n := h.count(); n != 0 {
		t.Errorf("dry run made %d webhook calls", n)
	}
	if !strings.Contains(m.Decisions("api", 1)[0].Explain(), "Dry run: it would have scaled to 5") {
		t.Errorf("explanation: %s", m.Decisions("api", 1)[0].Explain())
	}
}

func TestAPIPauseResume(t *testing.T) {
	e := newEnv(t)
	e.appendSample(t, "api_load", 10, time.Now())
	h := newHook(t, "hunter2")
	m := e.manager(t)
	if err := m.ApplyConfig(acceptanceConfig(t, h.srv.URL, false)); err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	m.Routes(r)
	call := func(method, path string) (int, map[string]any) {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(method, path, nil))
		var body map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		return w.Code, body
	}
	if code, body := call("POST", "/api/v1/autoscaler/policies/api/pause"); code != 200 || body["data"].(map[string]any)["paused"] != true {
		t.Fatalf("pause: %d %v", code, body)
	}
	d, err := m.EvaluateNow(t.Context(), "api")
	if err != nil {
		t.Fatal(err)
	}
	if d.Action != autoscaler.ActionPaused || d.Desired != 5 {
		t.Errorf("paused decision: %s %d", d.Action, d.Desired)
	}
	if code, _ := call("POST", "/api/v1/autoscaler/policies/nope/pause"); code != 404 {
		t.Errorf("unknown policy: %d", code)
	}
	call("POST", "/api/v1/autoscaler/policies/api/resume")
	d, _ = m.EvaluateNow(t.Context(), "api")
	if d.Action != autoscaler.ActionScale {
		t.Errorf("after resume: %s", d.Action)
	}
	<-h.got
	code, body := call("GET", "/api/v1/autoscaler/policies")
	ps := body["data"].([]any)
	if code != 200 || body["status"] != "success" || len(ps) != 1 || ps[0].(map[string]any)["paused"] != false {
		t.Errorf("policies: %d %v", code, body)
	}
	code, body = call("GET", "/api/v1/autoscaler/decisions?policy=api&limit=1")
	ds := body["data"].([]any)
	if code != 200 || len(ds) != 1 || ds[0].(map[string]any)["action"] != "scale" {
		t.Errorf("decisions: %d %v", code, body)
	}
}

func autoscalerTarget(name string) backend.Target { return backend.Target{Name: name} }

// TestApplyConfigKeepsOldOnError: a configuration whose backend cannot be
// built changes nothing; an invalid one neither.
func TestApplyConfigKeepsOldOnError(t *testing.T) {
	e := newEnv(t)
	h := newHook(t, "hunter2")
	m := e.manager(t)
	good := acceptanceConfig(t, h.srv.URL, false)
	if err := m.ApplyConfig(good); err != nil {
		t.Fatal(err)
	}
	if err := m.Pause("api"); err != nil {
		t.Fatal(err)
	}
	bad := acceptanceConfig(t, h.srv.URL, false)
	bad.Backends[0].Config.(*webhook.Config).SecretFile = filepath.Join(t.TempDir(), "missing")
	bad.Policies[0].Name = "other"
	if err := m.ApplyConfig(bad); err == nil {
		t.Fatal("no error for a missing secret file")
	}
	invalid := acceptanceConfig(t, h.srv.URL, false)
	invalid.Policies[0].Max = 0
	if err := m.ApplyConfig(invalid); err == nil || !strings.Contains(err.Error(), "autoscaling.policies[0].max") {
		t.Fatalf("invalid config: %v", err)
	}
	ps := m.Policies()
	if len(ps) != 1 || ps[0].Name != "api" || !ps[0].Paused {
		t.Errorf("policies after failed applies: %+v", ps)
	}
	// A good reload keeps the pause flag.
	if err := m.ApplyConfig(acceptanceConfig(t, h.srv.URL, true)); err != nil {
		t.Fatal(err)
	}
	if ps := m.Policies(); !ps[0].Paused || !ps[0].DryRun {
		t.Errorf("after reload: %+v", ps[0])
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCapacitySizingLive: a live policy with capacity_per_instance reads
// the per-scrape value (rate() read as irate()) and the volatility of its
// rise from the store. A counter growing at 100/s for an hour that jumps to
// 300/s for its last 30 s has a one-minute rate near 200 but a per-scrape
// rate of 300: the policy recommends at least ⌈300 / 10⌉ replicas at once
// (the HPA's rate policies then take it there in steps), and its
// explanation names the per-scrape value and the headroom.
func TestCapacitySizingLive(t *testing.T) {
	e := newEnv(t)
	now := time.Now().Truncate(15 * time.Second)
	start := now.Add(-time.Hour)
	v := 0.0
	for at := start; !at.After(now); at = at.Add(15 * time.Second) {
		rate := 100.0
		if now.Sub(at) < 30*time.Second {
			rate = 300
		}
		v += rate * 15
		e.appendSample(t, "req_total", v, at)
	}
	h := newHook(t, "hunter2")
	cfg := acceptanceConfig(t, h.srv.URL, true)
	p := &cfg.Policies[0]
	p.Max, p.CapacityPerInstance = 100, 10
	p.Metrics = []autoscaler.MetricConfig{{Query: "sum(rate(req_total[1m]))", PerInstance: 7}}
	m := e.manager(t)
	if err := m.ApplyConfig(cfg); err != nil {
		t.Fatal(err)
	}
	run(t, m)
	waitUntil(t, "an evaluation", func() bool { return len(m.Decisions("api", 0)) >= 1 })
	d := m.Decisions("api", 1)[0]
	if d.Raw < 30 || d.Raw > 40 || d.Desired != 5 {
		t.Errorf("recommendation %d, desired %d; want ⌈(300 + headroom) / 10⌉ in [30, 40], and 5 after the rate policies\n%s", d.Raw, d.Desired, d.Explain())
	}
	for _, want := range []string{"per-scrape value 300", "headroom", "capacity 10 per instance"} {
		if !strings.Contains(d.Explain(), want) {
			t.Errorf("explanation lacks %q:\n%s", want, d.Explain())
		}
	}
}
