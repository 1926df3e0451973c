package autoscaler_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/tidewatch/tidewatch/autoscaler"
	"github.com/tidewatch/tidewatch/store"
	"github.com/tidewatch/tidewatch/store/embedded"
)

// TestLoadHistory reads a policy's metrics from an embedded store that is
// still open for writing, as `tidewatch backtest` does beside a running
// Tidewatch.
func TestLoadHistory(t *testing.T) {
	cfg := embedded.DefaultConfig
	cfg.Path = t.TempDir()
	db, err := embedded.Open(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{db: db}
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-time.Hour)
	for ts := start; !ts.After(end); ts = ts.Add(time.Minute) {
		e.appendSample(t, "api_load", float64(ts.Sub(start)/time.Minute), ts)
	}
	p := autoscaler.DefaultPolicyConfig
	p.Name = "api"
	p.Interval = model.Duration(time.Minute)
	p.Metrics = []autoscaler.MetricConfig{{Query: "sum(api_load)", PerInstance: 10}, {Query: "sum(api_load) / 60", Utilization: 0.5}}
	st := store.DefaultConfig
	st.Embedded = cfg

	bt := autoscaler.Backtest{Policy: p, From: start, To: end}
	if err := bt.LoadHistory(t.Context(), st, store.DefaultQueryConfig, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if len(bt.Metrics) != 2 || len(bt.Metrics[0]) != 61 || len(bt.Metrics[1]) != 61 {
		t.Fatalf("loaded %d metrics, want 2 of 61 points", len(bt.Metrics))
	}
	if first, last := bt.Metrics[0][0], bt.Metrics[0][60]; !first.T.Equal(start) || first.V != 0 || last.V != 60 {
		t.Errorf("first metric from %v = %v to %v, want from %v = 0 to 60", first.T, first.V, last.V, start)
	}
	if v := bt.Metrics[1][60].V; v != 1 {
		t.Errorf("second metric ends at %v, want 1", v)
	}

	empty := autoscaler.Backtest{Policy: p, From: end.Add(time.Hour), To: end.Add(2 * time.Hour)}
	err = empty.LoadHistory(t.Context(), st, store.DefaultQueryConfig, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), `"sum(api_load)" has no data`) {
		t.Errorf("no data: %v", err)
	}
}
