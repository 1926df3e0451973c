package autoscaler

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/tidewatch/tidewatch/internal/event"
)

// EventSink receives the events Tidewatch tells the notification
// receivers; alerting.Alerting implements it. It is the one interface every
// producer of events sends to: the scale events here, and the membership
// and deployment events to come plug into the same method.
type EventSink interface {
	SendEvent(event.Event)
}

// ScaleEventName is the alert name of scale events, for routes to match.
const ScaleEventName = "TidewatchScaleEvent"

// ScaleEvent is a scale action or dry-run decision told to the
// notification receivers.
type ScaleEvent struct {
	DecisionID string
	Policy     string
	Backend    string
	Target     string
	// Action is ActionScale or ActionDryRun.
	Action           string
	Current, Desired int
	Reason           string
	// Error is the backend's error, if the scale call failed.
	Error string
	Time  time.Time
}

// Event turns e into a notification: an alert named TidewatchScaleEvent,
// firing for a few minutes, whose URL is the policy's decisions under ext
// (the external URL; nil gives a relative URL).
func (e ScaleEvent) Event(ext *url.URL) event.Event {
	dir := "up"
	if e.Desired < e.Current {
		dir = "down"
	}
	summary := fmt.Sprintf("%s scaled %s from %d to %d replicas", e.Policy, e.Target, e.Current, e.Desired)
	switch {
	case e.Error != "":
		summary = fmt.Sprintf("%s could not scale %s from %d to %d replicas: %s", e.Policy, e.Target, e.Current, e.Desired, e.Error)
	case e.Action != ActionScale:
		summary = fmt.Sprintf("%s would scale %s from %d to %d replicas (dry run)", e.Policy, e.Target, e.Current, e.Desired)
	}
	if ext == nil {
		ext = &url.URL{}
	}
	return event.Event{
		Name: ScaleEventName,
		Labels: map[string]string{
			"decision_id": e.DecisionID, "policy": e.Policy, "backend": e.Backend, "target": e.Target,
			"action": e.Action, "direction": dir, "severity": "info",
		},
		Annotations: map[string]string{
			"summary": summary, "description": e.Reason,
			"current_replicas": strconv.Itoa(e.Current), "desired_replicas": strconv.Itoa(e.Desired),
		},
		Time: e.Time,
		URL:  ext.JoinPath("api/v1/autoscaler/decisions").String() + "?policy=" + url.QueryEscape(e.Policy),
	}
}
