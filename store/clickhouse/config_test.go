package clickhouse

import (
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/units"
	"github.com/prometheus/common/model"
	yaml "go.yaml.in/yaml/v2"
)

func TestConfigDecode(t *testing.T) {
	cases := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c Config)
	}{
		{"empty section takes defaults", "{}", func(t *testing.T, c Config) {
			if c.Database != "tidewatch" || c.Username != "default" || c.Compression != "lz4" ||
				len(c.Addresses) != 1 || c.Addresses[0] != "127.0.0.1:9000" ||
				c.Retention != model.Duration(30*24*time.Hour) || c.Batch != DefaultBatchConfig ||
				c.Queue != DefaultQueueConfig || c.Query != DefaultQueryLimits || c.TLS != nil || c.Cluster != "" {
				t.Errorf("defaults = %+v", c)
			}
		}},
		{"partial nested sections keep the other defaults", `
batch: {max_rows: 5000}
queue: {path: /var/lib/tw/queue}
query: {max_series: 10}
`, func(t *testing.T, c Config) {
			if c.Batch.MaxRows != 5000 || c.Batch.MaxDelay != DefaultBatchConfig.MaxDelay {
				t.Errorf("batch = %+v", c.Batch)
			}
			if c.Queue.Path != "/var/lib/tw/queue" || c.Queue.MaxSize != units.GiB {
				t.Errorf("queue = %+v", c.Queue)
			}
			if c.Query.MaxSeries != 10 || c.Query.MaxSamples != DefaultQueryLimits.MaxSamples {
				t.Errorf("query = %+v", c.Query)
			}
		}},
		{"the issue's example", `
addresses: ["ch1:9000", "ch2:9000"]
database: metrics
username: tw
password_file: /etc/tw/ch.pass
tls: {insecure_skip_verify: true}
compression: zstd
cluster: prod
retention: 90d
batch: {max_rows: 200000, max_delay: 2s}
queue: {path: q, max_size: 2GiB}
query: {max_series: 5, max_samples: 6}
`, func(t *testing.T, c Config) {
			if len(c.Addresses) != 2 || c.Database != "metrics" || c.Username != "tw" || c.PasswordFile != "/etc/tw/ch.pass" ||
				c.TLS == nil || !c.TLS.InsecureSkipVerify || c.Compression != "zstd" || c.Cluster != "prod" ||
				c.Retention != model.Duration(90*24*time.Hour) || c.Batch.MaxRows != 200000 ||
				c.Batch.MaxDelay != model.Duration(2*time.Second) || c.Queue.MaxSize != 2*units.GiB ||
				c.Query.MaxSeries != 5 || c.Query.MaxSamples != 6 {
				t.Errorf("decoded %+v", c)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("validate: %v", err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			if err := yaml.UnmarshalStrict([]byte(tc.yaml), &c); err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
	t.Run("unknown key", func(t *testing.T) {
		var c Config
		if err := yaml.UnmarshalStrict([]byte("batch: {max_rowz: 1}"), &c); err == nil {
			t.Fatal("unknown key accepted")
		}
	})
	t.Run("defaults are not shared", func(t *testing.T) {
		var c Config
		if err := yaml.UnmarshalStrict([]byte("{}"), &c); err != nil {
			t.Fatal(err)
		}
		c.Addresses[0] = "changed:1"
		if DefaultConfig.Addresses[0] != "127.0.0.1:9000" {
			t.Fatal("decoding aliased DefaultConfig.Addresses")
		}
	})
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(c *Config)
		want   []string // substrings, one per expected error
	}{
		{"defaults", func(*Config) {}, nil},
		{"no addresses", func(c *Config) { c.Addresses = nil }, []string{"storage.clickhouse.addresses: must list"}},
		{"bad address", func(c *Config) { c.Addresses = []string{"ch1"} }, []string{`storage.clickhouse.addresses[0]: "ch1" is not host:port`}},
		{"bad database", func(c *Config) { c.Database = "tide-watch" }, []string{"storage.clickhouse.database:"}},
		{"no username", func(c *Config) { c.Username = "" }, []string{"storage.clickhouse.username: must not be empty"}},
		{"compression", func(c *Config) { c.Compression = "gzip" }, []string{`storage.clickhouse.compression: unknown method "gzip"`}},
		{"cluster", func(c *Config) { c.Cluster = "a b" }, []string{"storage.clickhouse.cluster:"}},
		{"negative retention", func(c *Config) { c.Retention = -1 }, []string{"storage.clickhouse.retention: must not be negative"}},
		{"sub-day retention", func(c *Config) { c.Retention = model.Duration(time.Hour) }, []string{"storage.clickhouse.retention: must be at least 1d"}},
		{"zero retention keeps all", func(c *Config) { c.Retention = 0 }, nil},
		{"batch", func(c *Config) { c.Batch = BatchConfig{} }, []string{"storage.clickhouse.batch.max_rows: must be positive", "storage.clickhouse.batch.max_delay: must be positive"}},
		{"huge batch", func(c *Config) { c.Batch.MaxRows = 1 << 30 }, []string{"storage.clickhouse.batch.max_rows: must be at most"}},
		{"queue", func(c *Config) { c.Queue = QueueConfig{MaxSize: units.KiB} }, []string{"storage.clickhouse.queue.path: must not be empty", "storage.clickhouse.queue.max_size: must be at least 4MiB"}},
		{"query", func(c *Config) { c.Query = QueryLimits{} }, []string{"storage.clickhouse.query.max_series: must be positive", "storage.clickhouse.query.max_samples: must be positive"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig
			c.Addresses = append([]string(nil), c.Addresses...)
			tc.mutate(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("validate accepted %+v", c)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("got %d errors %q, want %d", len(lines), lines, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("error %d = %q, want prefix %q", i, lines[i], w)
				}
			}
		})
	}
}
