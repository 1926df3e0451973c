// Package event is the shape of "something Tidewatch did" that the
// notification receivers hear about: a scale action today, membership and
// deployment changes later. It is a leaf package so that the producers
// (autoscaler, …) and the deliverer (alerting) share the type without
// importing each other; each producer declares the one-method sink it sends
// to (autoscaler.EventSink), and alerting.Alerting implements it.
package event

import "time"

// Event is delivered as an alert named Name with Labels (which must tell two
// events apart) and Annotations, firing from Time for a few minutes.
type Event struct {
	Name        string
	Labels      map[string]string
	Annotations map[string]string
	Time        time.Time
	// URL is where the event is explained (the alert's generator URL).
	URL string
}
