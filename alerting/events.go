package alerting

import (
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/notifier"

	"github.com/tidewatch/tidewatch/internal/event"
)

// EventDuration is how long an event stays firing before it resolves by
// itself: long enough to outlast a route's group_wait.
const EventDuration = 5 * time.Minute

// Event is something Tidewatch did that the notification receivers should
// hear about, such as a scale action. It is delivered as an alert named
// Name with Labels (which must tell two events apart) and Annotations.
type Event = event.Event

// SendEvent delivers e as a short-lived alert to the built-in notifier and
// to the configured Alertmanagers, the way rule alerts go.
func (a *Alerting) SendEvent(e Event) {
	b := labels.NewBuilder(labels.EmptyLabels())
	for k, v := range e.Labels {
		b.Set(k, v)
	}
	b.Set(labels.AlertName, e.Name)
	ann := labels.NewBuilder(labels.EmptyLabels())
	for k, v := range e.Annotations {
		ann.Set(k, v)
	}
	na := &notifier.Alert{
		Labels:       b.Labels(),
		Annotations:  ann.Labels(),
		StartsAt:     e.Time,
		EndsAt:       e.Time.Add(EventDuration),
		GeneratorURL: e.URL,
	}
	a.sendBuiltin(na)
	a.notifier.Send(na)
}
