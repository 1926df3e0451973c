package kubernetes

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
)

// fakeAPIServer serves the scale subresource as a Kubernetes API server
// does (GET and PUT of an autoscaling/v1 Scale, 409 with a Status body on a
// stale resourceVersion). No cluster runs here; the clients are client-go's
// own typed and dynamic clients.
type fakeAPIServer struct {
	mtx      sync.Mutex
	objects  map[string]*scaleObj // by URL path of the scale subresource
	conflict int                  // answer this many PUTs with 409 after a concurrent change
	puts     int
}

type scaleObj struct {
	kind, group string
	replicas    int32
	version     int
}

func (f *fakeAPIServer) scaleJSON(path string, o *scaleObj) map[string]any {
	parts := strings.Split(path, "/")
	return map[string]any{
		"kind": "Scale", "apiVersion": "autoscaling/v1",
		"metadata": map[string]any{"name": parts[len(parts)-2], "namespace": parts[len(parts)-4], "resourceVersion": fmt.Sprint(o.version)},
		"spec":     map[string]any{"replicas": o.replicas},
		"status":   map[string]any{"replicas": o.replicas, "selector": "app=x"},
	}
}

func (f *fakeAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mtx.Lock()
	defer f.mtx.Unlock()
	w.Header().Set("Content-Type", "application/json")
	o, ok := f.objects[r.URL.Path]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
			"message": fmt.Sprintf("the server could not find the requested resource (%s)", r.URL.Path)})
		return
	}
	switch r.Method {
	case http.MethodGet:
		json.NewEncoder(w).Encode(f.scaleJSON(r.URL.Path, o))
	case http.MethodPut:
		f.puts++
		body, _ := io.ReadAll(r.Body)
		// The typed clients send protobuf (application/vnd.kubernetes.protobuf),
		// the dynamic client JSON; the API server's codecs read both.
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, nil)
		in, ok := obj.(*autoscalingv1.Scale)
		if err != nil || !ok {
			http.Error(w, fmt.Sprintf("bad scale (%s): %v", r.Header.Get("Content-Type"), err), http.StatusBadRequest)
			return
		}
		if f.conflict > 0 {
			f.conflict--
			o.version++ // someone else changed the workload
		}
		if in.ResourceVersion != fmt.Sprint(o.version) {
			w.WriteHeader(http.StatusConflict)
			json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{}, "status": "Failure",
				"message": fmt.Sprintf("Operation cannot be fulfilled on %s.%s %q: the object has been modified; please apply your changes to the latest version and try again", o.kind, o.group, "x"),
				"reason":  "Conflict", "details": map[string]any{"name": "x", "group": o.group, "kind": o.kind}, "code": 409})
			return
		}
		o.replicas = in.Spec.Replicas
		o.version++
		json.NewEncoder(w).Encode(f.scaleJSON(r.URL.Path, o))
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func TestScaleSubresource(t *testing.T) {
	tests := []struct {
		name     string
		target   backend.Target
		path     string
		conflict int
	}{
		{"deployment", backend.Target{Kind: "Deployment", Namespace: "shop", Name: "api"}, "/apis/apps/v1/namespaces/shop/deployments/api/scale", 0},
		{"statefulset with a conflict", backend.Target{Kind: "StatefulSet", Namespace: "shop", Name: "db"}, "/apis/apps/v1/namespaces/shop/statefulsets/db/scale", 2},
		{"replicaset", backend.Target{Kind: "ReplicaSet", Namespace: "shop", Name: "rs"}, "/apis/apps/v1/namespaces/shop/replicasets/rs/scale", 0},
		{"argo rollout (custom resource)", backend.Target{Kind: "Rollout", APIVersion: "argoproj.io/v1alpha1", Namespace: "shop", Name: "web"}, "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/web/scale", 1},
		{"openshift deploymentconfig", backend.Target{Kind: "DeploymentConfig", APIVersion: "apps.openshift.io/v1", Resource: "deploymentconfigs", Namespace: "shop", Name: "old"}, "/apis/apps.openshift.io/v1/namespaces/shop/deploymentconfigs/old/scale", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeAPIServer{objects: map[string]*scaleObj{tt.path: {kind: "things", group: "apps", replicas: 2, version: 7}}, conflict: tt.conflict}
			srv := httptest.NewServer(f)
			defer srv.Close()
			b, err := NewWithOptions(Options{RESTConfig: &rest.Config{Host: srv.URL}})
			if err != nil {
				t.Fatal(err)
			}
			n, err := b.Current(t.Context(), tt.target)
			if err != nil || n != 2 {
				t.Fatalf("current = %d, %v", n, err)
			}
			res, err := b.Scale(t.Context(), tt.target, backend.Request{Desired: 5})
			if err != nil {
				t.Fatal(err)
			}
			if res.Replicas != 5 || f.objects[tt.path].replicas != 5 {
				t.Errorf("result %+v, server has %d", res, f.objects[tt.path].replicas)
			}
			if f.puts != tt.conflict+1 {
				t.Errorf("%d PUTs, want %d (one per conflict, plus the one that succeeds)", f.puts, tt.conflict+1)
			}
			if n, _ := b.Current(t.Context(), tt.target); n != 5 {
				t.Errorf("current after scale = %d", n)
			}
		})
	}
	f := &fakeAPIServer{objects: map[string]*scaleObj{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	b, _ := NewWithOptions(Options{RESTConfig: &rest.Config{Host: srv.URL}})
	if _, err := b.Scale(t.Context(), backend.Target{Kind: "Deployment", Namespace: "x", Name: "missing"}, backend.Request{Desired: 1}); err == nil || !strings.Contains(err.Error(), "scale Deployment x/missing to 1") {
		t.Errorf("missing deployment: %v", err)
	}
	if _, err := b.Current(t.Context(), backend.Target{Kind: "Widget", Name: "w"}); err == nil {
		t.Error("custom kind without api_version: no error")
	}
}
