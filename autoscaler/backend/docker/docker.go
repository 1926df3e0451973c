// Package docker scales Docker Swarm services through the Docker Engine API
// with the Engine's own Go client (github.com/moby/moby/client, already in
// Tidewatch's module graph through Prometheus' Docker discovery): it inspects
// the service, sets Spec.Mode.Replicated.Replicas and updates the service
// with the version index it read, so a concurrent update is not overwritten
// (the Engine answers "update out of sequence"; the scale is then retried
// once on a fresh inspect). The decision id is recorded in the service label
// io.tidewatch.decision-id (labels do not restart tasks).
package docker

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
)

// Options configure a Docker backend.
type Options struct {
	// Host is the Engine address: unix:///var/run/docker.sock, tcp://host:2375.
	Host    string
	Timeout time.Duration
}

// Backend talks to one Swarm manager.
type Backend struct {
	c       *client.Client
	timeout time.Duration
}

var _ backend.Backend = (*Backend)(nil)

// New builds the client; it contacts nothing yet.
func NewWithOptions(o Options) (*Backend, error) {
	c, err := client.New(client.WithHost(o.Host))
	if err != nil {
		return nil, fmt.Errorf("docker client for %s: %w", o.Host, err)
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	return &Backend{c: c, timeout: o.Timeout}, nil
}

// Close releases the client's connections.
func (b *Backend) Close() error { return b.c.Close() }

// Current returns the service's replica count.
func (b *Backend) Current(ctx context.Context, t backend.Target) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	res, err := b.c.ServiceInspect(ctx, t.Name, client.ServiceInspectOptions{})
	if err != nil {
		return 0, fmt.Errorf("inspect service %s: %w", t.Name, err)
	}
	r := res.Service.Spec.Mode.Replicated
	if r == nil || r.Replicas == nil {
		return 0, fmt.Errorf("service %s is not in replicated mode", t.Name)
	}
	return int(*r.Replicas), nil
}

// Scale updates the service's replica count.
func (b *Backend) Scale(ctx context.Context, t backend.Target, req backend.Request) (backend.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var res client.ServiceInspectResult
		res, err = b.c.ServiceInspect(ctx, t.Name, client.ServiceInspectOptions{})
		if err != nil {
			break
		}
		svc := res.Service
		spec := svc.Spec
		if spec.Mode.Replicated == nil {
			return backend.Result{}, fmt.Errorf("scale %s to %d: service is not in replicated mode", t.Name, req.Desired)
		}
		n := uint64(req.Desired)
		spec.Mode.Replicated.Replicas = &n
		spec.Labels = maps.Clone(spec.Labels)
		if spec.Labels == nil {
			spec.Labels = map[string]string{}
		}
		spec.Labels["io.tidewatch.decision-id"] = req.DecisionID
		var up client.ServiceUpdateResult
		up, err = b.c.ServiceUpdate(ctx, svc.ID, client.ServiceUpdateOptions{Version: svc.Version, Spec: spec})
		if err == nil {
			msg := fmt.Sprintf("service %s updated from version %d", svc.ID, svc.Version.Index)
			if len(up.Warnings) > 0 {
				msg += "; warnings: " + strings.Join(up.Warnings, "; ")
			}
			return backend.Result{Replicas: req.Desired, Message: msg}, nil
		}
		if !strings.Contains(err.Error(), "update out of sequence") {
			break
		}
	}
	return backend.Result{}, fmt.Errorf("scale %s to %d: %w", t.Name, req.Desired, err)
}
