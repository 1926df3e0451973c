package autoscaler

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
	"github.com/tidewatch/tidewatch/autoscaler/backend/docker"
	execbackend "github.com/tidewatch/tidewatch/autoscaler/backend/exec"
	"github.com/tidewatch/tidewatch/autoscaler/backend/kubernetes"
	"github.com/tidewatch/tidewatch/autoscaler/backend/nomad"
	"github.com/tidewatch/tidewatch/autoscaler/backend/process"
	"github.com/tidewatch/tidewatch/autoscaler/backend/webhook"
	"github.com/tidewatch/tidewatch/internal/version"
)

// Backend types of the registry, for code that builds configurations.
const (
	TypeKubernetes BackendType = "kubernetes"
	TypeNomad      BackendType = "nomad"
	TypeDocker     BackendType = "docker"
	TypeWebhook    BackendType = "webhook"
	TypeExec       BackendType = "exec"
	TypeProcess    BackendType = "process"
)

// backendTypes is the registry of backend types: the type name users write
// in autoscaling.backends[].type, and its package's DefaultConfig and New.
//
// Adding a backend is adding one folder, autoscaler/backend/<name>/, whose
// package exports a Config (yaml tags, Validate, ValidateTarget; optional
// CallTimeout and SetDirectory), a DefaultConfig and New(Config,
// backend.Deps), and one line here. Decoding, the checks of keys and
// targets, and the line numbers of errors follow from the Config type.
var backendTypes = map[BackendType]Factory{
	TypeKubernetes: factory(kubernetes.DefaultConfig, kubernetes.New),
	TypeNomad:      factory(nomad.DefaultConfig, nomad.New),
	TypeDocker:     factory(docker.DefaultConfig, docker.New),
	TypeWebhook:    factory(webhook.DefaultConfig, webhook.New),
	TypeExec:       factory(execbackend.DefaultConfig, execbackend.New),
	TypeProcess:    factory(process.DefaultConfig, process.New),
}

// Factory is a backend type in the registry.
type Factory struct {
	// Config returns a new configuration holding the type's defaults.
	Config func() backend.Config
	// New builds a backend from a configuration that Config returned.
	New func(backend.Config, backend.Deps) (backend.Backend, error)
	// decode reads an autoscaling.backends entry's keys into a new
	// configuration, returning the keys the type does not have.
	decode func(unmarshal func(any) error) (backend.Config, []string, error)
}

// factory makes the Factory of a backend package from its DefaultConfig
// and its New.
func factory[C any, P interface {
	*C
	backend.Config
}, B backend.Backend](def C, build func(C, backend.Deps) (B, error)) Factory {
	return Factory{
		Config: func() backend.Config {
			c := def
			return P(&c)
		},
		New: func(c backend.Config, d backend.Deps) (backend.Backend, error) {
			p, ok := c.(P)
			if !ok {
				return nil, fmt.Errorf("configuration is a %T, not a %T", c, P(nil))
			}
			b, err := build(*p, d)
			if err != nil {
				return nil, err
			}
			return b, nil
		},
		decode: func(unmarshal func(any) error) (backend.Config, []string, error) {
			e := typedEntry[C]{Config: def}
			if err := unmarshal(&e); err != nil {
				return nil, nil, err
			}
			var unknown []string
			for k := range e.Rest {
				if k != "name" && k != "type" {
					unknown = append(unknown, k)
				}
			}
			slices.Sort(unknown)
			return P(&e.Config), unknown, nil
		},
	}
}

// NewBackend builds the backend c describes through the registry.
func NewBackend(c BackendConfig, logger *slog.Logger) (backend.Backend, error) {
	f, ok := backendTypes[c.Type]
	if !ok {
		return nil, fmt.Errorf("backend %s: unknown type %q", c.Name, c.Type)
	}
	b, err := f.New(c.config(), backend.Deps{
		Name:      c.Name,
		Logger:    logger.With("component", "autoscaler", "backend", c.Name),
		UserAgent: "Tidewatch/" + version.Get().Version,
	})
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", c.Name, err)
	}
	return b, nil
}
