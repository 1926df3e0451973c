package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/internal/testinfra"
)

// TestAlertingLatencyComparison measures the time from a condition becoming
// true (the exporter's value changing) to the webhook receiving the
// notification, for Tidewatch alone and for Prometheus 2.42 + Alertmanager
// 0.25, on the same exporter and rule (for: 0s, group_wait: 0s, scrape and
// evaluation every 1s), in one run. It is a benchmark, not a check: it runs
// only with TIDEWATCH_BENCH=1 and reports its figures with t.Log.
func TestAlertingLatencyComparison(t *testing.T) {
	if os.Getenv("TIDEWATCH_BENCH") == "" {
		t.Skip("set TIDEWATCH_BENCH=1 to run the alert latency comparison")
	}
	const trials = 10
	ctl := newControl(t)
	twHook, promHook := newHookServer(t), newHookServer(t)
	route := "route: {receiver: hook, group_by: [alertname], group_wait: 0s, group_interval: 1s, repeat_interval: 1h}\n"

	am := testinfra.StartAlertmanager(t, route+"receivers:\n  - name: hook\n    webhook_configs: [{url: \""+promHook.srv.URL+"/hook\", send_resolved: true}]\n")
	promDir := t.TempDir()
	rules := "groups:\n  - name: bench\n    rules:\n      - alert: ControlHigh\n        expr: tw_ctl > 5\n"
	if err := os.WriteFile(filepath.Join(promDir, "rules.yml"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	testinfra.StartPrometheus(t, `global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [`+filepath.Join(promDir, "rules.yml")+`]
alerting:
  alertmanagers:
    - static_configs: [{targets: ["`+am.Addr+`"]}]
scrape_configs:
  - job_name: ctl
    static_configs: [{targets: ["`+ctl.addr+`"]}]
`)

	tw := newTidewatch(t, "", "")
	tw.writeRawConfig(alertingConfig(tw, ctl, "notifications:\n  "+strings.ReplaceAll(route, "\n", "\n  ")+
		"receivers:\n    - name: hook\n      webhook_configs: [{url: \""+twHook.srv.URL+"/hook\", send_resolved: true}]\n"))
	tw.start()
	waitSamples(t, tw, `tw_ctl`, 3, 30*time.Second)

	wait := func(h *hookServer, status string) time.Time {
		for {
			m := h.next(t, status)
			if m.GroupLabels["alertname"] == "ControlHigh" && m.Status == status {
				return m.at
			}
		}
	}
	var twLat, promLat []time.Duration
	for range trials {
		raised := time.Now()
		ctl.v.Store(10)
		twLat = append(twLat, wait(twHook, "firing").Sub(raised))
		promLat = append(promLat, wait(promHook, "firing").Sub(raised))
		ctl.v.Store(0)
		wait(twHook, "resolved")
		wait(promHook, "resolved")
	}
	slices.Sort(twLat)
	slices.Sort(promLat)
	t.Logf("condition → webhook over %d trials (min / median / max):", trials)
	t.Logf("  tidewatch:                %v / %v / %v", twLat[0], twLat[trials/2], twLat[trials-1])
	t.Logf("  prometheus + alertmanager: %v / %v / %v", promLat[0], promLat[trials/2], promLat[trials-1])
	t.Logf("  median ratio tidewatch / prometheus+alertmanager: %.2f", float64(twLat[trials/2])/float64(promLat[trials/2]))
}
