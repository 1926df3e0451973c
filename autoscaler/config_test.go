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
	"github.com/tidewatch/tidewatch/config"
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
		{"capacity.bad.yml", []string{`10: autoscaling.policies[0].capacity_per_instance: must not be below the first metric's per_instance (7)`}},
		{"headroom.bad.yml", []string{
			`11: autoscaling.policies[0].headroom.deviations: must be between 0 and 10`,
			`11: autoscaling.policies[0].headroom.horizon: must be at most half the window (1m0s)`,
			`12: autoscaling.policies[0].scale_up_query: `,
			`18: autoscaling.policies[1].headroom: needs capacity_per_instance`,
			`19: autoscaling.policies[1].scale_up_query: needs capacity_per_instance`,
		}},
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

// TestConfigBackendKeys: each backend type's keys are decoded into its own
// Config, and a problem in one still names file line and field.
func TestConfigBackendKeys(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"bad value of a key of the type", `autoscaling:
  backends:
    - {name: hook, type: webhook, url: "http://x"}
    - name: swarm
      type: docker
      host: unix:///var/run/docker.sock
      timeout: soon
`, []string{`7: autoscaling.backends[1].timeout: not a valid duration string: "soon"`}},
		{"key of another type, and checks of the type", `autoscaling:
  backends:
    - {name: "n", type: nomad, adress: "http://nomad:4646"}
    - {name: p, type: process, command: [x], base_port: 70000}
  policies:
    - {name: api, target: {backend: "n", name: api}, max: 3, metrics: [{query: up, per_instance: 1}]}
`, []string{
			`3: autoscaling.backends[0].adress: not a field of a nomad backend`,
			`3: autoscaling.backends[0].address: must not be empty`,
			`4: autoscaling.backends[1].base_port: must be a port number`,
			`6: autoscaling.policies[0].target.group: must name the task group of a nomad job`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "tidewatch.yml")
			if err := os.WriteFile(file, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := config.Load(file, slog.New(slog.DiscardHandler))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in\n%v", w, err)
				}
			}
		})
	}
}

// TestConfigBackendValuesAsWritten: values read as yaml.v2 reads them into
// the field's type, not through a generic value (on stays "on", 010 "010").
func TestConfigBackendValuesAsWritten(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tidewatch.yml")
	text := `autoscaling:
  backends:
    - {name: 010, type: webhook, url: "http://x", headers: {X-Flag: on, X-Ratio: 1.0}}
`
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Autoscaling.Backends[0]
	h := b.Config.(*webhook.Config).Headers
	if b.Name != "010" || h["X-Flag"] != "on" || h["X-Ratio"] != "1.0" {
		t.Errorf("name %q, headers %v", b.Name, h)
	}
}

// TestCapacitySizingDefaults: through the configuration loader, a policy
// with capacity_per_instance gets scale-down stabilization 10m unless it
// sets one, and the other policies keep the HPA's 5m.
func TestCapacitySizingDefaults(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tidewatch.yml")
	doc := `autoscaling:
  backends: [{name: hook, type: webhook, url: "http://127.0.0.1:1/scale"}]
  policies:
    - {name: a, target: {backend: hook, name: a}, max: 9, metrics: [{query: 'sum(rate(x[1m]))', per_instance: 7}], capacity_per_instance: 10}
    - {name: b, target: {backend: hook, name: b}, max: 9, metrics: [{query: 'sum(rate(x[1m]))', per_instance: 7}], capacity_per_instance: 10, behavior: {scale_down: {stabilization: 2m}}}
    - {name: c, target: {backend: hook, name: c}, max: 9, metrics: [{query: 'sum(rate(x[1m]))', per_instance: 7}]}
`
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]time.Duration{"a": 10 * time.Minute, "b": 2 * time.Minute, "c": 5 * time.Minute} {
		p, _ := cfg.Autoscaling.Policy(name)
		if got := time.Duration(p.Behavior.ScaleDown.Stabilization); got != want {
			t.Errorf("policy %s: scale-down stabilization %s, want %s", name, got, want)
		}
	}
}
