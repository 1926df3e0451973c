// Package nomad scales Nomad job task groups with the official client,
// github.com/hashicorp/nomad/api: Jobs().ScaleStatus reads a group's desired
// count and Jobs().ScaleWithRequest sets it with a message and meta (the
// decision id, policy and reason) that Nomad keeps in the group's scaling
// events. The request carries the job modify index read just before, so a
// job changed in between is not overwritten; the scale is retried once on
// such a conflict.
package nomad

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
)

// Options configure a Nomad backend.
type Options struct {
	Address string
	Token   string
	Region  string
	Timeout time.Duration
}

// Backend talks to one Nomad cluster.
type Backend struct {
	jobs    *api.Jobs
	region  string
	timeout time.Duration
}

var _ backend.Backend = (*Backend)(nil)

// New builds the client; it connects to nothing yet.
func NewWithOptions(o Options) (*Backend, error) {
	cfg := api.DefaultConfig()
	cfg.Address = o.Address
	cfg.SecretID = o.Token
	cfg.Region = o.Region
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("nomad client for %s: %w", o.Address, err)
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	return &Backend{jobs: c.Jobs(), region: o.Region, timeout: o.Timeout}, nil
}

func (b *Backend) status(ctx context.Context, t backend.Target) (*api.JobScaleStatusResponse, api.TaskGroupScaleStatus, error) {
	q := (&api.QueryOptions{Namespace: t.Namespace, Region: b.region}).WithContext(ctx)
	st, _, err := b.jobs.ScaleStatus(t.Name, q)
	if err != nil {
		return nil, api.TaskGroupScaleStatus{}, err
	}
	tg, ok := st.TaskGroups[t.Group]
	if !ok {
		return nil, tg, fmt.Errorf("job %s has no task group %q", t.Name, t.Group)
	}
	return st, tg, nil
}

// Current returns the group's desired count.
func (b *Backend) Current(ctx context.Context, t backend.Target) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	_, tg, err := b.status(ctx, t)
	if err != nil {
		return 0, fmt.Errorf("read count of %s/%s: %w", t.Name, t.Group, err)
	}
	return tg.Desired, nil
}

// Scale sets the group's count.
func (b *Backend) Scale(ctx context.Context, t backend.Target, req backend.Request) (backend.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var st *api.JobScaleStatusResponse
		st, _, err = b.status(ctx, t)
		if err != nil {
			break
		}
		count := int64(req.Desired)
		sr := &api.ScalingRequest{
			Count:   &count,
			Target:  map[string]string{"Job": t.Name, "Group": t.Group},
			Message: fmt.Sprintf("tidewatch policy %s: %s", req.Policy, req.Reason),
			Meta: map[string]any{
				"tidewatch_decision_id": req.DecisionID,
				"tidewatch_policy":      req.Policy,
				"tidewatch_current":     req.Current,
				"tidewatch_desired":     req.Desired,
			},
			JobModifyIndex: st.JobModifyIndex,
		}
		var resp *api.JobRegisterResponse
		resp, _, err = b.jobs.ScaleWithRequest(t.Name, sr, (&api.WriteOptions{Namespace: t.Namespace, Region: b.region}).WithContext(ctx))
		if err == nil {
			return backend.Result{Replicas: -1, Message: "evaluation " + resp.EvalID}, nil
		}
		if !isConflict(err) {
			break
		}
	}
	return backend.Result{}, fmt.Errorf("scale %s/%s to %d: %w", t.Name, t.Group, req.Desired, err)
}

// isConflict reports whether Nomad refused the scale because the job
// changed since its modify index was read.
func isConflict(err error) bool {
	s := err.Error()
	return strings.Contains(s, "modify index") || strings.Contains(s, "409")
}
