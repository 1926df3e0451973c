// Package analysis is Tidewatch's capacity analytics (tidewatch analyze,
// GET /api/v1/autoscaler/analysis, the status UI's Analysis page): from
// stored history it estimates, per job with an objective (analysis
// .objectives), what one instance serves before its latency or error ratio
// breaks the objective, recommends a policy's sizing keys (per_instance,
// capacity_per_instance, min, max and schedule floors), and prices today's
// settings against the recommended ones and a static peak provisioning by
// replaying the stored load through the autoscaler's reference model.
//
// The estimator is a queueing fit (fit.go): latency ≈ base/(1 − load/
// saturation), so 1/latency is linear in the per-instance load and its zero
// is the saturation point; the objective breaks where the objective's
// latency reaches its threshold, saturation × (1 − base/threshold). A
// bootstrap over the samples gives the confidence interval, and data that
// cannot support a fit (too few samples, too narrow a load range, latency
// not rising with load) is reported as such (ErrTooLittleData), never
// extrapolated.
package analysis
