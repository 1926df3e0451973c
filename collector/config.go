package collector

import (
	twdiscovery "github.com/tidewatch/tidewatch/collector/discovery"
)

// Config is the collector section of the configuration file.
//
//	collector:
//	  shard: {count: 3, index: 0}
type Config struct {
	// Shard makes this instance scrape and probe only its share of every
	// job's targets (see discovery.Shard).
	Shard twdiscovery.Shard `yaml:"shard"`
}

// DefaultConfig is the collector section used when the file has none: no
// sharding.
var DefaultConfig = Config{}

// UnmarshalYAML applies defaults before decoding.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig
	type plain Config
	return unmarshal((*plain)(c))
}

// Validate checks the section's fields against each other.
func (c *Config) Validate() error {
	return c.Shard.Validate("collector.shard")
}
