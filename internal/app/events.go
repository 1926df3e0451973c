package app

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/tidewatch/tidewatch/alerting"
	"github.com/tidewatch/tidewatch/autoscaler"
)

func scaleEvent(e autoscaler.ScaleEvent, ext *url.URL) alerting.Event {
	dir := "up"
	if e.Desired < e.Current {
		dir = "down"
	}
	summary := fmt.Sprintf("%s scaled %s from %d to %d replicas", e.Policy, e.Target, e.Current, e.Desired)
	switch {
	case e.Error != "":
		summary = fmt.Sprintf("%s could not scale %s from %d to %d replicas: %s", e.Policy, e.Target, e.Current, e.Desired, e.Error)
	case e.Action != autoscaler.ActionScale:
		summary = fmt.Sprintf("%s would scale %s from %d to %d replicas (dry run)", e.Policy, e.Target, e.Current, e.Desired)
	}
	return alerting.Event{
		Name: "TidewatchScaleEvent",
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
