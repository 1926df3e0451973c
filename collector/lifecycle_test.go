package collector_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/tidewatch/tidewatch/collector"
	"github.com/tidewatch/tidewatch/store/embedded"
)

// TestCloseWithoutRun: a collector that never ran releases its goroutines
// on Close, and Close is idempotent, also after Run.
func TestCloseWithoutRun(t *testing.T) {
	db, err := embedded.Open(embedded.Config{Path: t.TempDir(), Retention: model.Duration(time.Hour)}, quietLogger, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	before := runtime.NumGoroutine()
	for range 5 {
		col, err := collector.New(collector.Options{Logger: quietLogger, Registerer: prometheus.NewRegistry(), Metrics: metrics.NewSet(), Appendable: db})
		if err != nil {
			t.Fatal(err)
		}
		col.Close()
		col.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Errorf("%d goroutines after closing 5 collectors that never ran, %d before", n, before)
	}

	col, err := collector.New(collector.Options{Logger: quietLogger, Registerer: prometheus.NewRegistry(), Metrics: metrics.NewSet(), Appendable: db})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- col.Run(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	col.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after Close: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return after Close")
	}
	col.Close()
}

// TestApplyConfigAllOrNothing: a configuration whose last job cannot build
// its HTTP client (a CA file that does not exist) is refused by Check and
// ApplyConfig, and the running jobs keep being scraped.
func TestApplyConfigAllOrNothing(t *testing.T) {
	exp := newExporter(t, staticHandler(textContentType, "x_total 1\n"))
	good := fmt.Sprintf("global: {scrape_interval: 100ms, scrape_timeout: 100ms}\nscrape_configs:\n- job_name: a\n  static_configs: [{targets: [%q]}]\n", exp.addr())
	h := newHarness(t, good, harnessOpts{})
	h.waitScrapes("a", 1)

	bad := good + fmt.Sprintf("- job_name: b\n  static_configs: [{targets: [%q]}]\n  tls_config: {ca_file: %q}\n", exp.addr(), filepath.Join(t.TempDir(), "missing-ca.pem"))
	cfg := loadConfig(t, bad)
	if err := h.col.Check(cfg); err == nil || !strings.Contains(err.Error(), `"b"`) {
		t.Fatalf("Check of a job with a missing CA file: %v, want an error naming job b", err)
	}
	if err := h.col.ApplyConfig(cfg); err == nil {
		t.Fatal("ApplyConfig took a configuration Check refuses")
	}
	if pools := h.col.Targets().ScrapePools(); strings.Join(pools, ",") != "a" {
		t.Errorf("scrape pools after a refused config: %v, want [a]", pools)
	}
	n := h.scrapes("a")
	h.waitScrapes("a", n+2)
}
