package config

import (
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/units"
	"github.com/prometheus/common/model"
)

const testdata = "../testdata/config"

func TestLoadGood(t *testing.T) {
	t.Setenv("TIDEWATCH_TEST_LISTEN", "127.0.0.1:1234")
	dir, err := filepath.Abs(testdata)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file  string
		check func(t *testing.T, c *Config)
	}{
		{
			file: "minimal.good.yml",
			check: func(t *testing.T, c *Config) {
				if got := time.Duration(c.Global.ScrapeInterval); got != time.Minute {
					t.Errorf("global.scrape_interval = %v, want 1m", got)
				}
				if c.Storage.Type != "embedded" || c.Storage.Embedded.Path != "data/" {
					t.Errorf("storage = %+v, want embedded at data/", c.Storage)
				}
				if c.Web.ListenAddress != ":9470" {
					t.Errorf("web.listen_address = %q, want :9470", c.Web.ListenAddress)
				}
				if c.Query.MaxSamples != 50_000_000 {
					t.Errorf("query.max_samples = %d, want the default", c.Query.MaxSamples)
				}
			},
		},
		{
			file: "full.good.yml",
			check: func(t *testing.T, c *Config) {
				if len(c.ScrapeConfigs) != 3 {
					t.Fatalf("got %d scrape configs, want 3", len(c.ScrapeConfigs))
				}
				api, workers := c.ScrapeConfigs[0], c.ScrapeConfigs[1]
				if got := time.Duration(api.ScrapeInterval); got != 30*time.Second {
					t.Errorf("api scrape_interval = %v, want 30s inherited from global", got)
				}
				if got := time.Duration(workers.ScrapeTimeout); got != 5*time.Second {
					t.Errorf("workers scrape_timeout = %v, want 5s", got)
				}
				if api.SampleLimit != 10000 || api.BodySizeLimit != 10*units.MiB || !api.HonorLabels {
					t.Errorf("api limits = %d %v %v", api.SampleLimit, api.BodySizeLimit, api.HonorLabels)
				}
				if got := c.Global.ExternalLabels.Get("region"); got != "eu-west-1" {
					t.Errorf("external label region = %q", got)
				}
				if got := workers.HTTPClientConfig.BasicAuth.PasswordFile; got != filepath.Join(dir, "secrets/password") {
					t.Errorf("password_file = %q, want it under %s", got, dir)
				}
				if c.Storage.Embedded.Retention != model.Duration(30*24*time.Hour) {
					t.Errorf("retention = %v, want 30d", c.Storage.Embedded.Retention)
				}
				if c.Storage.Embedded.RetentionSize != 50*units.GiB {
					t.Errorf("retention_size = %v, want 50GiB", c.Storage.Embedded.RetentionSize)
				}
				if time.Duration(c.Query.LookbackDelta) != 3*time.Minute {
					t.Errorf("lookback_delta = %v, want 3m", c.Query.LookbackDelta)
				}
				if c.Web.ListenAddress != "127.0.0.1:9470" {
					t.Errorf("listen_address = %q", c.Web.ListenAddress)
				}
				if got := c.Web.TLSServerConfig.KeyFile; got != filepath.Join(dir, "certs/server-key.pem") {
					t.Errorf("key_file = %q, want it under %s", got, dir)
				}
				if got := c.Web.BearerTokenFile; got != filepath.Join(dir, "secrets/api-token") {
					t.Errorf("bearer_token_file = %q, want it under %s", got, dir)
				}
				scfgs, err := c.Prom.GetScrapeConfigs()
				if err != nil || len(scfgs) != 3 {
					t.Errorf("Prom.GetScrapeConfigs() = %d configs, %v", len(scfgs), err)
				}
			},
		},
		{
			file: "env.good.yml",
			check: func(t *testing.T, c *Config) {
				if c.Web.ListenAddress != "127.0.0.1:1234" {
					t.Errorf("listen_address = %q, want it from $TIDEWATCH_TEST_LISTEN", c.Web.ListenAddress)
				}
				if c.Web.ExternalURL != "http://example.com/${LITERAL}" {
					t.Errorf("external_url = %q, want $${LITERAL} kept as ${LITERAL}", c.Web.ExternalURL)
				}
				if got := c.ScrapeConfigs[0].RelabelConfigs[0].Replacement; got != "${1}" {
					t.Errorf("relabel replacement = %q, want ${1} untouched", got)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, err := Load(filepath.Join(testdata, tt.file), slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.Prom == nil || !filepath.IsAbs(c.File) {
				t.Fatalf("Prom = %v, File = %q", c.Prom, c.File)
			}
			tt.check(t, c)
		})
	}
}

// want is an expected problem: its line, field and a substring of its message.
type want struct {
	line  int
	field string
	msg   string
}

func TestLoadBad(t *testing.T) {
	tests := []struct {
		file string
		want []want
	}{
		{"unknown-top-level.bad.yml", []want{{4, "storgae", "unknown field"}}},
		{"unknown-nested.bad.yml", []want{
			{6, "scrape_configs[1].scrape_intervall", "unknown field"},
			{12, "storage.embedded.pathh", "unknown field"},
		}},
		{"bad-duration.bad.yml", []want{
			{2, "global.scrape_interval", `unknown unit "x"`},
			{5, "query.timeout", "not a valid duration"},
		}},
		{"unknown-and-duration.bad.yml", []want{
			{6, "scrape_configs[0].scrape_interval", `unknown unit "x"`},
			{9, "scrape_configs[0].honour_labels", "unknown field"},
		}},
		{"duplicate-job.bad.yml", []want{{8, "scrape_configs[2].job_name", `multiple scrape configs with job name "node"`}}},
		{"timeout-over-interval.bad.yml", []want{{7, "scrape_configs[1].scrape_timeout", "scrape timeout greater than scrape interval"}}},
		{"bad-regex.bad.yml", []want{{7, "scrape_configs[0].relabel_configs[0].regex", "missing closing )"}}},
		{"unknown-sd.bad.yml", []want{{3, "scrape_configs[0].foo_sd_configs", `unknown service discovery type "foo"`}}},
		{"bad-storage-type.bad.yml", []want{{2, "storage.type", `unknown backend "cassandra"`}}},
		{"undefined-env.bad.yml", []want{{3, "web.bearer_token_file", `"TIDEWATCH_TEST_UNDEFINED" is not set`}}},
		{"wrong-type.bad.yml", []want{
			{2, "storage", "expected a mapping, got a list"},
			{5, "scrape_configs", "expected a list, got a mapping"},
		}},
		{"tls-cert-without-key.bad.yml", []want{{3, "web.tls_server_config", "cert_file and key_file must be set together"}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			file := filepath.Join(testdata, tt.file)
			_, err := Load(file, slog.New(slog.DiscardHandler))
			checkProblems(t, err, file, tt.want)
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []want
	}{
		{"empty", "", nil},
		{"document marker and comments", "---\n# nothing\n", nil},
		{"empty sections take defaults", "web:\nstorage:\n", nil},
		{"flow mapping root", "{global: {}}\n", []want{{1, "", "not a flow mapping"}}},
		{"list root", "- a\n", []want{{1, "", "must be a mapping"}}},
		{"syntax error", "global: [\n", []want{{1, "", "did not find expected node content"}}},
		{"every problem in one run", strings.Join([]string{
			"global:",
			"  scrape_timeout: 2m", // 2: greater than the default 1m interval
			"scrape_configs:",
			"  - job_name: a",
			"    tls_config: {cert_file: a.pem}", // 5: no key
			"  - job_name: b",
			"    file_sd_configs:",
			"      - refresh_interval: 1m", // 8: no files
			"  - job_name: a",              // 9: duplicate
			"query:",
			"  max_samples: many", // 11
			"remote_write: []",    // 12
		}, "\n"), []want{
			{2, "global.scrape_timeout", "global scrape timeout greater than scrape interval"},
			{5, "scrape_configs[0].tls_config", "key or key_file must be configured"},
			{8, "scrape_configs[1].file_sd_configs[0]", "at least one path"},
			{9, "scrape_configs[2].job_name", "multiple scrape configs"},
			{11, "query.max_samples", "cannot unmarshal"},
			{12, "remote_write", "unknown field"},
		}},
		{"analysis problems name their path", strings.Join([]string{
			"analysis:",
			"  cost_per_replica_hour: -1", // 2
			"  objectives:",
			"    - job: demo",
			"      latency_threshold: 0", // 5
			"      error_ratio_query: 'rate(x[1m]'",
			"      error_ratio_threshold: 0.01",
			"    - {job: demo, latency_threshold: 0.2, error_ratio_threshold: 0.5}", // 8
		}, "\n"), []want{
			{2, "analysis.cost_per_replica_hour", "must not be negative"},
			{5, "analysis.objectives[0].latency_threshold", "must be positive"},
			{6, "analysis.objectives[0].error_ratio_query", "unclosed"},
			{8, "analysis.objectives[1].job", `"demo" already has an objective`},
			{8, "analysis.objectives[1].error_ratio_query", "must be set with error_ratio_threshold"},
		}},
		{"validate error without the field in the file", "storage:\n  embedded:\n", []want{
			{2, "storage.embedded.path", "must not be empty"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test.yml", []byte(tt.content), slog.New(slog.DiscardHandler))
			checkProblems(t, err, "test.yml", tt.want)
		})
	}
}

func checkProblems(t *testing.T, err error, file string, want []want) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error:\n%v", err)
		}
		return
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error %v is not Problems", err)
	}
	if len(ps) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(ps), len(want), ps)
	}
	for i, w := range want {
		p := ps[i]
		if p.File != file || p.Line != w.line || p.Field != w.field || !strings.Contains(p.Message, w.msg) {
			t.Errorf("problem %d = %q, want %s:%d: %s: …%s…", i, p.String(), file, w.line, w.field, w.msg)
		}
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		name string
		p    Problem
		want string
	}{
		{"all parts", Problem{"a.yml", 3, "web.listen_address", "must not be empty"}, "a.yml:3: web.listen_address: must not be empty"},
		{"no line", Problem{File: "a.yml", Field: "storage.embedded.path", Message: "must not be empty"}, "a.yml: storage.embedded.path: must not be empty"},
		{"no field", Problem{File: "a.yml", Line: 1, Message: "bad"}, "a.yml:1: bad"},
		{"message only", Problem{Message: "bad"}, "bad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
	ps := Problems{{File: "a", Line: 1, Message: "x"}, {File: "a", Line: 2, Message: "y"}}
	if got := ps.Error(); got != "a:1: x\na:2: y" {
		t.Errorf("Problems.Error() = %q", got)
	}
}
