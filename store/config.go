package store

import (
	"fmt"

	"github.com/tidewatch/tidewatch/store/embedded"
)

// Backend types accepted in storage.type.
const (
	TypeEmbedded = "embedded"
)

// Config is the storage section of the configuration file.
type Config struct {
	Type     string          `yaml:"type"`
	Embedded embedded.Config `yaml:"embedded"`
}

// DefaultConfig is the storage section used when the file has none.
var DefaultConfig = Config{
	Type:     TypeEmbedded,
	Embedded: embedded.DefaultConfig,
}

// UnmarshalYAML applies defaults before decoding.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig
	type plain Config
	return unmarshal((*plain)(c))
}

// Validate checks the section's fields against each other.
func (c *Config) Validate() error {
	switch c.Type {
	case TypeEmbedded:
		return c.Embedded.Validate()
	default:
		return fmt.Errorf("storage.type: unknown backend %q (supported: %s)", c.Type, TypeEmbedded)
	}
}
