package autoscaler_test

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/autoscaler"
	"github.com/tidewatch/tidewatch/autoscaler/backend/kubernetes"
	"github.com/tidewatch/tidewatch/autoscaler/backend/webhook"
	"github.com/tidewatch/tidewatch/internal/config"
)

const testdata = "../testdata/autoscaling"

func TestConfigGood(t *testing.T) {
	cfg, err := config.Load(filepath.Join(testdata, "full.good.yml"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Autoscaling
	if len(a.Backends) != 6 || len(a.Policies) != 3 {
		t.Fatalf("got %d backends and %d policies", len(a.Backends), len(a.Policies))
	}
	home, _ := os.UserHomeDir()
	if got := a.Backends[0].Config.(*kubernetes.Config).Kubeconfig; got != filepath.Join(home, ".kube/config") {
		t.Errorf("kubeconfig = %q", got)
	}
	dir, _ := filepath.Abs(testdata)
	if got := a.Backends[3].Config.(*webhook.Config).SecretFile; got != filepath.Join(dir, "secrets/hook") {
		t.Errorf("secret_file = %q, want it under %s", got, dir)
	}
	api, workers := a.Policies[0], a.Policies[1]
	if api.Forecast == nil || api.Forecast.Method != "holt_winters" || len(api.Schedule) != 1 {
		t.Errorf("api policy = %+v", api)
	}
	// Defaults, as the HPA's.
	if workers.Min != 1 || workers.Tolerance != 0.1 || time.Duration(workers.Interval) != 15*time.Second {
		t.Errorf("workers defaults: min %d tolerance %v interval %v", workers.Min, workers.Tolerance, workers.Interval)
	}
	if got := time.Duration(workers.Behavior.ScaleDown.Stabilization); got != time.Minute {
		t.Errorf("scale_down stabilization = %v, want 1m", got)
	}
	if len(workers.Behavior.ScaleDown.Policies) != 1 || len(workers.Behavior.ScaleUp.Policies) != 2 || workers.Behavior.ScaleUp.Select != "max" {
		t.Errorf("default rate policies not kept: %+v", workers.Behavior)
	}
	if workers.OnMetricError.Fallback != 5 || api.OnMetricError.Fallback != 0 {
		t.Errorf("on_metric_error = %v / %v", workers.OnMetricError, api.OnMetricError)
	}
	if workers.Forecast.Method != "linear" || time.Duration(workers.Forecast.Window) != 30*time.Minute {
		t.Errorf("forecast defaults = %+v", workers.Forecast)
	}
	if !a.Policies[2].DryRun {
		t.Error("dry_run not read")
	}
}

func TestConfigBad(t *testing.T) {
	tests := []struct {
		file string
		want []string // "line: field: message" substrings
	}{
		{"bad.bad.yml", []string{
			"3: autoscaling.backends[0].url: not a field of a kubernetes backend",
			"4: autoscaling.backends[1].url: must be an http:// or https:// URL",
			"5: autoscaling.backends[2].name: \"hook\" is already the name of another backend",
			"5: autoscaling.backends[2].type: unknown backend type \"carrier-pigeon\"",
			"8: autoscaling.policies[0].target.backend: no backend is named \"nope\"",
			"10: autoscaling.policies[0].max: must not be less than min (5)",
			"11: autoscaling.policies[0].interval: must be positive",
			"13: autoscaling.policies[0].metrics[0].query: invalid PromQL",
			"14: autoscaling.policies[0].metrics[1]: set one of per_instance and utilization, not both",
			"15: autoscaling.policies[0].forecast.method: \"arima\" is neither holt_winters nor linear",
			"16: autoscaling.policies[0].tolerance: must be in [0, 1)",
			"18: autoscaling.policies[0].behavior.scale_up.select: \"most\" is not max, min or disabled",
			"18: autoscaling.policies[0].behavior.scale_up.policies[0].type: \"bananas\" is neither percent nor pods",
			"18: autoscaling.policies[0].behavior.scale_up.policies[0].value: must be positive",
			"19: autoscaling.policies[0].schedule[0].cron: \"0 8 * *\": want 5 fields",
		}},
		{"on-metric-error.bad.yml", []string{`9: autoscaling.policies[0].on_metric_error: "panic" is neither hold nor {fallback: N}`}},
		{"unknown-key.bad.yml", []string{`8: autoscaling.policies[0].metric: unknown field (did you mean "metrics"?)`}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := config.Load(filepath.Join(testdata, tt.file), slog.New(slog.DiscardHandler))
			var ps config.Problems
			if !errors.As(err, &ps) {
				t.Fatalf("err = %v, want problems", err)
			}
			got := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in\n%s", w, got)
				}
			}
		})
	}
}

func TestOnMetricErrorYAML(t *testing.T) {
	if got := (autoscaler.OnMetricError{Fallback: 3}).String(); got != "fallback 3" {
		t.Errorf("String = %q", got)
	}
}
