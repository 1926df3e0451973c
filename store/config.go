package store

import (
	"fmt"
	"path/filepath"

	"github.com/tidewatch/tidewatch/store/clickhouse"
	"github.com/tidewatch/tidewatch/store/embedded"
)

// Backend types accepted in storage.type.
const (
	TypeEmbedded   = "embedded"
	TypeClickHouse = "clickhouse"
)

// Config is the storage section of the configuration file.
type Config struct {
	Type       string            `yaml:"type"`
	Embedded   embedded.Config   `yaml:"embedded"`
	ClickHouse clickhouse.Config `yaml:"clickhouse"`
}

// DefaultConfig is the storage section used when the file has none.
var DefaultConfig = Config{
	Type:       TypeEmbedded,
	Embedded:   embedded.DefaultConfig,
	ClickHouse: clickhouse.DefaultConfig,
}

// UnmarshalYAML applies defaults before decoding.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig
	type plain Config
	return unmarshal((*plain)(c))
}

// SetDirectory makes the backends' credential and TLS file paths relative to
// dir, the configuration file's directory. Data paths (embedded.path,
// clickhouse.queue.path) stay relative to the working directory.
func (c *Config) SetDirectory(dir string) {
	c.ClickHouse.SetDirectory(dir)
}

// DataDir is the storage path: the directory under which Tidewatch keeps its
// local files (the built-in notifier's state among them). It is
// embedded.path for the embedded store, and the directory holding the disk
// queue (clickhouse.queue.path's parent) for ClickHouse.
func (c *Config) DataDir() string {
	if c.Type == TypeClickHouse {
		return filepath.Dir(c.ClickHouse.Queue.Path)
	}
	return c.Embedded.Path
}

// Validate checks the section's fields against each other.
func (c *Config) Validate() error {
	switch c.Type {
	case TypeEmbedded:
		return c.Embedded.Validate()
	case TypeClickHouse:
		return c.ClickHouse.Validate()
	default:
		return fmt.Errorf("storage.type: unknown backend %q (supported: %s, %s)", c.Type, TypeEmbedded, TypeClickHouse)
	}
}
