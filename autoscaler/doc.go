// Package autoscaler turns load and its trend into scale commands.
//
// A policy (PolicyConfig) names a target on a backend, replica limits, PromQL
// metrics with per-instance or utilization targets, an optional forecast,
// the Kubernetes HPA's behavior (stabilization windows and rate policies),
// what a failed metric does, schedule floors and dry-run. Policy.Decide is
// the decision engine: a pure function of the policy, the State of earlier
// evaluations and an Input (time, current replicas, observations), shared by
// the live Manager and by Backtest.
//
// The Manager evaluates every policy on its interval against the store
// (through a promql.Engine), acts through the backends (one action in flight
// per target; dry-run and pause handled here, not in the backends), records
// every decision for the HTTP API (Routes) and appends the
// tidewatch_autoscaler_* series, and tells scale events to an EventSink
// (the notification receivers). Backends live in autoscaler/backend/<name>/
// behind the two-method backend.Backend interface; each owns its typed
// Config. Adding a backend is adding that one folder and one line in the
// registry, backendTypes in registry.go. docs/autoscaling.md describes the
// algorithm, the backends and the webhook wire format.
package autoscaler
