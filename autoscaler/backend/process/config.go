package process

import (
	"errors"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
)

// Config is a process backend's keys in autoscaling.backends.
type Config struct {
	Command     []string       `yaml:"command,omitempty"`
	BasePort    int            `yaml:"base_port,omitempty"`
	Dir         string         `yaml:"dir,omitempty"`
	Env         []string       `yaml:"env,omitempty"`
	StopTimeout model.Duration `yaml:"stop_timeout,omitempty"`
	SDFile      string         `yaml:"sd_file,omitempty"`
	Labels      model.LabelSet `yaml:"labels,omitempty"`
}

// DefaultConfig holds the defaults (applied in New).
var DefaultConfig = Config{}

var _ backend.Config = (*Config)(nil)

// Validate checks the keys.
func (c *Config) Validate() error {
	var errs []error
	if c.StopTimeout < 0 {
		errs = append(errs, backend.Problem("", "durations must not be negative"))
	}
	if len(c.Command) == 0 {
		errs = append(errs, backend.Problem("command", "must not be empty"))
	}
	if c.BasePort < 0 || c.BasePort > 65535 {
		errs = append(errs, backend.Problem("base_port", "must be a port number"))
	}
	return errors.Join(errs...)
}

// ValidateTarget accepts any target: the name is the fleet's.
func (c *Config) ValidateTarget(backend.Target) error { return nil }

// SetDirectory makes sd_file and dir relative to dir.
func (c *Config) SetDirectory(dir string) {
	c.SDFile = commoncfg.JoinDir(dir, c.SDFile)
	c.Dir = commoncfg.JoinDir(dir, c.Dir)
}

// New builds the backend c describes.
func New(c Config, d backend.Deps) (*Backend, error) {
	return NewWithOptions(Options{
		Name: d.Name, Command: c.Command, BasePort: c.BasePort, Dir: c.Dir, Env: c.Env,
		StopTimeout: time.Duration(c.StopTimeout), SDFile: c.SDFile, Labels: c.Labels, Logger: d.Logger,
	})
}
