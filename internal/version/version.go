// Package version holds Tidewatch's build information, set at link time
// (see the Makefile) and completed from the Go build info.
package version

import (
	"runtime"
	"runtime/debug"
)

// Set with -ldflags "-X github.com/tidewatch/tidewatch/internal/version.Version=…".
var (
	Version   = "0.1.0-dev"
	Revision  = ""
	Branch    = ""
	BuildUser = ""
	BuildDate = ""
)

// Info is the build information reported by `tidewatch version` and
// /api/v1/status/buildinfo.
type Info struct {
	Version, Revision, Branch, BuildUser, BuildDate, GoVersion string
}

// Get returns the build information.
func Get() Info {
	i := Info{Version: Version, Revision: Revision, Branch: Branch, BuildUser: BuildUser, BuildDate: BuildDate, GoVersion: runtime.Version()}
	if i.Revision == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					i.Revision = s.Value
				case "vcs.time":
					if i.BuildDate == "" {
						i.BuildDate = s.Value
					}
				}
			}
		}
	}
	return i
}

// LabelsSafe reports whether the compiled-in label representation holds a
// label of any length. Only stringlabels (Prometheus' default, used when no
// tag is given) panics on one over 16 MiB, which a scrape target can send.
func LabelsSafe() bool { return Labels != "stringlabels" }
