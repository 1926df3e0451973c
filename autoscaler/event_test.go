package autoscaler_test

import (
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/autoscaler"
	"github.com/tidewatch/tidewatch/internal/event"
)

func TestScaleEventContent(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	ext, _ := url.Parse("http://tw.example:9470/prefix/")
	base := autoscaler.ScaleEvent{
		DecisionID: "api-1-abc", Policy: "api & co", Backend: "hook", Target: "Deployment/shop/api",
		Action: autoscaler.ActionScale, Current: 2, Desired: 5, Reason: "load 10 at 2 per instance", Time: at,
	}
	labels := func(action, dir string) map[string]string {
		return map[string]string{
			"decision_id": "api-1-abc", "policy": "api & co", "backend": "hook", "target": "Deployment/shop/api",
			"action": action, "direction": dir, "severity": "info",
		}
	}
	annotations := func(summary, current, desired string) map[string]string {
		return map[string]string{
			"summary": summary, "description": "load 10 at 2 per instance",
			"current_replicas": current, "desired_replicas": desired,
		}
	}
	const decisions = "http://tw.example:9470/prefix/api/v1/autoscaler/decisions?policy=api+%26+co"
	tests := []struct {
		name string
		edit func(*autoscaler.ScaleEvent)
		ext  *url.URL
		want event.Event
	}{
		{
			name: "scale up",
			ext:  ext,
			want: event.Event{
				Name: "TidewatchScaleEvent", Labels: labels("scale", "up"),
				Annotations: annotations("api & co scaled Deployment/shop/api from 2 to 5 replicas", "2", "5"),
				Time:        at, URL: decisions,
			},
		},
		{
			name: "failed scale down",
			edit: func(e *autoscaler.ScaleEvent) { e.Current, e.Desired, e.Error = 5, 3, "503 from the hook" },
			ext:  ext,
			want: event.Event{
				Name: "TidewatchScaleEvent", Labels: labels("scale", "down"),
				Annotations: annotations("api & co could not scale Deployment/shop/api from 5 to 3 replicas: 503 from the hook", "5", "3"),
				Time:        at, URL: decisions,
			},
		},
		{
			name: "dry run without an external URL",
			edit: func(e *autoscaler.ScaleEvent) { e.Action = autoscaler.ActionDryRun },
			want: event.Event{
				Name: "TidewatchScaleEvent", Labels: labels("dry_run", "up"),
				Annotations: annotations("api & co would scale Deployment/shop/api from 2 to 5 replicas (dry run)", "2", "5"),
				Time:        at, URL: "api/v1/autoscaler/decisions?policy=api+%26+co",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := base
			if tt.edit != nil {
				tt.edit(&e)
			}
			if got := e.Event(tt.ext); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
