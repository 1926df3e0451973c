// Package backend is the contract between the autoscaler and the systems it
// scales: a Backend reads a target's current replica count and scales it to
// a count, with the decision behind the change attached. Each implementation
// lives in its own subpackage (kubernetes, nomad, docker, webhook, exec,
// process), which owns its configuration (Config, DefaultConfig, New; see
// config.go); the autoscaler's registry builds them from configuration.
//
// Dry-run is the autoscaler's business: a backend is only called for real
// actions.
package backend

import (
	"context"
	"errors"
	"time"
)

// Backend scales targets of one orchestrator.
type Backend interface {
	// Current returns the target's replica count. It returns an error
	// wrapping ErrUnknown when the backend cannot tell (a webhook before its
	// first answer); the autoscaler then assumes the last count it asked for.
	Current(ctx context.Context, t Target) (int, error)
	// Scale asks for req.Desired replicas of t. The result's Replicas is what
	// the backend reports afterwards (-1 when it does not say).
	Scale(ctx context.Context, t Target, req Request) (Result, error)
}

// ErrUnknown is wrapped by Current when the backend cannot read the count.
var ErrUnknown = errors.New("current replicas unknown")

// Target is what a policy scales, in its backend's terms.
type Target struct {
	Kind       string `json:"kind,omitempty"`
	APIVersion string `json:"api_version,omitempty"`
	Resource   string `json:"resource,omitempty"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	Group      string `json:"group,omitempty"`
}

// Request is a scale command with the decision that produced it.
type Request struct {
	// DecisionID identifies the decision; backends use it as an idempotency key.
	DecisionID string    `json:"decision_id"`
	Policy     string    `json:"policy"`
	Current    int       `json:"current"`
	Desired    int       `json:"desired"`
	Reason     string    `json:"reason"`
	Metrics    []Metric  `json:"metrics"`
	Time       time.Time `json:"time"`
}

// Metric is one metric behind a decision.
type Metric struct {
	Query string `json:"query"`
	// Type is per_instance or utilization; Target its target value.
	Type   string  `json:"type"`
	Target float64 `json:"target"`
	// Value is nil when the query failed or returned nothing.
	Value *float64 `json:"value"`
	// Forecast is the value expected at the forecast horizon, when forecasting.
	Forecast       *float64 `json:"forecast,omitempty"`
	Recommendation int      `json:"recommendation"`
}

// Result is a backend's answer to Scale.
type Result struct {
	// Replicas is the count the backend reports after scaling; -1 when it
	// does not say.
	Replicas int `json:"replicas"`
	// Message is a short description of what happened (a status line).
	Message string `json:"message,omitempty"`
}
