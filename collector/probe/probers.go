package probe

import (
	"slices"
	"strings"

	bbprober "github.com/prometheus/blackbox_exporter/prober"
)

// probers are the probe kinds module.prober selects: blackbox_exporter's own
// probers, so that results and series names are identical to its.
var probers = map[string]bbprober.ProbeFn{
	"http": bbprober.ProbeHTTP,
	"tcp":  bbprober.ProbeTCP,
	"dns":  bbprober.ProbeDNS,
	"icmp": bbprober.ProbeICMP,
	"grpc": bbprober.ProbeGRPC,
}

func proberNames() string {
	names := make([]string, 0, len(probers))
	for n := range probers {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
