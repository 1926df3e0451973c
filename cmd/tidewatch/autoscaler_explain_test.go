package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/tidewatch/tidewatch/autoscaler"
	"github.com/tidewatch/tidewatch/autoscaler/backend/webhook"
	"github.com/tidewatch/tidewatch/store"
	"github.com/tidewatch/tidewatch/store/embedded"
)

// TestAutoscalerExplain runs `tidewatch autoscaler explain` against the
// autoscaler API of a manager that made one decision.
func TestAutoscalerExplain(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	cfg := embedded.DefaultConfig
	cfg.Path = t.TempDir()
	db, err := embedded.Open(cfg, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	app := db.AppenderV2(context.Background())
	app.Append(0, labels.FromStrings("__name__", "api_load"), 0, time.Now().UnixMilli(), 10, nil, nil, storage.AppendV2Options{})
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte(`{"replicas": 5}`))
	}))
	defer receiver.Close()

	m, err := autoscaler.New(autoscaler.Options{Logger: logger, Metrics: metrics.NewSet(), Engine: store.NewEngine(store.DefaultQueryConfig, logger, nil), Queryable: db})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p := autoscaler.DefaultPolicyConfig
	p.Name, p.Max = "api", 10
	p.Target = autoscaler.TargetConfig{Backend: "hook", Name: "api"}
	p.Metrics = []autoscaler.MetricConfig{{Query: "sum(api_load)", PerInstance: 2}}
	p.Interval = model.Duration(time.Hour)
	if err := m.ApplyConfig(autoscaler.Config{
		Backends: []autoscaler.BackendConfig{{Name: "hook", Type: autoscaler.TypeWebhook, Config: &webhook.Config{URL: receiver.URL}}},
		Policies: []autoscaler.PolicyConfig{p},
	}); err != nil {
		t.Fatal(err)
	}
	d, err := m.EvaluateNow(t.Context(), "api")
	if err != nil || d.Action != autoscaler.ActionScale {
		t.Fatalf("decision %+v, %v", d, err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	m.Routes(r)
	api := httptest.NewServer(r)
	defer api.Close()

	var out, errb bytes.Buffer
	deadline := time.Now().Add(10 * time.Second)
	for {
		out.Reset()
		if code := run([]string{"autoscaler", "explain", "api", "--url", api.URL}, &out, &errb); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		if strings.Contains(out.String(), "it reports 5 replicas") || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // the webhook answer arrives asynchronously
	}
	for _, want := range []string{"Policy api (hook api)", "cannot report the current count; assuming 1", "`sum(api_load)` is 10 against a per instance target of 2: it asks for 5", "scale up from 1 to 5", "It asked hook to scale to 5; it reports 5 replicas"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("explanation lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run([]string{"autoscaler", "pause", "api", "--url", api.URL}, &out, &errb); code != 0 || !strings.Contains(out.String(), "paused=true") {
		t.Errorf("pause: %d %s %s", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run([]string{"autoscaler", "policies", "--url", api.URL}, &out, &errb); code != 0 || !strings.Contains(out.String(), "api") || !strings.Contains(out.String(), "paused") {
		t.Errorf("policies: %d %s", code, out.String())
	}
	if code := run([]string{"autoscaler", "explain", "nope", "--url", api.URL}, &out, &errb); code != 1 {
		t.Errorf("unknown policy: exit %d", code)
	}
}
