package probe_test

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"

	twdiscovery "github.com/tidewatch/tidewatch/collector/discovery"
)

// probeCase is one probe job against one real local server.
type probeCase struct {
	job     string
	target  string
	module  string // the module, as YAML flow mapping
	success float64
	// series are further series (name{labels} without job) and their values.
	series map[string]float64
	// errContains must be in the target's last error (failures only).
	errContains []string
}

func probeCases(t *testing.T, s *servers) []probeCase {
	closed := closedPort(t)
	return []probeCase{
		{job: "http-ok", target: s.http + "/healthz", success: 1,
			module: `{prober: http, http: {method: GET, valid_status_codes: [200], fail_if_body_not_matches_regexp: [ok]}}`,
			series: map[string]float64{"probe_http_status_code": 200, "probe_http_ssl": 0}},
		{job: "http-500", target: s.http + "/fail", success: 0,
			module: `{prober: http}`,
			series: map[string]float64{"probe_http_status_code": 500}, errContains: []string{"status code"}},
		{job: "http-body-mismatch", target: s.http + "/healthz", success: 0,
			module: `{prober: http, http: {fail_if_body_not_matches_regexp: [nope]}}`,
			series: map[string]float64{"probe_http_status_code": 200, "probe_failed_due_to_regex": 1}, errContains: []string{"regex"}},
		{job: "https-ok", target: s.https + "/healthz", success: 1,
			module: fmt.Sprintf(`{prober: http, http: {fail_if_not_ssl: true, tls_config: {ca_file: %q}}}`, s.cert.caFile),
			series: map[string]float64{"probe_http_status_code": 200, "probe_http_ssl": 1,
				"probe_ssl_earliest_cert_expiry": float64(s.cert.notAfter.Unix())}},
		{job: "https-untrusted", target: s.https + "/healthz", success: 0,
			module: `{prober: http}`, errContains: []string{"certificate"}},
		{job: "https-skip-verify", target: s.https + "/healthz", success: 1,
			module: `{prober: http, http: {tls_config: {insecure_skip_verify: true}}}`},
		{job: "http-timeout", target: s.http + "/slow", success: 0,
			module: `{prober: http, timeout: 300ms}`, errContains: []string{"timeout after 300ms"}},
		{job: "http-refused", target: "http://" + closed + "/", success: 0,
			module: `{prober: http}`, errContains: []string{"connection refused"}},
		{job: "tcp-dialogue", target: s.tcp, success: 1,
			module: `{prober: tcp, tcp: {query_response: [{expect: "^220"}, {send: "QUIT"}, {expect: "^221"}]}}`},
		{job: "tcp-wrong-greeting", target: s.tcp, success: 0,
			module: `{prober: tcp, tcp: {query_response: [{expect: "^250"}]}}`},
		{job: "tcp-refused", target: closed, success: 0,
			module: `{prober: tcp}`, errContains: []string{"connection refused"}},
		{job: "tcp-tls", target: s.tls, success: 1,
			module: fmt.Sprintf(`{prober: tcp, tcp: {tls: true, tls_config: {ca_file: %q}, query_response: [{expect: "^220"}]}}`, s.cert.caFile),
			series: map[string]float64{"probe_ssl_earliest_cert_expiry": float64(s.cert.notAfter.Unix())}},
		{job: "tcp-tls-untrusted", target: s.tls, success: 0,
			module: `{prober: tcp, tcp: {tls: true}}`, errContains: []string{"certificate"}},
		{job: "dns-a", target: s.dns, success: 1,
			module: `{prober: dns, dns: {query_name: api.test, query_type: A, valid_rcodes: [NOERROR], validate_answer_rrs: {fail_if_not_matches_regexp: ["api\\.test\\.\t.*\tIN\tA\t127\\.0\\.0\\.1"]}}}`,
			series: map[string]float64{"probe_dns_answer_rrs": 1}},
		{job: "dns-tcp", target: s.dns, success: 1,
			module: `{prober: dns, dns: {transport_protocol: tcp, query_name: api.test, query_type: A}}`},
		{job: "dns-nxdomain", target: s.dns, success: 0,
			module: `{prober: dns, dns: {query_name: nope.test, query_type: A, valid_rcodes: [NOERROR]}}`,
			series: map[string]float64{"probe_dns_answer_rrs": 0}},
		{job: "grpc-serving", target: s.grpc, success: 1,
			module: `{prober: grpc, grpc: {service: api, preferred_ip_protocol: ip4}}`,
			series: map[string]float64{`probe_grpc_healthcheck_response{serving_status="SERVING"}`: 1}},
		{job: "grpc-not-serving", target: s.grpc, success: 0,
			module: `{prober: grpc, grpc: {service: down, preferred_ip_protocol: ip4}}`,
			series: map[string]float64{`probe_grpc_healthcheck_response{serving_status="NOT_SERVING"}`: 1}},
		{job: "grpc-refused", target: closed, success: 0,
			module: `{prober: grpc, grpc: {preferred_ip_protocol: ip4}}`},
	}
}

func casesYAML(cases []probeCase) string {
	var b strings.Builder
	b.WriteString("probe_configs:\n")
	for _, c := range cases {
		fmt.Fprintf(&b, "  - job_name: %s\n    interval: 5s\n    module: %s\n    static_configs: [{targets: [%q]}]\n", c.job, c.module, c.target)
	}
	return b.String()
}

// TestProbers probes real local servers (HTTP, HTTPS with a certificate
// generated here, TCP with and without TLS, an in-process DNS server, a
// gRPC health server, a hanging handler and closed ports) with every
// prober and checks probe_success, the prober's series and the error.
func TestProbers(t *testing.T) {
	t.Parallel()
	s := startServers(t)
	cases := probeCases(t, s)
	h := newHarness(t, casesYAML(cases), twdiscovery.Shard{})
	for _, c := range cases {
		t.Run(c.job, func(t *testing.T) {
			sel := selector("probe_success", c.job, labels.Label{Name: "instance", Value: c.target})
			if got := h.waitLast(sel); got != c.success {
				a, _ := h.active(c.job, c.target)
				t.Fatalf("%s = %v, want %v (last error %q)", sel, got, c.success, a.LastError)
			}
			if d := h.waitLast(selector("probe_duration_seconds", c.job)); d <= 0 || math.IsNaN(d) {
				t.Errorf("probe_duration_seconds = %v, want > 0", d)
			}
			for name, want := range c.series {
				sel := name
				if i := strings.IndexByte(name, '{'); i >= 0 {
					sel = name[:i] + fmt.Sprintf(`{job=%q,`, c.job) + name[i+1:]
				} else {
					sel = selector(name, c.job)
				}
				if got := h.waitLast(sel); got != want {
					t.Errorf("%s = %v, want %v", sel, got, want)
				}
			}
			// A probe appends its series before it records its outcome on the
			// target: wait for the record, not just the series.
			a, ok := h.active(c.job, c.target)
			for deadline := time.Now().Add(waitTimeout); ok && a.Health == "unknown" && time.Now().Before(deadline); a, ok = h.active(c.job, c.target) {
				time.Sleep(20 * time.Millisecond)
			}
			if !ok {
				t.Fatalf("no active target %s/%s", c.job, c.target)
			}
			wantHealth := map[float64]string{0: "down", 1: "up"}[c.success]
			if a.Health != wantHealth {
				t.Errorf("health = %q, want %q (error %q)", a.Health, wantHealth, a.LastError)
			}
			if c.success == 1 && a.LastError != "" {
				t.Errorf("successful probe has error %q", a.LastError)
			}
			if c.success == 0 && !strings.HasPrefix(a.LastError, "probe "+c.target+": ") {
				t.Errorf("last error %q does not start with %q", a.LastError, "probe "+c.target+": ")
			}
			for _, sub := range c.errContains {
				if !strings.Contains(a.LastError, sub) {
					t.Errorf("last error %q does not contain %q", a.LastError, sub)
				}
			}
			if got := a.Labels["instance"]; got != c.target {
				t.Errorf("instance = %q, want %q", got, c.target)
			}
		})
	}
}

// TestICMP pings 127.0.0.1: it works with unprivileged ICMP sockets or
// CAP_NET_RAW; where neither is allowed the error must say so.
func TestICMP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, `
probe_configs:
  - job_name: ping
    interval: 1s
    module: {prober: icmp, icmp: {preferred_ip_protocol: ip4}}
    static_configs: [{targets: [127.0.0.1]}]
`, twdiscovery.Shard{})
	got := h.waitLast(`probe_success{job="ping"}`)
	a, _ := h.active("ping", "127.0.0.1")
	if got == 1 {
		if v := h.waitLast(`probe_icmp_duration_seconds{job="ping",phase="rtt"}`); v <= 0 {
			t.Errorf("rtt = %v, want > 0", v)
		}
		return
	}
	if !strings.Contains(a.LastError, "ping_group_range") || !strings.Contains(a.LastError, "CAP_NET_RAW") {
		t.Errorf("icmp failed without saying why clearly: %q", a.LastError)
	}
}

// TestTargetGoneIsStale removes a target and a job: their series end with
// a stale marker; the remaining target keeps being probed.
func TestTargetGoneIsStale(t *testing.T) {
	t.Parallel()
	s := startServers(t)
	closed := closedPort(t)
	cfg := func(targets ...string) string {
		return fmt.Sprintf(`
probe_configs:
  - job_name: web
    interval: 1s
    module: {prober: http}
    static_configs: [{targets: %s}]
`, quote(targets...))
	}
	h := newHarness(t, cfg(s.http+"/healthz", "http://"+closed+"/"), twdiscovery.Shard{})
	keep := fmt.Sprintf(`probe_success{job="web",instance=%q}`, s.http+"/healthz")
	gone := fmt.Sprintf(`probe_success{job="web",instance=%q}`, "http://"+closed+"/")
	if v := h.waitLast(keep); v != 1 {
		t.Fatalf("%s = %v", keep, v)
	}
	if v := h.waitLast(gone); v != 0 {
		t.Fatalf("%s = %v", gone, v)
	}
	goneStatus := fmt.Sprintf(`probe_http_status_code{job="web",instance=%q}`, "http://"+closed+"/")

	h.apply(cfg(s.http+"/healthz"), twdiscovery.Shard{})
	for _, sel := range []string{gone, goneStatus} {
		eventually(t, "a stale marker ending "+sel, func() (bool, string) {
			v, ok := h.last(sel)
			return ok && value.IsStaleNaN(v), fmt.Sprintf("last=%v ok=%v", v, ok)
		})
	}
	before := len(series(t, h.db, keep)[firstKey(series(t, h.db, keep))])
	eventually(t, "more probes of the remaining target", func() (bool, string) {
		n := len(series(t, h.db, keep)[firstKey(series(t, h.db, keep))])
		return n > before, fmt.Sprintf("%d samples", n)
	})
	if v, _ := h.last(keep); v != 1 {
		t.Errorf("%s = %v after the reload, want 1", keep, v)
	}

	// Removing the whole job marks its last target stale too.
	h.apply("probe_configs: []", twdiscovery.Shard{})
	eventually(t, "a stale marker ending "+keep, func() (bool, string) {
		v, ok := h.last(keep)
		return ok && value.IsStaleNaN(v), fmt.Sprintf("last=%v", v)
	})
	if active, _ := h.m.Targets(); len(active) != 0 {
		t.Errorf("active targets after removing every job: %+v", active)
	}
}

func firstKey[V any](m map[string]V) string {
	for k := range m {
		return k
	}
	return ""
}

// TestApplyConfigKeepsOldOnError: an invalid configuration is refused whole.
func TestApplyConfigKeepsOldOnError(t *testing.T) {
	t.Parallel()
	s := startServers(t)
	h := newHarness(t, fmt.Sprintf(`
probe_configs:
  - job_name: web
    interval: 1s
    module: {prober: http}
    static_configs: [{targets: [%q]}]
`, s.http+"/healthz"), twdiscovery.Shard{})
	h.waitLast(`probe_success{job="web"}`)
	bad := parseConfigs(t, `
probe_configs:
  - job_name: other
    module: {prober: smtp}
  - job_name: other
    interval: 1s
    module: {prober: http, timeout: 5s}
`)
	err := h.m.ApplyConfig(bad, twdiscovery.Shard{})
	if err == nil {
		t.Fatal("ApplyConfig accepted an invalid configuration")
	}
	for _, want := range []string{
		`probe_configs[0].module.prober: unknown prober "smtp"`,
		`probe_configs[1].job_name: "other" is already the job name of probe_configs[0]`,
		`probe_configs[1].module.timeout: 5s is longer than the interval (1s)`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if err := h.m.ApplyConfig(nil, twdiscovery.Shard{Count: 2, Index: 2}); err == nil || !strings.Contains(err.Error(), "collector.shard.index") {
		t.Errorf("bad shard: err = %v", err)
	}
	if _, ok := h.active("web", s.http+"/healthz"); !ok {
		t.Error("the previous configuration's target is gone after a refused ApplyConfig")
	}
}

// TestRelabelingAndAPI: relabeling written for blackbox_exporter
// (__param_target, instance) works, dropped targets are listed with their
// discovered labels, and /api/v1/probes answers in Prometheus' envelope.
func TestRelabelingAndAPI(t *testing.T) {
	t.Parallel()
	s := startServers(t)
	closed := closedPort(t)
	h := newHarness(t, fmt.Sprintf(`
probe_configs:
  - job_name: blackbox-style
    interval: 1s
    module: {prober: http}
    static_configs:
      - targets: [%q, %q, "http://drop.me/"]
        labels: {team: a}
    relabel_configs:
      - source_labels: [__address__]
        regex: ".*drop.*"
        action: drop
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: 127.0.0.1:9115
`, s.http+"/healthz", "http://"+closed+"/"), twdiscovery.Shard{})
	sel := fmt.Sprintf(`probe_success{job="blackbox-style",instance=%q,team="a"}`, s.http+"/healthz")
	if v := h.waitLast(sel); v != 1 {
		t.Fatalf("%s = %v", sel, v)
	}
	h.waitLast(fmt.Sprintf(`probe_success{job="blackbox-style",instance=%q}`, "http://"+closed+"/"))

	// Series are appended before a probe's outcome is recorded on its
	// target: wait until both targets have one.
	code, resp := apiProbes(t, h.m, "")
	for deadline := time.Now().Add(waitTimeout); time.Now().Before(deadline); code, resp = apiProbes(t, h.m, "") {
		unknown := false
		for _, a := range resp.Data.ActiveTargets {
			unknown = unknown || a.Health == "unknown"
		}
		if !unknown {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code != http.StatusOK || resp.Status != "success" {
		t.Fatalf("GET /api/v1/probes: %d %+v", code, resp)
	}
	if len(resp.Data.ActiveTargets) != 2 || len(resp.Data.DroppedTargets) != 1 {
		t.Fatalf("got %d active and %d dropped targets, want 2 and 1: %+v", len(resp.Data.ActiveTargets), len(resp.Data.DroppedTargets), resp.Data)
	}
	if got := resp.Data.DroppedTargets[0].DiscoveredLabels["__address__"]; got != "http://drop.me/" {
		t.Errorf("dropped target's __address__ = %q", got)
	}
	var down, up int
	for _, a := range resp.Data.ActiveTargets {
		if a.Labels["team"] != "a" || a.Labels["job"] != "blackbox-style" || a.DiscoveredLabels["__address__"] != a.Target {
			t.Errorf("labels of %s: %v, discovered %v", a.Target, a.Labels, a.DiscoveredLabels)
		}
		if _, ok := a.Labels["__address__"]; ok {
			t.Errorf("target labels keep __address__: %v", a.Labels)
		}
		if a.Prober != "http" || a.Interval != "1s" || a.Timeout != "1s" {
			t.Errorf("target %s: prober %q interval %q timeout %q", a.Target, a.Prober, a.Interval, a.Timeout)
		}
		switch a.Health {
		case "up":
			up++
		case "down":
			down++
			if !strings.Contains(a.LastError, "connection refused") || a.LastProbe.IsZero() {
				t.Errorf("down target: error %q, last probe %v", a.LastError, a.LastProbe)
			}
		}
	}
	if up != 1 || down != 1 {
		t.Errorf("got %d up and %d down, want 1 and 1", up, down)
	}
	if _, resp := apiProbes(t, h.m, "state=dropped"); len(resp.Data.ActiveTargets) != 0 || len(resp.Data.DroppedTargets) != 1 {
		t.Errorf("state=dropped: %+v", resp.Data)
	}
	if _, resp := apiProbes(t, h.m, "state=active&job=nope"); len(resp.Data.ActiveTargets) != 0 || resp.Data.DroppedTargets == nil {
		t.Errorf("state=active&job=nope: %+v", resp.Data)
	}
	if code, resp := apiProbes(t, h.m, "state=bogus"); code != http.StatusBadRequest || resp.Status != "error" {
		t.Errorf("state=bogus: %d %+v", code, resp)
	}
}

// TestShardedProbes: two managers with shard count 2 probe every target
// exactly once between them, also when blackbox_exporter-style relabeling
// points every target's __address__ at one exporter.
func TestShardedProbes(t *testing.T) {
	t.Parallel()
	var targets []string
	for i := range 40 {
		targets = append(targets, fmt.Sprintf("http://svc-%d.invalid:8080/healthz", i))
	}
	cfg := fmt.Sprintf(`
probe_configs:
  - job_name: fleet
    interval: 1h
    module: {prober: http, timeout: 100ms}
    static_configs: [{targets: %[1]s}]
  - job_name: blackbox-style
    interval: 1h
    module: {prober: http, timeout: 100ms}
    static_configs: [{targets: %[1]s}]
    relabel_configs:
      - {source_labels: [__address__], target_label: __param_target}
      - {target_label: __address__, replacement: "127.0.0.1:9115"}
`, quote(targets...))
	shards := []*harness{
		newHarness(t, cfg, twdiscovery.Shard{Count: 2, Index: 0}),
		newHarness(t, cfg, twdiscovery.Shard{Count: 2, Index: 1}),
	}
	owner := map[[2]string]int{}
	for i, h := range shards {
		eventually(t, fmt.Sprintf("shard %d to see all targets", i), func() (bool, string) {
			active, dropped := h.m.Targets()
			return len(active)+len(dropped) == 2*len(targets), fmt.Sprintf("%d active, %d dropped", len(active), len(dropped))
		})
		active, _ := h.m.Targets()
		perJob := map[string]int{}
		for _, a := range active {
			perJob[a.Job]++
			key := [2]string{a.Job, a.Target}
			if prev, ok := owner[key]; ok {
				t.Errorf("%s/%s is probed by shards %d and %d", a.Job, a.Target, prev, i)
			}
			owner[key] = i
		}
		for _, job := range []string{"fleet", "blackbox-style"} {
			if n := perJob[job]; n == 0 || n == len(targets) {
				t.Errorf("shard %d probes %d of the %d targets of %s", i, n, len(targets), job)
			}
		}
	}
	var missing []string
	for _, job := range []string{"fleet", "blackbox-style"} {
		for _, tg := range targets {
			if _, ok := owner[[2]string{job, tg}]; !ok {
				missing = append(missing, job+"/"+tg)
			}
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("targets no shard probes: %v", missing)
	}
	// The same target lands in the same shard whichever way it is written.
	for _, tg := range targets {
		if owner[[2]string{"fleet", tg}] != owner[[2]string{"blackbox-style", tg}] {
			t.Errorf("%s: shard %d as __address__, %d as __param_target", tg, owner[[2]string{"fleet", tg}], owner[[2]string{"blackbox-style", tg}])
		}
	}
}
