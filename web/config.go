package web

import (
	"errors"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
)

// Config is the web section of the configuration file.
type Config struct {
	// ListenAddress is where the HTTP server listens; --web.listen-address overrides it.
	ListenAddress string `yaml:"listen_address"`
	// BearerTokenFile, when set, names a file holding the token that every
	// endpoint but /-/healthy and /-/ready requires as "Authorization: Bearer <token>".
	BearerTokenFile string `yaml:"bearer_token_file"`
	// TLSServerConfig turns on HTTPS when both files are set.
	TLSServerConfig TLSConfig `yaml:"tls_server_config"`
	// ExternalURL is the URL under which Tidewatch is reachable, used in links.
	ExternalURL string `yaml:"external_url"`
	// ReadTimeout bounds the time to read a whole request, body included
	// (Prometheus' --web.read-timeout). It does not bound the handler:
	// queries run under query.timeout once their request is read.
	ReadTimeout model.Duration `yaml:"read_timeout"`
}

// TLSConfig names the server certificate and key.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// DefaultConfig is the web section used when the file has none.
var DefaultConfig = Config{ListenAddress: ":9470", ReadTimeout: model.Duration(5 * time.Minute)}

// UnmarshalYAML applies defaults before decoding.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig
	type plain Config
	return unmarshal((*plain)(c))
}

// SetDirectory makes the section's file paths relative to dir, the
// configuration file's directory.
func (c *Config) SetDirectory(dir string) {
	c.BearerTokenFile = config.JoinDir(dir, c.BearerTokenFile)
	c.TLSServerConfig.CertFile = config.JoinDir(dir, c.TLSServerConfig.CertFile)
	c.TLSServerConfig.KeyFile = config.JoinDir(dir, c.TLSServerConfig.KeyFile)
}

// Validate checks the section's fields against each other.
func (c *Config) Validate() error {
	var errs []error
	if c.ListenAddress == "" {
		errs = append(errs, errors.New("web.listen_address: must not be empty"))
	}
	if c.ReadTimeout <= 0 {
		errs = append(errs, errors.New("web.read_timeout: must be positive"))
	}
	if (c.TLSServerConfig.CertFile == "") != (c.TLSServerConfig.KeyFile == "") {
		errs = append(errs, errors.New("web.tls_server_config: cert_file and key_file must be set together"))
	}
	return errors.Join(errs...)
}
