package main

import (
	"fmt"
	"io"

	"github.com/tidewatch/tidewatch/internal/version"
)

func versionCommand(stdout io.Writer) int {
	i := version.Get()
	fmt.Fprintf(stdout, "tidewatch, version %s (revision: %s)\n  build date: %s\n  go version: %s\n  labels:     %s\n", i.Version, i.Revision, i.BuildDate, i.GoVersion, version.Labels)
	return 0
}
