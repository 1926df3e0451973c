package webhook

import (
	"errors"
	"strings"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
)

// Config is a webhook backend's keys in autoscaling.backends.
type Config struct {
	URL          string            `yaml:"url,omitempty"`
	SecretFile   string            `yaml:"secret_file,omitempty"`
	Headers      map[string]string `yaml:"headers,omitempty"`
	MaxRetries   int               `yaml:"max_retries,omitempty"`
	RetryBackoff model.Duration    `yaml:"retry_backoff,omitempty"`
	Timeout      model.Duration    `yaml:"timeout,omitempty"`
}

// DefaultConfig holds the defaults (applied in New: 500ms backoff, 30s timeout).
var DefaultConfig = Config{}

var (
	_ backend.Config      = (*Config)(nil)
	_ backend.FileChecker = (*Config)(nil)
)

// CheckFiles reads secret_file as New does.
func (c *Config) CheckFiles() map[string]error {
	return backend.CheckSecretFile("secret_file", c.SecretFile)
}

// Validate checks the keys.
func (c *Config) Validate() error {
	var errs []error
	if c.Timeout < 0 || c.RetryBackoff < 0 {
		errs = append(errs, backend.Problem("", "durations must not be negative"))
	}
	if !strings.HasPrefix(c.URL, "http://") && !strings.HasPrefix(c.URL, "https://") {
		errs = append(errs, backend.Problem("url", "must be an http:// or https:// URL"))
	}
	if c.MaxRetries < 0 {
		errs = append(errs, backend.Problem("max_retries", "must not be negative"))
	}
	return errors.Join(errs...)
}

// ValidateTarget accepts any target: the receiver interprets it.
func (c *Config) ValidateTarget(backend.Target) error { return nil }

// CallTimeout bounds one call.
func (c *Config) CallTimeout() time.Duration { return backend.TimeoutOr(time.Duration(c.Timeout)) }

// SetDirectory makes secret_file relative to dir.
func (c *Config) SetDirectory(dir string) { c.SecretFile = commoncfg.JoinDir(dir, c.SecretFile) }

// New builds the backend c describes.
func New(c Config, d backend.Deps) (*Backend, error) {
	var secret []byte
	if c.SecretFile != "" {
		s, err := backend.ReadSecret(c.SecretFile)
		if err != nil {
			return nil, err
		}
		secret = []byte(s)
	}
	return NewWithOptions(Options{
		URL: c.URL, Secret: secret, Headers: c.Headers, MaxRetries: c.MaxRetries,
		RetryBackoff: time.Duration(c.RetryBackoff), Timeout: backend.TimeoutOr(time.Duration(c.Timeout)),
		UserAgent: d.UserAgent,
	})
}
