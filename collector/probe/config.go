package probe

import (
	"errors"
	"fmt"
	"time"

	bbconfig "github.com/prometheus/blackbox_exporter/config"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/model/relabel"
)

// Defaults of a probe config.
const (
	// DefaultInterval is how often each target is probed when interval is unset.
	DefaultInterval = 30 * time.Second
	// DefaultTimeout bounds one probe when module.timeout is unset (or the
	// interval when that is shorter).
	DefaultTimeout = 10 * time.Second
)

// DefaultConfig is a probe config's values before decoding.
var DefaultConfig = Config{
	Interval: model.Duration(DefaultInterval),
	Module:   bbconfig.DefaultModule,
}

// Config is one entry of probe_configs: a job whose targets (static or from
// any service discovery, then relabeled) are all probed with one module.
//
//	probe_configs:
//	  - job_name: api-health
//	    interval: 10s
//	    module: {prober: http, timeout: 5s, http: {valid_status_codes: [200]}}
//	    static_configs: [{targets: ["http://127.0.0.1:8080/healthz"]}]
//
// Module is blackbox_exporter's module, with the same options and defaults,
// so a blackbox.yml module can be pasted in as it is.
type Config struct {
	JobName  string          `yaml:"job_name"`
	Interval model.Duration  `yaml:"interval,omitempty"`
	Module   bbconfig.Module `yaml:"module"`
	// ServiceDiscoveryConfigs are static_configs and every <name>_sd_configs,
	// decoded inline as in Prometheus' scrape configs.
	ServiceDiscoveryConfigs discovery.Configs `yaml:"-"`
	RelabelConfigs          []*relabel.Config `yaml:"relabel_configs,omitempty"`
}

// UnmarshalYAML applies defaults and decodes the inline service discoveries.
// Fields are checked against each other by Configs.Validate.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultConfig
	return discovery.UnmarshalYAMLWithInlineConfigs(c, unmarshal)
}

// MarshalYAML encodes the inline service discoveries.
func (c *Config) MarshalYAML() (any, error) {
	return discovery.MarshalYAMLWithInlineConfigs(c)
}

// timeout is the effective per-probe timeout.
func (c *Config) timeout() time.Duration {
	if c.Module.Timeout > 0 {
		return c.Module.Timeout
	}
	return min(DefaultTimeout, time.Duration(c.Interval))
}

// validate checks one config; path is its place in the file (probe_configs[i]).
func (c *Config) validate(path string) error {
	var errs []error
	if c.JobName == "" {
		errs = append(errs, fmt.Errorf("%s.job_name: must not be empty", path))
	}
	if c.Interval <= 0 {
		errs = append(errs, fmt.Errorf("%s.interval: must be positive", path))
	}
	if _, ok := probers[c.Module.Prober]; !ok {
		errs = append(errs, fmt.Errorf("%s.module.prober: unknown prober %q (known: %s)", path, c.Module.Prober, proberNames()))
	}
	if c.Module.Timeout < 0 {
		errs = append(errs, fmt.Errorf("%s.module.timeout: must not be negative", path))
	} else if c.Interval > 0 && c.Module.Timeout > time.Duration(c.Interval) {
		errs = append(errs, fmt.Errorf("%s.module.timeout: %s is longer than the interval (%s)", path, c.Module.Timeout, c.Interval))
	}
	for i, rc := range c.RelabelConfigs {
		p := fmt.Sprintf("%s.relabel_configs[%d]", path, i)
		if rc == nil {
			errs = append(errs, fmt.Errorf("%s: empty relabel config", p))
			continue
		}
		if err := rc.Validate(model.UTF8Validation); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
		}
	}
	for i, sd := range c.ServiceDiscoveryConfigs {
		if sc, ok := sd.(discovery.StaticConfig); ok {
			for j, tg := range sc {
				if tg == nil {
					errs = append(errs, fmt.Errorf("%s.static_configs: group %d/%d is empty", path, i, j))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// Configs is the probe_configs section.
type Configs []*Config

// Validate checks every config and that job names are unique.
func (cs Configs) Validate() error {
	var errs []error
	first := map[string]int{}
	for i, c := range cs {
		path := fmt.Sprintf("probe_configs[%d]", i)
		if c == nil {
			errs = append(errs, fmt.Errorf("%s: empty probe config", path))
			continue
		}
		if err := c.validate(path); err != nil {
			errs = append(errs, err)
		}
		if j, ok := first[c.JobName]; ok && c.JobName != "" {
			errs = append(errs, fmt.Errorf("%s.job_name: %q is already the job name of probe_configs[%d]", path, c.JobName, j))
			continue
		}
		first[c.JobName] = i
	}
	return errors.Join(errs...)
}

// SetDirectory resolves the relative file paths of every config (service
// discovery files, TLS and credential files, HTTP body files) against dir.
func (cs Configs) SetDirectory(dir string) {
	for _, c := range cs {
		if c == nil {
			continue
		}
		c.ServiceDiscoveryConfigs.SetDirectory(dir)
		m := &c.Module
		m.HTTP.HTTPClientConfig.SetDirectory(dir)
		m.HTTP.BodyFile = commoncfg.JoinDir(dir, m.HTTP.BodyFile)
		m.TCP.TLSConfig.SetDirectory(dir)
		m.GRPC.TLSConfig.SetDirectory(dir)
		m.DNS.TLSConfig.SetDirectory(dir)
	}
}
