// Package kubernetes scales workloads through the scale subresource with
// client-go: Deployments, StatefulSets and ReplicaSets with the typed apps/v1
// client, and any custom resource that has /scale (Argo Rollouts, OpenShift
// DeploymentConfigs, KEDA-less operators…) with the dynamic client, given
// the target's api_version and resource (default: the kind in lower case
// plus "s").
//
// Updates carry the resourceVersion of the Scale read just before
// (optimistic concurrency): when the workload changed in between the API
// server answers 409 Conflict and the read-modify-write is retried with
// client-go's retry.RetryOnConflict.
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
)

// Options configure a Kubernetes backend.
type Options struct {
	// Kubeconfig is a kubeconfig file; empty means the default loading rules
	// ($KUBECONFIG, ~/.kube/config).
	Kubeconfig string
	// InCluster uses the pod's service account.
	InCluster bool
	// Context selects a kubeconfig context.
	Context string
	Timeout time.Duration
	// RESTConfig, when set, is used as is (tests, embedding).
	RESTConfig *rest.Config
}

// Backend talks to one cluster.
type Backend struct {
	typed   clientset.Interface
	dynamic dynamic.Interface
}

var _ backend.Backend = (*Backend)(nil)

// New builds the clients; it contacts nothing yet.
func NewWithOptions(o Options) (*Backend, error) {
	cfg := o.RESTConfig
	var err error
	switch {
	case cfg != nil:
		cfg = rest.CopyConfig(cfg)
	case o.InCluster:
		if cfg, err = rest.InClusterConfig(); err != nil {
			return nil, fmt.Errorf("in-cluster kubernetes config: %w", err)
		}
	default:
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = o.Kubeconfig
		cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: o.Context})
		if cfg, err = cc.ClientConfig(); err != nil {
			return nil, fmt.Errorf("load kubeconfig %s: %w", o.Kubeconfig, err)
		}
	}
	if o.Timeout > 0 {
		cfg.Timeout = o.Timeout
	}
	cfg.UserAgent = "tidewatch-autoscaler"
	typed, err := clientset.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes dynamic client: %w", err)
	}
	return &Backend{typed: typed, dynamic: dyn}, nil
}

// scaler reads and writes one target's Scale.
type scaler struct {
	get    func(context.Context) (*autoscalingv1.Scale, error)
	update func(context.Context, *autoscalingv1.Scale) (*autoscalingv1.Scale, error)
}

// scaleClient is the scale subresource of a typed apps/v1 client
// (Deployments, StatefulSets, ReplicaSets).
type scaleClient interface {
	GetScale(ctx context.Context, name string, opts metav1.GetOptions) (*autoscalingv1.Scale, error)
	UpdateScale(ctx context.Context, name string, s *autoscalingv1.Scale, opts metav1.UpdateOptions) (*autoscalingv1.Scale, error)
}

func typedScaler(c scaleClient, name string) scaler {
	return scaler{
		get: func(ctx context.Context) (*autoscalingv1.Scale, error) {
			return c.GetScale(ctx, name, metav1.GetOptions{})
		},
		update: func(ctx context.Context, s *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
			return c.UpdateScale(ctx, name, s, metav1.UpdateOptions{})
		},
	}
}

func (b *Backend) scaler(t backend.Target) (scaler, error) {
	ns, name := t.Namespace, t.Name
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	apps := b.typed.AppsV1()
	switch t.Kind {
	case "Deployment":
		return typedScaler(apps.Deployments(ns), name), nil
	case "StatefulSet":
		return typedScaler(apps.StatefulSets(ns), name), nil
	case "ReplicaSet":
		return typedScaler(apps.ReplicaSets(ns), name), nil
	}
	if t.APIVersion == "" {
		return scaler{}, fmt.Errorf("kind %s needs api_version (and resource when its plural is not %ss)", t.Kind, strings.ToLower(t.Kind))
	}
	gv, err := schema.ParseGroupVersion(t.APIVersion)
	if err != nil {
		return scaler{}, fmt.Errorf("api_version %q: %w", t.APIVersion, err)
	}
	resource := t.Resource
	if resource == "" {
		resource = strings.ToLower(t.Kind) + "s"
	}
	c := b.dynamic.Resource(gv.WithResource(resource)).Namespace(ns)
	return scaler{
		get: func(ctx context.Context) (*autoscalingv1.Scale, error) {
			u, err := c.Get(ctx, name, metav1.GetOptions{}, "scale")
			if err != nil {
				return nil, err
			}
			return fromUnstructured(u)
		},
		update: func(ctx context.Context, s *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
			obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(s)
			if err != nil {
				return nil, err
			}
			u := &unstructured.Unstructured{Object: obj}
			u.SetAPIVersion("autoscaling/v1")
			u.SetKind("Scale")
			out, err := c.Update(ctx, u, metav1.UpdateOptions{}, "scale")
			if err != nil {
				return nil, err
			}
			return fromUnstructured(out)
		},
	}, nil
}

func fromUnstructured(u *unstructured.Unstructured) (*autoscalingv1.Scale, error) {
	var s autoscalingv1.Scale
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &s); err != nil {
		return nil, fmt.Errorf("decode Scale: %w", err)
	}
	return &s, nil
}

// Current returns the Scale's spec.replicas.
func (b *Backend) Current(ctx context.Context, t backend.Target) (int, error) {
	s, err := b.scaler(t)
	if err != nil {
		return 0, err
	}
	sc, err := s.get(ctx)
	if err != nil {
		return 0, fmt.Errorf("read scale of %s %s/%s: %w", t.Kind, t.Namespace, t.Name, err)
	}
	return int(sc.Spec.Replicas), nil
}

// Scale sets spec.replicas through the scale subresource.
func (b *Backend) Scale(ctx context.Context, t backend.Target, req backend.Request) (backend.Result, error) {
	s, err := b.scaler(t)
	if err != nil {
		return backend.Result{}, fmt.Errorf("scale %s to %d: %w", t.Name, req.Desired, err)
	}
	var updated *autoscalingv1.Scale
	conflicts := 0
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		sc, err := s.get(ctx)
		if err != nil {
			return err
		}
		sc.Spec.Replicas = int32(req.Desired)
		updated, err = s.update(ctx, sc)
		if err != nil && isConflict(err) {
			conflicts++
		}
		return err
	})
	if err != nil {
		return backend.Result{}, fmt.Errorf("scale %s %s/%s to %d: %w", t.Kind, t.Namespace, t.Name, req.Desired, err)
	}
	msg := fmt.Sprintf("resourceVersion %s", updated.ResourceVersion)
	if conflicts > 0 {
		msg += fmt.Sprintf(" after %d conflict(s)", conflicts)
	}
	return backend.Result{Replicas: int(updated.Spec.Replicas), Message: msg}, nil
}

func isConflict(err error) bool {
	var se interface{ Status() metav1.Status }
	return errors.As(err, &se) && se.Status().Code == 409
}
