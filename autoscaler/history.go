package autoscaler

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/tidewatch/tidewatch/store"
)

// LoadHistory fills b.Metrics with each policy metric's query over the
// stored history between b.From and b.To (from a forecast window earlier,
// when the policy forecasts), at the policy's interval. The store is
// opened with store.OpenReadOnly, so a running Tidewatch may keep serving
// from it; queries run under query's limits.
func (b *Backtest) LoadHistory(ctx context.Context, storage store.Config, query store.QueryConfig, logger *slog.Logger) error {
	q, err := store.OpenReadOnly(storage, logger)
	if err != nil {
		return err
	}
	defer q.Close()
	engine := store.NewEngine(query, logger, nil)
	pc := b.Policy
	step := b.Step
	if step <= 0 {
		step = time.Duration(pc.Interval)
	}
	start := b.From
	for _, m := range pc.Metrics {
		pts, err := RangePoints(ctx, engine, q, m.Query, start, b.To, step)
		if err != nil {
			return fmt.Errorf("query %q: %w", m.Query, err)
		}
		b.Metrics = append(b.Metrics, pts)
	}
	if len(b.Metrics) == 0 || len(b.Metrics[0]) == 0 {
		return fmt.Errorf("the first metric's query %q has no data between %s and %s", pc.Metrics[0].Query, b.From.Format(time.RFC3339), b.To.Format(time.RFC3339))
	}
	return nil
}
