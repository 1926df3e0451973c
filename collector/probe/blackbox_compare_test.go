package probe_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	twdiscovery "github.com/tidewatch/tidewatch/collector/discovery"
	"github.com/tidewatch/tidewatch/internal/testinfra"
)

// compared are the series both must agree on, when blackbox_exporter
// reports them.
var compared = []string{
	"probe_success",
	"probe_http_status_code",
	"probe_http_ssl",
	"probe_ssl_earliest_cert_expiry",
	"probe_dns_answer_rrs",
	"probe_failed_due_to_regex",
}

// TestSameAsBlackboxExporter probes the same HTTP, TCP, DNS and gRPC targets
// with the same modules through Tidewatch and through a real
// blackbox_exporter (Debian's 0.23), and wants the same probe_success, status
// codes and the other series in compared.
func TestSameAsBlackboxExporter(t *testing.T) {
	t.Parallel()
	s := startServers(t)
	cases := probeCases(t, s)

	var bb strings.Builder
	bb.WriteString("modules:\n")
	for _, c := range cases {
		module := c.module
		if !strings.Contains(module, "timeout:") {
			module = "{timeout: 5s, " + strings.TrimPrefix(module, "{")
		}
		fmt.Fprintf(&bb, "  %s: %s\n", c.job, module)
	}
	bbURL := testinfra.StartBlackboxExporter(t, bb.String())
	h := newHarness(t, casesYAML(cases), twdiscovery.Shard{})

	for _, c := range cases {
		t.Run(c.job, func(t *testing.T) {
			theirs := blackboxProbe(t, bbURL, c.job, c.target)
			if _, ok := theirs["probe_success"]; !ok {
				t.Fatalf("blackbox_exporter returned no probe_success: %v", theirs)
			}
			h.waitLast(selector("probe_success", c.job, labels.Label{Name: "instance", Value: c.target}))
			for _, name := range compared {
				want, ok := theirs[name]
				if !ok {
					continue
				}
				sel := selector(name, c.job)
				got, ok := h.last(sel)
				if !ok && name == "probe_success" {
					t.Fatalf("Tidewatch has no %s", sel)
				}
				if !ok {
					// 0.23 reports a few series on failure paths that the 0.28
					// probers no longer do (probe_failed_due_to_regex after a
					// refused TCP connection, probe_ssl_earliest_cert_expiry 0
					// for gRPC without TLS).
					t.Logf("only blackbox_exporter 0.23 reports %s (= %v)", name, want)
					continue
				}
				if got != want {
					a, _ := h.active(c.job, c.target)
					t.Errorf("%s: Tidewatch %v, blackbox_exporter %v (Tidewatch's error: %q)", name, got, want, a.LastError)
				}
			}
			ours := map[string]bool{}
			for ls := range series(t, h.db, fmt.Sprintf(`{job=%q}`, c.job)) {
				m, _ := labelsName(ls)
				ours[m] = true
			}
			var onlyTheirs []string
			for name := range theirs {
				if !ours[name] {
					onlyTheirs = append(onlyTheirs, name)
				}
			}
			slices.Sort(onlyTheirs)
			if len(onlyTheirs) > 0 {
				// blackbox_exporter 0.23 and the 0.28 probers Tidewatch uses name
				// a few series differently; shown, not failed on.
				t.Logf("series only blackbox_exporter 0.23 reports: %v", onlyTheirs)
			}
		})
	}
}

// blackboxProbe asks blackbox_exporter to probe target with module and
// returns the value of each unlabeled series (the first, for labeled ones).
func blackboxProbe(t *testing.T, base, module, target string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/probe?module=" + url.QueryEscape(module) + "&target=" + url.QueryEscape(target))
	if err != nil {
		t.Fatalf("blackbox_exporter probe: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("blackbox_exporter probe: status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse blackbox_exporter answer: %v", err)
	}
	out := map[string]float64{}
	for name, mf := range mfs {
		if len(mf.GetMetric()) == 0 {
			continue
		}
		m := mf.GetMetric()[0]
		switch mf.GetType() {
		case dto.MetricType_GAUGE:
			out[name] = m.GetGauge().GetValue()
		case dto.MetricType_COUNTER:
			out[name] = m.GetCounter().GetValue()
		default:
			out[name] = m.GetUntyped().GetValue()
		}
	}
	return out
}

// labelsName returns the metric name in a labels string {__name__="x", …}.
func labelsName(ls string) (string, bool) {
	const key = `__name__="`
	i := strings.Index(ls, key)
	if i < 0 {
		return "", false
	}
	rest := ls[i+len(key):]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return "", false
	}
	return rest[:j], true
}
