package notify

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/alertmanager/alert"
	amnotify "github.com/prometheus/alertmanager/notify"
)

// notifyMetrics counts notifications per receiver and integration in
// Tidewatch's metrics set.
type notifyMetrics struct {
	set *metrics.Set
}

func newNotifyMetrics(set *metrics.Set) *notifyMetrics { return &notifyMetrics{set: set} }

// wrap counts the attempts of one integration of receiver rcv.
func (m *notifyMetrics) wrap(i amnotify.Integration, rcv string) amnotify.Integration {
	labels := fmt.Sprintf(`{receiver=%q,integration=%q}`, rcv, i.Name())
	c := &countingNotifier{
		next:   i,
		sent:   m.set.GetOrCreateCounter("tidewatch_notifications_sent_total" + labels),
		failed: m.set.GetOrCreateCounter("tidewatch_notifications_failed_total" + labels),
	}
	return amnotify.NewIntegration(c, &c.next, i.Name(), i.Index(), rcv)
}

// wrapRouting counts, per receiver, the notifications given up after every
// retry (dropped).
func (m *notifyMetrics) wrapRouting(rs amnotify.RoutingStage) amnotify.RoutingStage {
	out := make(amnotify.RoutingStage, len(rs))
	for rcv, stage := range rs {
		dropped := m.set.GetOrCreateCounter(fmt.Sprintf(`tidewatch_notifications_dropped_total{receiver=%q}`, rcv))
		out[rcv] = amnotify.StageFunc(func(ctx context.Context, l *slog.Logger, alerts ...*alert.Alert) (context.Context, []*alert.Alert, error) {
			ctx, as, err := stage.Exec(ctx, l, alerts...)
			if err != nil {
				dropped.Inc()
			}
			return ctx, as, err
		})
	}
	return out
}

type countingNotifier struct {
	next         amnotify.Integration
	sent, failed *metrics.Counter
}

func (c *countingNotifier) Notify(ctx context.Context, alerts ...*alert.Alert) amnotify.NotifyVerdict {
	v := c.next.Notify(ctx, alerts...)
	if v.Err() != nil {
		c.failed.Inc()
	} else {
		c.sent.Inc()
	}
	return v
}
