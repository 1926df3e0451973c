package autoscaler

import (
	"reflect"
	"time"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
)

// BackendConfig is one entry of autoscaling.backends: a name, a type and
// that type's own keys, flat beside them as in the documentation. The keys
// are decoded into the type's Config (see registry.go); a key the type does
// not have is reported by Validate.
type BackendConfig struct {
	Name string      `yaml:"name"`
	Type BackendType `yaml:"type"`
	// Config is the type's configuration, a pointer to its package's Config
	// (*webhook.Config…); nil means that type's DefaultConfig.
	Config backend.Config `yaml:"-"`
	// unknown lists the entry's keys that its type does not have.
	unknown []string
}

// UnmarshalYAML decodes name and type, then the other keys into the
// type's Config (starting from its DefaultConfig), straight from the
// document so that values read as they always did. An unknown type keeps
// only name and type, for Validate to report.
func (c *BackendConfig) UnmarshalYAML(unmarshal func(any) error) error {
	var head struct {
		Name string              `yaml:"name"`
		Type BackendType         `yaml:"type"`
		Rest map[string]anyValue `yaml:",inline"`
	}
	if err := unmarshal(&head); err != nil {
		return err
	}
	*c = BackendConfig{Name: head.Name, Type: head.Type}
	f, ok := backendTypes[c.Type]
	if !ok {
		return nil
	}
	cfg, unknown, err := f.decode(unmarshal)
	if err != nil {
		return err
	}
	c.Config, c.unknown = cfg, unknown
	return nil
}

// typedEntry decodes a backend entry's keys into its type's Config C; the
// keys C does not have (and name and type) land in Rest.
type typedEntry[C any] struct {
	Config C                   `yaml:",inline"`
	Rest   map[string]anyValue `yaml:",inline"`
}

// anyValue accepts any value without decoding it.
type anyValue struct{}

// UnmarshalYAML implements yaml.Unmarshaler.
func (*anyValue) UnmarshalYAML(func(any) error) error { return nil }

// UnionKey and UnionFields tell config's line-by-line checks which
// keys an entry may have beside name and type: those of the Config of the
// type named value.
func (BackendConfig) UnionKey() string { return "type" }

// UnionFields returns the struct type of value's Config.
func (BackendConfig) UnionFields(value string) (reflect.Type, bool) {
	f, ok := backendTypes[BackendType(value)]
	if !ok {
		return nil, false
	}
	return reflect.TypeOf(f.Config()).Elem(), true
}

// config returns the type's configuration, its defaults when unset; nil
// for an unknown type.
func (c *BackendConfig) config() backend.Config {
	if c.Config != nil {
		return c.Config
	}
	if f, ok := backendTypes[c.Type]; ok {
		return f.Config()
	}
	return nil
}

// callTimeout bounds one call to the backend: its timeout key when it has one.
func (c *BackendConfig) callTimeout() time.Duration {
	if t, ok := c.config().(interface{ CallTimeout() time.Duration }); ok {
		return t.CallTimeout()
	}
	return DefaultBackendTimeout
}

func (c *BackendConfig) validate(p string, known map[string]*BackendConfig) []error {
	var errs problems
	switch {
	case c.Name == "":
		errs.add(p+".name", "must not be empty")
	case known[c.Name] != nil:
		errs.add(p+".name", "%q is already the name of another backend", c.Name)
	}
	if err := c.Type.check(); err != nil {
		errs.add(p+".type", "%v", err)
		return errs
	}
	if c.Name != "" && known[c.Name] == nil {
		known[c.Name] = c
	}
	for _, key := range c.unknown {
		errs.add(p+"."+key, "not a field of a %s backend", c.Type)
	}
	for _, fe := range backend.FieldErrors(c.config().Validate()) {
		errs.addField(p, fe)
	}
	return errs
}
