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

func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("rules/good.yml", "groups: []\n")
	if err := os.Mkdir(filepath.Join(dir, "rules", "dir.yml"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("loop.yml", filepath.Join(dir, "rules", "loop.yml")); err != nil {
		t.Fatal(err)
	}
	write("empty-secret", "\n")
	write("token", "t0ken\n")
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero")); err != nil {
		t.Fatal(err)
	}
	file := write("tidewatch.yml", `rule_files:
  - rules/*.yml
storage:
  type: clickhouse
  clickhouse:
    addresses: [localhost:9000]
    password_file: zero
web:
  bearer_token_file: missing
autoscaling:
  backends:
    - name: hook
      type: webhook
      url: http://localhost:1/
      secret_file: empty-secret
    - name: nomad
      type: nomad
      address: http://localhost:4646
      token_file: token
`)
	c, err := Load(file, nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	got := c.CheckFiles().Error()
	for _, want := range []string{
		file + ":2: rule_files[0]: " + filepath.Join(dir, "rules", "dir.yml") + ": not a regular file (a directory)",
		file + ":2: rule_files[0]: " + filepath.Join(dir, "rules", "loop.yml") + ": too many levels of symbolic links",
		file + ":7: storage.clickhouse.password_file: " + filepath.Join(dir, "zero") + ": not a regular file (a character device)",
		file + ":9: web.bearer_token_file: " + filepath.Join(dir, "missing") + ": no such file or directory",
		file + ":15: autoscaling.backends[0].secret_file: secret file " + filepath.Join(dir, "empty-secret") + " is empty",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("CheckFiles does not report %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n") + 1; n != 5 {
		t.Errorf("CheckFiles reported %d problems, want 5:\n%s", n, got)
	}
}

func TestLoadRefusesUnboundedIncludes(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero.yml")); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "tidewatch.yml")
	if err := os.WriteFile(file, []byte("scrape_config_files:\n  - \"*.yml\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(file, nil)
	want := file + ":2: scrape_config_files[0]: " + filepath.Join(dir, "zero.yml") + ": not a regular file (a character device)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Load error = %v, want %q", err, want)
	}
}

func TestExpandAliases(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"block mapping", "a: &x\n  k: v\n  n: 1\nb: *x\n", "a: &x\n  k: v\n  n: 1\nb: {k: v, n: 1}\n"},
		{"several on a line after non-ASCII", "a: &x 1\nb: {é: \"ü\", c: *x, d: [*x, *x]}\n", "a: &x 1\nb: {é: \"ü\", c: 1, d: [1, 1]}\n"},
		{"literal block", "a: &x |\n  two\n  lines\nb: *x\n", "a: &x |\n  two\n  lines\nb: \"two\\nlines\\n\"\n"},
		{"flow indicators", "a: &x 'a, b: {c}'\nb: *x\n", "a: &x 'a, b: {c}'\nb: \"a, b: {c}\"\n"},
		{"tags and nulls", "a: &x {s: !!str 5, n: ~, e: }\nb: *x\n", "a: &x {s: !!str 5, n: ~, e: }\nb: {s: !!str 5, n: ~, e: null}\n"},
		{"merge key", "a: &x {k: v}\nb:\n  <<: *x\n  j: w\n", "a: &x {k: v}\nb:\n  <<: {k: v}\n  j: w\n"},
		{"nested aliases", "a: &x 1\nb: &y [*x]\nc: *y\n", "a: &x 1\nb: &y [1]\nc: [1]\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, err := parseRoot([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			lines, prob := expandAliases(strings.Split(tc.in, "\n"), root)
			if prob != nil {
				t.Fatalf("expandAliases: %v", prob)
			}
			if got := strings.Join(lines, "\n"); got != tc.want {
				t.Fatalf("expandAliases =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}
