package exec

import (
	"errors"
	"time"

	"github.com/prometheus/common/model"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
)

// Config is an exec backend's keys in autoscaling.backends.
type Config struct {
	Command []string `yaml:"command,omitempty"`
	// CurrentCommand prints the current replica count.
	CurrentCommand []string `yaml:"current_command,omitempty"`
	// Timeout bounds one command run.
	Timeout model.Duration `yaml:"timeout,omitempty"`
}

// DefaultConfig holds the defaults (a 30s timeout, applied in New).
var DefaultConfig = Config{}

var _ backend.Config = (*Config)(nil)

// Validate checks the keys.
func (c *Config) Validate() error {
	var errs []error
	if c.Timeout < 0 {
		errs = append(errs, backend.Problem("", "durations must not be negative"))
	}
	if len(c.Command) == 0 {
		errs = append(errs, backend.Problem("command", "must not be empty"))
	}
	return errors.Join(errs...)
}

// ValidateTarget accepts any target: the command interprets it.
func (c *Config) ValidateTarget(backend.Target) error { return nil }

// CallTimeout bounds one call.
func (c *Config) CallTimeout() time.Duration { return backend.TimeoutOr(time.Duration(c.Timeout)) }

// New builds the backend c describes.
func New(c Config, _ backend.Deps) (*Backend, error) {
	return NewWithOptions(Options{Command: c.Command, CurrentCommand: c.CurrentCommand, Timeout: backend.TimeoutOr(time.Duration(c.Timeout))})
}
