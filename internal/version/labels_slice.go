//go:build slicelabels

package version

// Labels is the Prometheus label representation compiled in (build tag).
const Labels = "slicelabels"
