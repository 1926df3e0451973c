package kubernetes

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
	"github.com/tidewatch/tidewatch/internal/fileread"
)

// Config is a kubernetes backend's keys in autoscaling.backends.
type Config struct {
	Kubeconfig string         `yaml:"kubeconfig,omitempty"`
	InCluster  bool           `yaml:"in_cluster,omitempty"`
	Context    string         `yaml:"context,omitempty"`
	Timeout    model.Duration `yaml:"timeout,omitempty"`
}

// DefaultConfig holds the defaults (a 30s timeout, applied in New).
var DefaultConfig = Config{}

var (
	_ backend.Config      = (*Config)(nil)
	_ backend.FileChecker = (*Config)(nil)
)

// CheckFiles checks that kubeconfig is a readable file within bounds.
func (c *Config) CheckFiles() map[string]error {
	if c.Kubeconfig == "" {
		return nil
	}
	return map[string]error{"kubeconfig": fileread.Check(c.Kubeconfig, fileread.ConfigLimit)}
}

// Validate checks the keys.
func (c *Config) Validate() error {
	var errs []error
	if c.Timeout < 0 {
		errs = append(errs, backend.Problem("", "durations must not be negative"))
	}
	if c.InCluster && c.Kubeconfig != "" {
		errs = append(errs, backend.Problem("in_cluster", "kubeconfig and in_cluster are mutually exclusive"))
	}
	return errors.Join(errs...)
}

// ValidateTarget requires a kind, and an api_version for a custom one.
func (c *Config) ValidateTarget(t backend.Target) error {
	switch {
	case t.Kind == "":
		return backend.Problem("kind", "must not be empty (Deployment, StatefulSet, ReplicaSet or a kind with /scale)")
	case !isAppsKind(t.Kind) && t.APIVersion == "":
		return backend.Problem("api_version", "must be set for kind %s", t.Kind)
	}
	return nil
}

func isAppsKind(kind string) bool {
	switch kind {
	case "Deployment", "StatefulSet", "ReplicaSet":
		return true
	}
	return false
}

// CallTimeout bounds one call.
func (c *Config) CallTimeout() time.Duration { return backend.TimeoutOr(time.Duration(c.Timeout)) }

// SetDirectory makes kubeconfig relative to dir; one starting with ~/ is
// under the home directory.
func (c *Config) SetDirectory(dir string) {
	if rest, ok := strings.CutPrefix(c.Kubeconfig, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			c.Kubeconfig = filepath.Join(home, rest)
		}
	}
	c.Kubeconfig = commoncfg.JoinDir(dir, c.Kubeconfig)
}

// New builds the backend c describes.
func New(c Config, _ backend.Deps) (*Backend, error) {
	return NewWithOptions(Options{Kubeconfig: c.Kubeconfig, InCluster: c.InCluster, Context: c.Context, Timeout: backend.TimeoutOr(time.Duration(c.Timeout))})
}
