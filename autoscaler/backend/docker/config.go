package docker

import (
	"errors"
	"time"

	"github.com/prometheus/common/model"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
)

// Config is a docker (Swarm) backend's keys in autoscaling.backends.
type Config struct {
	// Host is the Engine address: unix:///var/run/docker.sock, tcp://host:2375.
	Host    string         `yaml:"host,omitempty"`
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
	if c.Host == "" {
		errs = append(errs, backend.Problem("host", "must not be empty (unix:///var/run/docker.sock, tcp://host:2375)"))
	}
	return errors.Join(errs...)
}

// ValidateTarget accepts any target: the name is the Swarm service.
func (c *Config) ValidateTarget(backend.Target) error { return nil }

// CallTimeout bounds one call.
func (c *Config) CallTimeout() time.Duration { return backend.TimeoutOr(time.Duration(c.Timeout)) }

// New builds the backend c describes.
func New(c Config, _ backend.Deps) (*Backend, error) {
	return NewWithOptions(Options{Host: c.Host, Timeout: backend.TimeoutOr(time.Duration(c.Timeout))})
}
