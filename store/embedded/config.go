package embedded

import (
	"errors"
	"time"

	"github.com/alecthomas/units"
	"github.com/prometheus/common/model"
)

// Config configures the embedded Prometheus TSDB backend (storage.embedded).
type Config struct {
	// Path is the data directory, relative to the working directory unless absolute.
	Path string `yaml:"path"`
	// Retention drops blocks whose data is older than this.
	Retention model.Duration `yaml:"retention"`
	// RetentionSize, when non-zero, drops the oldest blocks once the blocks
	// and WAL take more than this many bytes.
	RetentionSize units.Base2Bytes `yaml:"retention_size"`
	// OutOfOrderTimeWindow accepts samples up to this much older than the
	// newest sample of their series (useful for remote-write from several
	// senders); 0 rejects out-of-order samples as Prometheus does by default.
	OutOfOrderTimeWindow model.Duration `yaml:"out_of_order_time_window"`
}

// DefaultConfig holds the embedded backend's defaults.
var DefaultConfig = Config{
	Path:      "data/",
	Retention: model.Duration(15 * 24 * time.Hour),
}

// UnmarshalYAML applies defaults before decoding.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig
	type plain Config
	return unmarshal((*plain)(c))
}

// Validate checks the section's fields.
func (c *Config) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, errors.New("storage.embedded.path: must not be empty"))
	}
	if c.Retention < 0 {
		errs = append(errs, errors.New("storage.embedded.retention: must not be negative"))
	}
	if c.RetentionSize < 0 {
		errs = append(errs, errors.New("storage.embedded.retention_size: must not be negative"))
	}
	if c.OutOfOrderTimeWindow < 0 {
		errs = append(errs, errors.New("storage.embedded.out_of_order_time_window: must not be negative"))
	}
	return errors.Join(errs...)
}
