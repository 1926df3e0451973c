package clickhouse

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"time"

	"github.com/alecthomas/units"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
)

// Compression methods accepted in storage.clickhouse.compression.
const (
	CompressionLZ4  = "lz4"
	CompressionZSTD = "zstd"
	CompressionNone = "none"
)

// Config configures the ClickHouse backend (storage.clickhouse).
type Config struct {
	// Addresses are host:port pairs of the native protocol (9000 by
	// default). The driver spreads connections over them and fails over.
	Addresses []string `yaml:"addresses"`
	// Database holds Tidewatch's tables; it is created when missing.
	Database string `yaml:"database"`
	Username string `yaml:"username"`
	// PasswordFile holds the password (trailing newlines are trimmed).
	// Empty means no password.
	PasswordFile string `yaml:"password_file"`
	// TLS, when present, connects with TLS (the server's tcp_port_secure).
	TLS *commoncfg.TLSConfig `yaml:"tls,omitempty"`
	// Compression of the native protocol blocks: lz4, zstd or none.
	Compression string `yaml:"compression"`
	// Cluster, when set, names a cluster of the servers' remote_servers: DDL
	// runs ON CLUSTER, local tables are Replicated*MergeTree and reads and
	// writes go through Distributed tables sharded by series.
	Cluster string `yaml:"cluster"`
	// Retention drops data older than this (whole days); 0 keeps everything.
	Retention model.Duration `yaml:"retention"`
	Batch     BatchConfig    `yaml:"batch"`
	Queue     QueueConfig    `yaml:"queue"`
	Query     QueryLimits    `yaml:"query"`
}

// BatchConfig sizes the inserts (storage.clickhouse.batch).
type BatchConfig struct {
	// MaxRows is the most sample rows one INSERT carries.
	MaxRows int `yaml:"max_rows"`
	// MaxDelay is the longest a committed sample waits for its batch to fill.
	MaxDelay model.Duration `yaml:"max_delay"`
}

// QueueConfig configures the on-disk queue (storage.clickhouse.queue).
type QueueConfig struct {
	// Path is the queue directory, relative to the working directory unless
	// absolute. One Tidewatch process uses it at a time.
	Path string `yaml:"path"`
	// MaxSize bounds the queue's segment files; a commit that would grow
	// it beyond this is rejected (and the store reports itself degraded).
	MaxSize units.Base2Bytes `yaml:"max_size"`
}

// QueryLimits bound what one Select may read (storage.clickhouse.query).
type QueryLimits struct {
	// MaxSeries is the most series one selector may match.
	MaxSeries int `yaml:"max_series"`
	// MaxSamples is the most samples one selector may read.
	MaxSamples int `yaml:"max_samples"`
}

// Defaults of the storage.clickhouse section.
var (
	DefaultBatchConfig = BatchConfig{MaxRows: 100_000, MaxDelay: model.Duration(time.Second)}
	DefaultQueueConfig = QueueConfig{Path: "data/queue", MaxSize: units.GiB}
	DefaultQueryLimits = QueryLimits{MaxSeries: 100_000, MaxSamples: 50_000_000}
	DefaultConfig      = Config{
		Addresses:   []string{"127.0.0.1:9000"},
		Database:    "tidewatch",
		Username:    "default",
		Compression: CompressionLZ4,
		Retention:   model.Duration(30 * 24 * time.Hour),
		Batch:       DefaultBatchConfig,
		Queue:       DefaultQueueConfig,
		Query:       DefaultQueryLimits,
	}
)

// minQueueSize keeps the queue large enough for a few segments.
const minQueueSize = 4 * units.MiB

// maxBatchRows caps storage.clickhouse.batch.max_rows: larger inserts only
// cost memory on both sides.
const maxBatchRows = 10_000_000

// identifier is what database and cluster names may look like: they are
// written into DDL unquoted-safe.
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// UnmarshalYAML applies defaults before decoding.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig
	c.Addresses = append([]string(nil), DefaultConfig.Addresses...)
	type plain Config
	return unmarshal((*plain)(c))
}

// UnmarshalYAML applies defaults before decoding.
func (c *BatchConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultBatchConfig
	type plain BatchConfig
	return unmarshal((*plain)(c))
}

// UnmarshalYAML applies defaults before decoding.
func (c *QueueConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultQueueConfig
	type plain QueueConfig
	return unmarshal((*plain)(c))
}

// UnmarshalYAML applies defaults before decoding.
func (c *QueryLimits) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultQueryLimits
	type plain QueryLimits
	return unmarshal((*plain)(c))
}

// Validate checks the section's fields and returns all problems joined, each
// as "storage.clickhouse.<field>: message".
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("storage.clickhouse.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if len(c.Addresses) == 0 {
		bad("addresses", "must list at least one host:port")
	}
	for i, a := range c.Addresses {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" || port == "" {
			bad(fmt.Sprintf("addresses[%d]", i), "%q is not host:port", a)
		}
	}
	if !identifier.MatchString(c.Database) {
		bad("database", "%q is not a valid name (letters, digits and _, not starting with a digit)", c.Database)
	}
	if c.Username == "" {
		bad("username", "must not be empty")
	}
	switch c.Compression {
	case CompressionLZ4, CompressionZSTD, CompressionNone:
	default:
		bad("compression", "unknown method %q (supported: %s, %s, %s)", c.Compression, CompressionLZ4, CompressionZSTD, CompressionNone)
	}
	if c.Cluster != "" && !identifier.MatchString(c.Cluster) {
		bad("cluster", "%q is not a valid cluster name", c.Cluster)
	}
	if c.TLS != nil {
		if err := c.TLS.Validate(); err != nil {
			bad("tls", "%v", err)
		}
	}
	switch {
	case c.Retention < 0:
		bad("retention", "must not be negative")
	case c.Retention > 0 && time.Duration(c.Retention) < 24*time.Hour:
		bad("retention", "must be at least 1d (data is dropped by whole days) or 0 to keep everything")
	}
	switch {
	case c.Batch.MaxRows <= 0:
		bad("batch.max_rows", "must be positive")
	case c.Batch.MaxRows > maxBatchRows:
		bad("batch.max_rows", "must be at most %d", maxBatchRows)
	}
	if c.Batch.MaxDelay <= 0 {
		bad("batch.max_delay", "must be positive")
	}
	if c.Queue.Path == "" {
		bad("queue.path", "must not be empty")
	}
	if c.Queue.MaxSize < minQueueSize {
		bad("queue.max_size", "must be at least %s", minQueueSize)
	}
	if c.Query.MaxSeries <= 0 {
		bad("query.max_series", "must be positive")
	}
	if c.Query.MaxSamples <= 0 {
		bad("query.max_samples", "must be positive")
	}
	return errors.Join(errs...)
}

// SetDirectory makes password_file and the TLS files relative to dir, the
// configuration file's directory.
func (c *Config) SetDirectory(dir string) {
	c.PasswordFile = commoncfg.JoinDir(dir, c.PasswordFile)
	if c.TLS != nil {
		c.TLS.SetDirectory(dir)
	}
}
