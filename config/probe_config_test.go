package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/discovery"
)

const probesTestdata = "../testdata/probes"

// TestProbeConfigs loads probe_configs, collector.shard and the service
// discoveries collector/discovery registers (etcd included) from a fixture.
func TestProbeConfigs(t *testing.T) {
	c, err := Load(filepath.Join(probesTestdata, "probes.good.yml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs(probesTestdata)
	if c.Collector.Shard.Count != 2 || c.Collector.Shard.Index != 1 {
		t.Errorf("collector.shard = %+v", c.Collector.Shard)
	}
	if len(c.ProbeConfigs) != 5 {
		t.Fatalf("got %d probe configs, want 5", len(c.ProbeConfigs))
	}
	api := c.ProbeConfigs[0]
	if api.JobName != "api-health" || time.Duration(api.Interval) != 10*time.Second || api.Module.Timeout != 5*time.Second {
		t.Errorf("api-health: %s %v %v", api.JobName, api.Interval, api.Module.Timeout)
	}
	if got := api.Module.HTTP.ValidStatusCodes; len(got) != 1 || got[0] != 200 {
		t.Errorf("valid_status_codes = %v", got)
	}
	if !api.Module.HTTP.IPProtocolFallback {
		t.Error("blackbox_exporter's module defaults were not applied (ip_protocol_fallback)")
	}
	if got := api.Module.HTTP.HTTPClientConfig.TLSConfig.CAFile; got != filepath.Join(dir, "certs/ca.pem") {
		t.Errorf("ca_file = %q, want it under %s", got, dir)
	}
	if got := time.Duration(c.ProbeConfigs[1].Interval); got != 30*time.Second {
		t.Errorf("default interval = %v", got)
	}
	names := func(cs discovery.Configs) []string {
		var out []string
		for _, sd := range cs {
			out = append(out, sd.Name())
		}
		return out
	}
	for i, want := range [][]string{{"static", "file"}, {"etcd"}, {"static"}, {"kubernetes"}, {"nomad", "docker", "dockerswarm", "nerve"}} {
		got := names(c.ProbeConfigs[i].ServiceDiscoveryConfigs)
		for _, w := range want {
			if !strings.Contains(strings.Join(got, ","), w) {
				t.Errorf("probe_configs[%d]: discoveries %v lack %s", i, got, w)
			}
		}
	}
	scrape := names(c.ScrapeConfigs[0].ServiceDiscoveryConfigs)
	for _, w := range []string{"etcd", "consul", "dns", "serverset"} {
		if !strings.Contains(strings.Join(scrape, ","), w) {
			t.Errorf("scrape_configs[0]: discoveries %v lack %s", scrape, w)
		}
	}
}

func TestProbeConfigProblems(t *testing.T) {
	tests := []struct {
		file string
		want []string // "line: field: message" substrings
	}{
		{"probes-bad.bad.yml", []string{
			"2: collector.shard.index: must be below count (2), got 2",
			`9: probe_configs[1].module.http.valid_status_codez: unknown field (did you mean "valid_status_codes"?)`,
			"12: probe_configs[2].etcd_sd_configs[0]: etcd_sd_config: endpoints must not be empty",
			`13: probe_configs[2].zookeeper_sd_configs: unknown service discovery type "zookeeper"`,
		}},
		{"probes-validate.bad.yml", []string{
			"2: collector.shard.index: must be below count (2), got 2",
			`6: probe_configs[0].module.prober: unknown prober "ftp" (known: dns, grpc, http, icmp, tcp)`,
			"6: probe_configs[0].module.timeout: 10s is longer than the interval (5s)",
			`8: probe_configs[1].job_name: "a" is already the job name of probe_configs[0]`,
			"13: probe_configs[2].module.timeout: 1m0s is longer than the interval (30s)",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			_, err := Load(filepath.Join(probesTestdata, tc.file), nil)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), ":"+w) {
					t.Errorf("problems lack %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestExporterConfigs: the ready configs in testdata/exporters load, and
// their scrape_config_files resolve to the four exporters' jobs.
func TestExporterConfigs(t *testing.T) {
	c, err := Load("../testdata/exporters/tidewatch.yml", nil)
	if err != nil {
		t.Fatal(err)
	}
	scfgs, err := c.Prom.GetScrapeConfigs()
	if err != nil {
		t.Fatal(err)
	}
	jobs := map[string]bool{}
	for _, sc := range scfgs {
		jobs[sc.JobName] = true
	}
	for _, j := range []string{"registered", "haproxy", "node", "etcd", "tidewatch"} {
		if !jobs[j] {
			t.Errorf("no job %q in %v", j, jobs)
		}
	}
	if len(c.ProbeConfigs) != 2 {
		t.Errorf("got %d probe configs, want 2", len(c.ProbeConfigs))
	}
}
