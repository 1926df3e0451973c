package docker

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
)

// fakeEngine speaks the Docker Engine API's service endpoints as documented
// (GET /vX/services/{id}, POST /vX/services/{id}/update?version=N with a
// ServiceSpec body, /_ping for version negotiation). A stale version gets
// the Engine's "update out of sequence" error. No Docker daemon runs here;
// the client is the Engine's own Go client.
type fakeEngine struct {
	mtx      sync.Mutex
	svc      swarm.Service
	races    int // concurrent updates to simulate before accepting
	updates  int
	lastSpec swarm.ServiceSpec
}

var servicePath = regexp.MustCompile(`^/v[0-9.]+/services/([^/]+)(/update)?$`)

func (f *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mtx.Lock()
	defer f.mtx.Unlock()
	w.Header().Set("Api-Version", "1.47")
	if r.URL.Path == "/_ping" {
		w.Write([]byte("OK"))
		return
	}
	m := servicePath.FindStringSubmatch(r.URL.Path)
	if m == nil || (m[1] != f.svc.ID && m[1] != f.svc.Spec.Name) {
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]string{"message": "service " + r.URL.Path + " not found"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if m[2] == "" {
		json.NewEncoder(w).Encode(f.svc)
		return
	}
	f.updates++
	var spec swarm.ServiceSpec
	if err := json.NewDecoder(r.Body).Decode(&spec); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"message": err.Error()})
		return
	}
	if f.races > 0 {
		f.races--
		f.svc.Version.Index++
	}
	if r.URL.Query().Get("version") != fmt.Sprint(f.svc.Version.Index) {
		w.WriteHeader(http.StatusInternalServerError)
		json.NewEncoder(w).Encode(map[string]string{"message": "rpc error: code = Unknown desc = update out of sequence"})
		return
	}
	f.svc.Spec = spec
	f.svc.Version.Index++
	f.lastSpec = spec
	json.NewEncoder(w).Encode(swarm.ServiceUpdateResponse{})
}

func TestSwarmScale(t *testing.T) {
	for _, races := range []int{0, 1} {
		t.Run(fmt.Sprintf("concurrent updates %d", races), func(t *testing.T) {
			three := uint64(3)
			f := &fakeEngine{races: races, svc: swarm.Service{
				ID:   "svc123",
				Meta: swarm.Meta{Version: swarm.Version{Index: 41}},
				Spec: swarm.ServiceSpec{
					Annotations:  swarm.Annotations{Name: "web", Labels: map[string]string{"team": "shop"}},
					TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "nginx:1.27"}},
					Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &three}},
				},
			}}
			srv := httptest.NewServer(f)
			defer srv.Close()
			b, err := NewWithOptions(Options{Host: "tcp://" + strings.TrimPrefix(srv.URL, "http://")})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			target := backend.Target{Name: "web"}
			if n, err := b.Current(t.Context(), target); err != nil || n != 3 {
				t.Fatalf("current = %d, %v", n, err)
			}
			res, err := b.Scale(t.Context(), target, backend.Request{DecisionID: "d-9", Desired: 7})
			if err != nil {
				t.Fatal(err)
			}
			if res.Replicas != 7 || f.updates != races+1 {
				t.Errorf("result %+v after %d updates", res, f.updates)
			}
			if got := *f.lastSpec.Mode.Replicated.Replicas; got != 7 {
				t.Errorf("replicas = %d", got)
			}
			if f.lastSpec.Labels["io.tidewatch.decision-id"] != "d-9" || f.lastSpec.Labels["team"] != "shop" || f.lastSpec.TaskTemplate.ContainerSpec.Image != "nginx:1.27" {
				t.Errorf("spec changed beyond replicas and the label: %+v", f.lastSpec)
			}
			if n, _ := b.Current(t.Context(), target); n != 7 {
				t.Errorf("current after = %d", n)
			}
		})
	}
}
