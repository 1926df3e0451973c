package notify

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"time"

	amconfig "github.com/prometheus/alertmanager/config"
	amcommoncfg "github.com/prometheus/alertmanager/config/common"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	yaml "go.yaml.in/yaml/v2"
)

// Config is the notifications section: Alertmanager's configuration language
// (global, route, inhibit_rules, receivers, templates, time_intervals), so
// that sections of an existing alertmanager.yml can be pasted in, plus where
// the built-in notifier keeps its state.
//
// An absent or empty section (no route) turns delivery off: alerts are still
// held, grouped and shown by /api/v2/alerts, and silences work, but nothing is
// sent.
type Config struct {
	// DataDir holds the silences and the notification log. Empty means
	// "alerting" inside the embedded store's directory (or data/alerting).
	DataDir string `yaml:"data_dir,omitempty"`
	// Retention is how long expired silences and notification log entries
	// are kept (Alertmanager's --data.retention).
	Retention model.Duration `yaml:"retention,omitempty"`

	Global            *amconfig.GlobalConfig      `yaml:"global,omitempty"`
	Route             *amconfig.Route             `yaml:"route,omitempty"`
	InhibitRules      []amcommoncfg.InhibitRule   `yaml:"inhibit_rules,omitempty"`
	Receivers         []amconfig.Receiver         `yaml:"receivers,omitempty"`
	Templates         []string                    `yaml:"templates,omitempty"`
	TimeIntervals     []amconfig.TimeInterval     `yaml:"time_intervals,omitempty"`
	MuteTimeIntervals []amconfig.MuteTimeInterval `yaml:"mute_time_intervals,omitempty"`

	// am is the section loaded by Alertmanager's own config.Load, with its
	// defaults, inheritance from global and cross-checks; nil when the
	// section has no route.
	am *amconfig.Config
}

// DefaultRetention is Alertmanager's default data retention.
const DefaultRetention = model.Duration(120 * time.Hour)

// tidewatchKeys are the keys of the section that Alertmanager does not know.
var tidewatchKeys = []string{"data_dir", "retention"}

// UnmarshalYAML decodes the section, then loads its Alertmanager part with
// Alertmanager's config.Load so that every check Alertmanager makes
// (undefined receivers, global SMTP settings…) applies.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	*c = Config{Retention: DefaultRetention}
	type plain Config
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	var raw map[string]any
	if err := unmarshal(&raw); err != nil {
		return err
	}
	for _, k := range tidewatchKeys {
		delete(raw, k)
	}
	if len(raw) == 0 {
		return nil
	}
	if c.Route == nil {
		return errors.New("notifications.route: required when notifications are configured")
	}
	text, err := yaml.Marshal(raw)
	if err != nil {
		return fmt.Errorf("re-encode notifications: %w", err)
	}
	am, err := amconfig.Load(string(text))
	if err != nil {
		return err
	}
	c.am = am
	return nil
}

// Validate checks the Tidewatch fields.
func (c *Config) Validate() error {
	if c.Retention <= 0 {
		return errors.New("notifications.retention: must be positive")
	}
	return nil
}

// Enabled reports whether the section configures delivery.
func (c *Config) Enabled() bool { return c.am != nil }

// SetDirectory resolves relative template and credential file paths
// against dir, the configuration file's directory, as Alertmanager resolves
// them against its own file's.
func (c *Config) SetDirectory(dir string) {
	if c.am == nil {
		return
	}
	for i, t := range c.am.Templates {
		if t != "" && !filepath.IsAbs(t) {
			c.am.Templates[i] = filepath.Join(dir, t)
		}
	}
	if c.am.Global != nil && c.am.Global.HTTPConfig != nil {
		c.am.Global.HTTPConfig.SetDirectory(dir)
	}
	httpConfigType := reflect.TypeFor[*commoncfg.HTTPClientConfig]()
	for i := range c.am.Receivers {
		rv := reflect.ValueOf(&c.am.Receivers[i]).Elem()
		for j := range rv.NumField() {
			f := rv.Field(j)
			if f.Kind() != reflect.Slice {
				continue
			}
			for k := range f.Len() {
				e := f.Index(k)
				if e.Kind() != reflect.Pointer || e.IsNil() || e.Elem().Kind() != reflect.Struct {
					continue
				}
				if h := e.Elem().FieldByName("HTTPConfig"); h.IsValid() && h.Type() == httpConfigType && !h.IsNil() {
					h.Interface().(*commoncfg.HTTPClientConfig).SetDirectory(dir)
				}
			}
		}
	}
}

// alertmanagerConfig returns the configuration the notifier runs: the loaded
// section, or one that holds alerts and sends nothing.
func (c *Config) alertmanagerConfig() (*amconfig.Config, error) {
	if c.am != nil {
		return c.am, nil
	}
	return amconfig.Load("route:\n  receiver: none\nreceivers:\n  - name: none\n")
}
