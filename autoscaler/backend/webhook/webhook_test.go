package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
)

type received struct {
	id, key, sig string
	body         []byte
}

// receiver records requests and answers with the statuses in order (200 after).
func receiver(t *testing.T, statuses ...int) (*httptest.Server, func() []received) {
	var mtx sync.Mutex
	var got []received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mtx.Lock()
		got = append(got, received{r.Header.Get("X-Tidewatch-Decision-Id"), r.Header.Get("Idempotency-Key"), r.Header.Get(SignatureHeader), body})
		n := len(got)
		mtx.Unlock()
		if n <= len(statuses) {
			http.Error(w, "nope", statuses[n-1])
			return
		}
		var b Body
		_ = json.Unmarshal(body, &b)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]int{"replicas": b.Desired})
	}))
	t.Cleanup(srv.Close)
	return srv, func() []received {
		mtx.Lock()
		defer mtx.Unlock()
		return append([]received(nil), got...)
	}
}

func request() backend.Request {
	v := 10.0
	return backend.Request{
		DecisionID: "d-1", Policy: "api", Current: 1, Desired: 5, Reason: "value 10 / 2 per instance = 5",
		Metrics: []backend.Metric{{Query: "sum(x)", Type: "per_instance", Target: 2, Value: &v, Recommendation: 5}},
		Time:    time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC),
	}
}

func TestSignedBodyAndReportedReplicas(t *testing.T) {
	srv, got := receiver(t)
	secret := []byte("s3cret")
	b, err := NewWithOptions(Options{URL: srv.URL, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	target := backend.Target{Kind: "Deployment", Namespace: "shop", Name: "api"}
	if _, err := b.Current(t.Context(), target); err == nil {
		t.Error("current known before any call")
	}
	res, err := b.Scale(t.Context(), target, request())
	if err != nil {
		t.Fatal(err)
	}
	if res.Replicas != 5 {
		t.Errorf("replicas = %d, want 5 as reported", res.Replicas)
	}
	r := got()[0]
	if !Verify(secret, r.body, r.sig) {
		t.Errorf("signature %q does not verify", r.sig)
	}
	if Verify([]byte("other"), r.body, r.sig) {
		t.Error("signature verifies under another secret")
	}
	if r.id != "d-1" || r.key != "d-1" {
		t.Errorf("decision id headers = %q %q", r.id, r.key)
	}
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "decision_id", "policy", "target", "current", "desired", "reason", "metrics", "time"} {
		if _, ok := body[k]; !ok {
			t.Errorf("body lacks %q: %s", k, r.body)
		}
	}
	if n, err := b.Current(t.Context(), target); err != nil || n != 5 {
		t.Errorf("current after scale = %d, %v", n, err)
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int
		retries  int
		wantErr  bool
		wantReqs int
	}{
		{"5xx retried until success", []int{503, 500}, 3, false, 3},
		{"5xx gives up after max_retries", []int{503, 503, 503}, 2, true, 3},
		{"4xx not retried", []int{400}, 3, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := receiver(t, tt.statuses...)
			b, _ := NewWithOptions(Options{URL: srv.URL, Secret: []byte("k"), MaxRetries: tt.retries, RetryBackoff: time.Millisecond})
			_, err := b.Scale(t.Context(), backend.Target{Name: "api"}, request())
			if (err != nil) != tt.wantErr {
				t.Errorf("err = %v, want error %v", err, tt.wantErr)
			}
			reqs := got()
			if len(reqs) != tt.wantReqs {
				t.Fatalf("%d requests, want %d", len(reqs), tt.wantReqs)
			}
			for _, r := range reqs {
				if r.id != "d-1" || string(r.body) != string(reqs[0].body) {
					t.Error("a retry changed the decision id or the body")
				}
			}
		})
	}
}

func TestNetworkErrorRetried(t *testing.T) {
	srv, got := receiver(t)
	// A listener that refuses the first connections: point at a closed
	// server first, then switch the client's transport to the live one.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	var mtx sync.Mutex
	calls := 0
	tr := roundTripper(func(r *http.Request) (*http.Response, error) {
		mtx.Lock()
		calls++
		n := calls
		mtx.Unlock()
		if n <= 2 {
			r2 := r.Clone(r.Context())
			r2.URL.Host = strings.TrimPrefix(deadURL, "http://")
			return http.DefaultTransport.RoundTrip(r2)
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	b, _ := NewWithOptions(Options{URL: srv.URL, MaxRetries: 3, RetryBackoff: time.Millisecond, Client: &http.Client{Transport: tr}})
	if _, err := b.Scale(context.Background(), backend.Target{Name: "api"}, request()); err != nil {
		t.Fatal(err)
	}
	if calls != 3 || len(got()) != 1 {
		t.Errorf("calls = %d, delivered = %d; want 3 and 1", calls, len(got()))
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
