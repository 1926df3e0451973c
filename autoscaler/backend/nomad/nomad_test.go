package nomad

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/nomad/api"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
)

// fakeNomad speaks Nomad's /v1/job/:id/scale endpoints as documented in the
// Jobs HTTP API (GET: JobScaleStatusResponse, PUT: ScalingRequest →
// JobRegisterResponse). A PUT with a stale JobModifyIndex gets 400 with the
// message of Nomad's index enforcement. No Nomad server runs here; the
// client is the real github.com/hashicorp/nomad/api.
type fakeNomad struct {
	mtx       sync.Mutex
	count     int
	index     uint64
	bumpOnGet int // bump the modify index after this many GETs (a concurrent change)
	gets      int
	requests  []api.ScalingRequest
	namespace string
}

func (f *fakeNomad) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mtx.Lock()
	defer f.mtx.Unlock()
	if r.URL.Path != "/v1/job/web/scale" {
		http.Error(w, "job not found", http.StatusNotFound)
		return
	}
	f.namespace = r.URL.Query().Get("namespace")
	w.Header().Set("X-Nomad-Index", fmt.Sprint(f.index))
	switch r.Method {
	case http.MethodGet:
		f.gets++
		json.NewEncoder(w).Encode(api.JobScaleStatusResponse{
			JobID: "web", Namespace: "default", JobModifyIndex: f.index,
			TaskGroups: map[string]api.TaskGroupScaleStatus{"frontend": {Desired: f.count, Running: f.count, Healthy: f.count}},
		})
		if f.gets == f.bumpOnGet {
			f.index++
		}
	case http.MethodPut, http.MethodPost:
		var req api.ScalingRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.requests = append(f.requests, req)
		if req.JobModifyIndex != 0 && req.JobModifyIndex != f.index {
			http.Error(w, fmt.Sprintf("Enforcing job modify index %d: job exists with conflicting job modify index: %d", req.JobModifyIndex, f.index), http.StatusBadRequest)
			return
		}
		f.count = int(*req.Count)
		f.index++
		json.NewEncoder(w).Encode(api.JobRegisterResponse{EvalID: "eval-1", JobModifyIndex: f.index})
	default:
		http.Error(w, "method", http.StatusMethodNotAllowed)
	}
}

func TestNomadScale(t *testing.T) {
	tests := []struct {
		name     string
		bump     int
		wantPuts int
	}{
		{"scale", 0, 1},
		{"job changed in between: retried with the new index", 2, 2}, // GET 1 is Current, GET 2 precedes the first PUT
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeNomad{count: 3, index: 10, bumpOnGet: tt.bump}
			srv := httptest.NewServer(f)
			defer srv.Close()
			b, err := NewWithOptions(Options{Address: srv.URL, Token: "t"})
			if err != nil {
				t.Fatal(err)
			}
			target := backend.Target{Namespace: "prod", Name: "web", Group: "frontend"}
			n, err := b.Current(t.Context(), target)
			if err != nil || n != 3 {
				t.Fatalf("current = %d, %v", n, err)
			}
			res, err := b.Scale(t.Context(), target, backend.Request{DecisionID: "d-1", Policy: "web", Current: 3, Desired: 6, Reason: "load"})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(res.Message, "eval-1") {
				t.Errorf("result = %+v", res)
			}
			if len(f.requests) != tt.wantPuts {
				t.Fatalf("%d PUTs, want %d", len(f.requests), tt.wantPuts)
			}
			req := f.requests[len(f.requests)-1]
			if *req.Count != 6 || req.Target["Group"] != "frontend" || req.Meta["tidewatch_decision_id"] != "d-1" || !strings.Contains(req.Message, "load") {
				t.Errorf("request = %+v", req)
			}
			if f.count != 6 || f.namespace != "prod" {
				t.Errorf("count %d namespace %q", f.count, f.namespace)
			}
			if n, _ := b.Current(t.Context(), target); n != 6 {
				t.Errorf("current after scale = %d", n)
			}
		})
	}
	f := &fakeNomad{count: 1}
	srv := httptest.NewServer(f)
	defer srv.Close()
	b, _ := NewWithOptions(Options{Address: srv.URL})
	if _, err := b.Current(t.Context(), backend.Target{Name: "web", Group: "nope"}); err == nil || !strings.Contains(err.Error(), `no task group "nope"`) {
		t.Errorf("unknown group: %v", err)
	}
}
