//go:build !slicelabels && !dedupelabels

package version

// Labels is the Prometheus label representation compiled in (build tag).
//
// Without a tag Prometheus packs labels into one string whose encoding panics
// on a name or value over 16 MiB; the panic happens on a scrape loop's
// goroutine inside Prometheus' parser, before any limit or any code of
// Tidewatch's runs, and takes the process down. Tidewatch is therefore built
// with -tags slicelabels (the Makefile does it); LabelsSafe reports the build.
const Labels = "stringlabels"
