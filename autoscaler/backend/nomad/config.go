package nomad

import (
	"errors"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
)

// Config is a nomad backend's keys in autoscaling.backends.
type Config struct {
	Address   string         `yaml:"address,omitempty"`
	TokenFile string         `yaml:"token_file,omitempty"`
	Region    string         `yaml:"region,omitempty"`
	Timeout   model.Duration `yaml:"timeout,omitempty"`
}

// DefaultConfig holds the defaults (a 30s timeout, applied in New).
var DefaultConfig = Config{}

var (
	_ backend.Config      = (*Config)(nil)
	_ backend.FileChecker = (*Config)(nil)
)

// CheckFiles reads token_file as New does.
func (c *Config) CheckFiles() map[string]error {
	return backend.CheckSecretFile("token_file", c.TokenFile)
}

// Validate checks the keys.
func (c *Config) Validate() error {
	var errs []error
	if c.Timeout < 0 {
		errs = append(errs, backend.Problem("", "durations must not be negative"))
	}
	if c.Address == "" {
		errs = append(errs, backend.Problem("address", "must not be empty"))
	}
	return errors.Join(errs...)
}

// ValidateTarget requires the task group.
func (c *Config) ValidateTarget(t backend.Target) error {
	if t.Group == "" {
		return backend.Problem("group", "must name the task group of a nomad job")
	}
	return nil
}

// CallTimeout bounds one call.
func (c *Config) CallTimeout() time.Duration { return backend.TimeoutOr(time.Duration(c.Timeout)) }

// SetDirectory makes token_file relative to dir.
func (c *Config) SetDirectory(dir string) { c.TokenFile = commoncfg.JoinDir(dir, c.TokenFile) }

// New builds the backend c describes.
func New(c Config, _ backend.Deps) (*Backend, error) {
	token := ""
	if c.TokenFile != "" {
		var err error
		if token, err = backend.ReadSecret(c.TokenFile); err != nil {
			return nil, err
		}
	}
	return NewWithOptions(Options{Address: c.Address, Token: token, Region: c.Region, Timeout: backend.TimeoutOr(time.Duration(c.Timeout))})
}
