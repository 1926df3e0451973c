package autoscaler

import (
	"fmt"
	"time"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
	"github.com/tidewatch/tidewatch/autoscaler/backend/docker"
	"github.com/tidewatch/tidewatch/autoscaler/backend/kubernetes"
	"github.com/tidewatch/tidewatch/autoscaler/backend/nomad"
)

// newOrchestratorBackend builds the kubernetes, nomad and docker backends.
func newOrchestratorBackend(c BackendConfig, timeout time.Duration) (backend.Backend, error) {
	var (
		b   backend.Backend
		err error
	)
	switch c.Type {
	case TypeKubernetes:
		b, err = kubernetes.New(kubernetes.Options{Kubeconfig: c.Kubeconfig, InCluster: c.InCluster, Context: c.Context, Timeout: timeout})
	case TypeNomad:
		token := ""
		if c.TokenFile != "" {
			if token, err = readSecret(c.TokenFile); err != nil {
				return nil, fmt.Errorf("backend %s: %w", c.Name, err)
			}
		}
		b, err = nomad.New(nomad.Options{Address: c.Address, Token: token, Region: c.Region, Timeout: timeout})
	case TypeDocker:
		b, err = docker.New(docker.Options{Host: c.Host, Timeout: timeout})
	default:
		return nil, fmt.Errorf("backend %s: unknown type %q", c.Name, c.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", c.Name, err)
	}
	return b, nil
}
