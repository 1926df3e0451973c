// Package alertingtest is the rule-evaluation suite every storage backend
// must pass: recording rules feeding alerting rules, templating, for and
// keep_firing_for, ALERTS series, delivery through the built-in notifier,
// and restore of alert state and of the notification log after a restart.
package alertingtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/client_golang/prometheus"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	yaml "go.yaml.in/yaml/v2"

	"github.com/tidewatch/tidewatch/alerting"
	"github.com/tidewatch/tidewatch/alerting/notify"
	"github.com/tidewatch/tidewatch/store"
)

// OpenFunc opens the backend under test with its data in dir; opened again
// on the same dir (after Close) it must find the data committed before.
type OpenFunc func(t *testing.T, dir string) store.Store

// Run runs the suite against the backend that open opens.
func Run(t *testing.T, open OpenFunc) {
	t.Run("recording feeds alerting", func(t *testing.T) { t.Parallel(); testLifecycle(t, open) })
	t.Run("restart restores state", func(t *testing.T) { t.Parallel(); testRestart(t, open) })
}

const lifecycleRules = `
groups:
  - name: queue
    interval: 100ms
    labels:
      team: infra
    rules:
      - record: job:tw_queue:max
        expr: max by (job) (tw_queue)
      - alert: QueueHigh
        expr: job:tw_queue:max > 5
        for: 300ms
        keep_firing_for: 300ms
        labels:
          severity: page
        annotations:
          summary: 'queue of {{ $labels.job }} is {{ $value | humanize }}'
          link: '{{ $externalURL }}/alerts'
`

// webhook is the receiver of the built-in notifier in the suite.
type webhook struct {
	*httptest.Server
	msgs chan map[string]any
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{msgs: make(chan map[string]any, 100)}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		w.msgs <- m
	}))
	t.Cleanup(w.Close)
	return w
}

func (w *webhook) next(t *testing.T, what string) map[string]any {
	t.Helper()
	select {
	case m := <-w.msgs:
		return m
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no webhook call within 30s", what)
		return nil
	}
}

// instance is one running alerting component on a store.
type instance struct {
	a      *alerting.Alerting
	engine *promql.Engine
	st     store.Store
	cancel context.CancelFunc
	done   chan error
}

func (i *instance) stop(t *testing.T) {
	t.Helper()
	i.cancel()
	if err := <-i.done; err != nil {
		t.Errorf("alerting run: %v", err)
	}
}

func start(t *testing.T, st store.Store, dir, ruleText, hookURL string) *instance {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	ruleFile := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(ruleFile, []byte(ruleText), 0o644); err != nil {
		t.Fatal(err)
	}
	prom, err := promconfig.Load("global:\n  evaluation_interval: 100ms\nrule_files: ["+ruleFile+"]\n", logger)
	if err != nil {
		t.Fatal(err)
	}
	var n notify.Config
	if err := yaml.UnmarshalStrict([]byte(`
route: {receiver: hook, group_by: [alertname], group_wait: 0s, group_interval: 100ms, repeat_interval: 1h}
receivers:
  - name: hook
    webhook_configs: [{url: "`+hookURL+`", send_resolved: true}]
`), &n); err != nil {
		t.Fatal(err)
	}
	engine := store.NewEngine(store.DefaultQueryConfig, logger, nil)
	a, err := alerting.New(alerting.Options{
		Logger:      logger,
		Registerer:  prometheus.NewRegistry(),
		Metrics:     metrics.NewSet(),
		Engine:      engine,
		Queryable:   st,
		Appendable:  st,
		ExternalURL: &url.URL{Scheme: "http", Host: "tidewatch.test:9470"},
		DataDir:     filepath.Join(dir, "notify"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ApplyConfig(prom, n); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	i := &instance{a: a, engine: engine, st: st, cancel: cancel, done: make(chan error, 1)}
	go func() { i.done <- a.Run(ctx) }()
	return i
}

func appendSample(t *testing.T, st store.Store, ls labels.Labels, ts time.Time, v float64) {
	t.Helper()
	app := st.AppenderV2(context.Background())
	if _, err := app.Append(0, ls, 0, ts.UnixMilli(), v, nil, nil, storage.AppendV2Options{}); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func (i *instance) query(t *testing.T, q string) promql.Vector {
	t.Helper()
	qry, err := i.engine.NewInstantQuery(context.Background(), i.st, nil, q, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer qry.Close()
	res := qry.Exec(context.Background())
	if res.Err != nil {
		t.Fatalf("%s: %v", q, res.Err)
	}
	v, _ := res.Vector()
	return v
}

// waitFor polls cond every 20 ms for up to 30 s.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
	}
	t.Fatalf("%s: not reached within 30s (last: %s)", what, last)
}

func activeAlert(i *instance, name string) *rules.Alert {
	for _, r := range i.a.Rules().AlertingRules() {
		if r.Name() == name {
			if as := r.ActiveAlerts(); len(as) > 0 {
				return as[0]
			}
		}
	}
	return nil
}

func testLifecycle(t *testing.T, open OpenFunc) {
	dir := t.TempDir()
	st := open(t, filepath.Join(dir, "store"))
	t.Cleanup(func() { st.Close() })
	hook := newWebhook(t)
	series := labels.FromStrings("__name__", "tw_queue", "job", "api", "instance", "a")
	appendSample(t, st, series, time.Now(), 10)
	i := start(t, st, dir, lifecycleRules, hook.URL)
	defer i.stop(t)

	// inactive → pending → firing.
	var sawPending bool
	waitFor(t, "QueueHigh firing", func() (bool, string) {
		a := activeAlert(i, "QueueHigh")
		if a == nil {
			return false, "no active alert"
		}
		sawPending = sawPending || a.State == rules.StatePending
		return a.State == rules.StateFiring, a.State.String()
	})
	if !sawPending {
		t.Error("QueueHigh was never seen pending before firing")
	}

	msg := hook.next(t, "firing notification")
	if msg["status"] != "firing" || msg["version"] != "4" {
		t.Fatalf("notification = %v", msg)
	}
	alert := msg["alerts"].([]any)[0].(map[string]any)
	ls := alert["labels"].(map[string]any)
	for k, v := range map[string]string{"alertname": "QueueHigh", "job": "api", "team": "infra", "severity": "page"} {
		if ls[k] != v {
			t.Errorf("label %s = %v, want %s (labels %v)", k, ls[k], v, ls)
		}
	}
	ann := alert["annotations"].(map[string]any)
	if ann["summary"] != "queue of api is 10" {
		t.Errorf("summary = %q", ann["summary"])
	}
	if ann["link"] != "http://tidewatch.test:9470/alerts" {
		t.Errorf("link = %q", ann["link"])
	}
	if g, _ := alert["generatorURL"].(string); !strings.HasPrefix(g, "http://tidewatch.test:9470/graph?g0.expr=") {
		t.Errorf("generatorURL = %q", g)
	}

	// The recording rule's series and ALERTS are in the store.
	waitFor(t, "job:tw_queue:max recorded", func() (bool, string) {
		v := i.query(t, `job:tw_queue:max{job="api",team="infra"}`)
		return len(v) == 1 && v[0].F == 10, fmt.Sprint(v)
	})
	waitFor(t, "ALERTS firing stored", func() (bool, string) {
		v := i.query(t, `ALERTS{alertname="QueueHigh",alertstate="firing",job="api",severity="page"}`)
		return len(v) == 1, fmt.Sprint(v)
	})

	// The condition clears: keep_firing_for holds the alert, then it resolves.
	appendSample(t, st, series, time.Now(), 1)
	waitFor(t, "QueueHigh kept firing", func() (bool, string) {
		a := activeAlert(i, "QueueHigh")
		if a == nil {
			return false, "no active alert"
		}
		return !a.KeepFiringSince.IsZero(), fmt.Sprintf("%s since %v", a.State, a.KeepFiringSince)
	})
	for {
		msg = hook.next(t, "resolved notification")
		if msg["status"] == "resolved" {
			break
		}
		if msg["status"] != "firing" {
			t.Fatalf("notification = %v", msg)
		}
	}
	alert = msg["alerts"].([]any)[0].(map[string]any)
	if alert["status"] != "resolved" || alert["endsAt"] == "0001-01-01T00:00:00Z" {
		t.Errorf("resolved alert = %v", alert)
	}
}

const restartRules = `
groups:
  - name: restart
    interval: 100ms
    rules:
      - alert: SlowToFire
        expr: tw_load > 5
        for: 1h
      - alert: FiresFast
        expr: tw_load > 5
        for: 1s
`

// testRestart stops and restarts the alerting component on the same store
// and data dir: the pending alert keeps its "for" progress, the firing one
// fires again at once, and the built-in notifier does not notify it twice.
func testRestart(t *testing.T, open OpenFunc) {
	dir := t.TempDir()
	storeDir := filepath.Join(dir, "store")
	st := open(t, storeDir)
	hook := newWebhook(t)
	appendSample(t, st, labels.FromStrings("__name__", "tw_load", "instance", "a"), time.Now(), 10)

	first := start(t, st, dir, restartRules, hook.URL)
	waitFor(t, "FiresFast firing and SlowToFire pending", func() (bool, string) {
		f, s := activeAlert(first, "FiresFast"), activeAlert(first, "SlowToFire")
		return f != nil && f.State == rules.StateFiring && s != nil && s.State == rules.StatePending, fmt.Sprint(f, s)
	})
	// ALERTS_FOR_STATE holds whole seconds: let the alerts be active for
	// more than two, so that the stored state says FiresFast was firing,
	// and for six, so that SlowToFire's restored progress (shifted by the
	// downtime) reaches back before the restart even when the restart
	// itself is slow (under -race on a loaded machine it takes seconds).
	pendingSince := activeAlert(first, "SlowToFire").ActiveAt
	firingSince := activeAlert(first, "FiresFast").ActiveAt
	waitFor(t, "alerts active for 6s", func() (bool, string) {
		return time.Since(pendingSince) > 6*time.Second, time.Since(pendingSince).String()
	})
	if msg := hook.next(t, "FiresFast notification"); msg["status"] != "firing" {
		t.Fatalf("notification = %v", msg)
	}
	// ALERTS_FOR_STATE must be stored for the restore.
	waitFor(t, "ALERTS_FOR_STATE stored", func() (bool, string) {
		v := first.query(t, `ALERTS_FOR_STATE`)
		return len(v) == 2, fmt.Sprint(v)
	})
	first.stop(t)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	restarted := time.Now()
	st = open(t, storeDir)
	t.Cleanup(func() { st.Close() })
	second := start(t, st, dir, restartRules, hook.URL)
	defer second.stop(t)
	waitFor(t, "rules restored", func() (bool, string) {
		for _, r := range second.a.Rules().AlertingRules() {
			if !r.Restored() {
				return false, r.Name() + " not restored"
			}
		}
		return true, ""
	})
	waitFor(t, "FiresFast firing again", func() (bool, string) {
		a := activeAlert(second, "FiresFast")
		return a != nil && a.State == rules.StateFiring, fmt.Sprint(a)
	})
	if a := activeAlert(second, "FiresFast"); !a.ActiveAt.Equal(firingSince.Truncate(time.Second)) {
		t.Errorf("FiresFast active since %v after restart, want %v (restored, in whole seconds)", a.ActiveAt, firingSince.Truncate(time.Second))
	}
	s := activeAlert(second, "SlowToFire")
	if s == nil || s.State != rules.StatePending {
		t.Fatalf("SlowToFire after restart: %v", s)
	}
	// "for" keeps its progress: the alert is active since before the
	// restart (shifted by the downtime, as Prometheus does), not from zero.
	if !s.ActiveAt.Before(restarted.Add(-time.Second)) {
		t.Errorf("SlowToFire active since %v, after the restart at %v: for restarted from zero (was %v)", s.ActiveAt, restarted, pendingSince)
	}
	// No second notification inside repeat_interval (1h): several
	// evaluation and group intervals pass without a call.
	select {
	case msg := <-hook.msgs:
		t.Errorf("notification after restart: %v", msg)
	case <-time.After(time.Second):
	}
}
