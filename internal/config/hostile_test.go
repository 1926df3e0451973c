package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/internal/fileread"
)

// anchored is a prometheus.yml in the style promtool accepts: anchors on
// one list item used by the next, a merge key, and anchors used across
// sections (Prometheus and Tidewatch ones).
const anchored = `global:
  scrape_interval: &interval 15s
  external_labels: &labels
    region: eu
scrape_configs:
  - job_name: api
    scrape_interval: *interval
    static_configs: [{targets: ["a:9100"], labels: *labels}]
    relabel_configs: &rl
      - source_labels: [__address__]
        regex: "([^:]+):.*"
        target_label: host
        replacement: "${1}"
      - action: labeldrop
        regex: "tmp_.*"
    metric_relabel_configs: &mrl
      - source_labels: [__name__]
        regex: "go_.*"
        action: drop
  - &worker
    job_name: workers
    scrape_timeout: 5s
    relabel_configs: *rl
    metric_relabel_configs: *mrl
    static_configs:
      - targets: ["b:9100"]
  - <<: *worker
    job_name: workers-2
    scrape_timeout: 7s
  - <<: [*worker]
    job_name: merged-list
    relabel_configs:
      - *rl_first
query:
  timeout: *interval
`

func TestParseAnchors(t *testing.T) {
	// *rl_first names one rule of the anchored list.
	text := strings.Replace(anchored, "      - source_labels: [__address__]\n", "      - &rl_first\n        source_labels: [__address__]\n", 1)
	c, err := Parse("prometheus.yml", []byte(text), nil)
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	if len(c.ScrapeConfigs) != 4 {
		t.Fatalf("got %d scrape configs, want 4", len(c.ScrapeConfigs))
	}
	for i, sc := range c.ScrapeConfigs {
		if got := time.Duration(sc.ScrapeInterval); got != 15*time.Second {
			t.Errorf("scrape_configs[%d] (%s) scrape_interval = %v, want 15s", i, sc.JobName, got)
		}
		wantRules := 2
		if sc.JobName == "merged-list" {
			wantRules = 1
		}
		if len(sc.RelabelConfigs) != wantRules || sc.RelabelConfigs[0].TargetLabel != "host" || sc.RelabelConfigs[0].Replacement != "${1}" {
			t.Errorf("scrape_configs[%d] (%s) relabel_configs = %+v, want the anchored rules", i, sc.JobName, sc.RelabelConfigs)
		}
		if sc.JobName != "api" && len(sc.MetricRelabelConfigs) != 1 {
			t.Errorf("scrape_configs[%d] (%s) has %d metric_relabel_configs, want 1", i, sc.JobName, len(sc.MetricRelabelConfigs))
		}
	}
	if got := c.ScrapeConfigs[0].ServiceDiscoveryConfigs; len(got) != 1 {
		t.Fatalf("api has %d service discoveries, want 1", len(got))
	}
	if got := time.Duration(c.ScrapeConfigs[2].ScrapeTimeout); got != 7*time.Second {
		t.Errorf("workers-2 scrape_timeout = %v, want 7s (its own key overrides the merge)", got)
	}
	if got := time.Duration(c.ScrapeConfigs[3].ScrapeTimeout); got != 5*time.Second {
		t.Errorf("merged-list scrape_timeout = %v, want 5s from the merge", got)
	}
	if got := time.Duration(c.Query.Timeout); got != 15*time.Second {
		t.Errorf("query.timeout = %v, want 15s through an alias from global", got)
	}
}

func TestParseAnchorErrorsKeepTheirPlace(t *testing.T) {
	text := `global:
  scrape_interval: 15s
scrape_configs:
  - job_name: a
    relabel_configs: &rl
      - action: replace
        target_label: host
        source_labels: [x]
  - job_name: b
    relabel_configs: *rl
    scrape_intervall: 10s
query:
  timeout: &t 2m
  lookback_delta: *t
  max_sampels: 1
`
	_, err := Parse("prometheus.yml", []byte(text), nil)
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Parse error = %v, want Problems", err)
	}
	got := err.Error()
	for _, want := range []string{
		"prometheus.yml:11: scrape_configs[1].scrape_intervall: unknown field",
		"prometheus.yml:15: query.max_sampels: unknown field",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems do not contain %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "anchor") {
		t.Errorf("problems mention an anchor:\n%s", got)
	}
}

func TestParseAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("global:\n  external_labels:\n    a0: &a0 lol\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "x%d: &a%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("scrape_configs:\n  - job_name: bomb\n    static_configs: *a9\n")
	_, err := Parse("bomb.yml", []byte(b.String()), nil)
	if err == nil {
		t.Fatal("Parse accepted an alias bomb")
	}
	if !strings.Contains(err.Error(), "bomb.yml:") || !strings.Contains(err.Error(), "aliases expand to more than 1048576 nodes") {
		t.Fatalf("Parse error does not name the file and the limit:\n%v", err)
	}
}

func TestLoadRefusesNonRegularFiles(t *testing.T) {
	dir := t.TempDir()
	zero := filepath.Join(dir, "zero.yml")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(fileread.ConfigLimit + 1); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	f.Close()
	for _, tc := range []struct{ name, file, want string }{
		{"symlink to /dev/zero", zero, "not a regular file (a character device)"},
		{"directory", dir, "not a regular file (a directory)"},
		{"over the limit", big, "over the limit of 32 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.file, nil)
			if err == nil || !strings.Contains(err.Error(), tc.file) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load error = %v, want one naming %s and %q", err, tc.file, tc.want)
			}
		})
	}
}
